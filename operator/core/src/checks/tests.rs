use super::*;

fn trigger<'a>(trigger_type: &'a str, name: Option<&'a str>, cached: bool) -> TriggerSpec<'a> {
    TriggerSpec {
        trigger_type,
        name,
        use_cached_metrics: cached,
    }
}

#[test]
fn trigger_rules_give_kedas_messages_in_kedas_order() {
    let cases: &[(&[TriggerSpec], &str)] = &[
        (&[], "no triggers defined in the ScaledObject/ScaledJob"),
        (
            &[trigger("cron", None, true)],
            "property \"useCachedMetrics\" is not supported for \"cron\" scaler",
        ),
        (
            &[
                trigger("prometheus", Some("a"), false),
                trigger("mysql", Some("a"), false),
            ],
            "triggerName \"a\" is defined multiple times in the ScaledObject/ScaledJob, but it must be unique",
        ),
        // Within one trigger the cache rule comes first, as in KEDA's ValidateTriggers.
        (
            &[
                trigger("cpu", Some("a"), false),
                trigger("memory", Some("a"), true),
            ],
            "property \"useCachedMetrics\" is not supported for \"memory\" scaler",
        ),
    ];
    for (given, message) in cases {
        assert_eq!(triggers(given).unwrap_err().to_string(), *message);
    }
    let fine = [
        trigger("prometheus", Some("a"), true),
        trigger("kafka", Some(""), true),
        trigger("cpu", Some(""), false),
    ];
    assert_eq!(triggers(&fine), Ok(()));
}

#[test]
fn only_resource_triggers_cannot_take_a_deployment_to_zero() {
    let cpu = [trigger("cpu", None, false)];
    let err = resource_triggers_at_zero(&cpu, None, "Deployment").unwrap_err();
    assert_eq!(
        err.to_string(),
        "scaledobject has only cpu/memory triggers AND minReplica is 0 (scale to zero doesn't work in this case)"
    );
    assert!(resource_triggers_at_zero(&cpu, Some(1), "Deployment").is_ok());
    assert!(resource_triggers_at_zero(&cpu, None, "Rollout").is_ok());
    let mixed = [trigger("cpu", None, false), trigger("cron", None, false)];
    assert!(resource_triggers_at_zero(&mixed, None, "StatefulSet").is_ok());
}

#[test]
fn bounds_refuse_min_above_max_and_idle_not_below_min() {
    let counts = |min, max, idle| ReplicaCounts { min, max, idle };
    assert_eq!(
        replica_bounds(counts(5, 2, None)).unwrap_err().to_string(),
        "MinReplicaCount=5 must be less than MaxReplicaCount=2"
    );
    assert_eq!(
        replica_bounds(counts(1, 2, Some(1)))
            .unwrap_err()
            .to_string(),
        "IdleReplicaCount=1 must be less than MinReplicaCount=1"
    );
    assert_eq!(replica_bounds(counts(2, 2, Some(0))), Ok(()));
}

#[test]
fn fallback_needs_non_negative_counts_a_non_resource_trigger_and_a_formula() {
    let check =
        |failure_threshold, behavior_is_scaling_modifiers, has_modifiers, formula| FallbackCheck {
            failure_threshold,
            replicas: 1,
            behavior_is_scaling_modifiers,
            has_modifiers,
            formula,
        };
    let prom = [trigger("prometheus", None, false)];
    let cpu = [trigger("cpu", None, false)];
    assert_eq!(
        fallback(check(-1, false, false, ""), &prom)
            .unwrap_err()
            .to_string(),
        "fallback.failureThreshold=-1 or fallback.replicas=1 should not be negative"
    );
    assert_eq!(
        fallback(check(3, false, false, ""), &cpu)
            .unwrap_err()
            .to_string(),
        "at least one trigger that is not cpu or memory is needed to use fallback"
    );
    assert_eq!(fallback(check(3, false, true, "a"), &cpu), Ok(()));
    assert_eq!(
        fallback(check(3, true, true, ""), &prom),
        Err(FallbackError::ScalingModifiersWithoutFormula)
    );
}

#[test]
fn names_must_fit_a_label_value() {
    let long = "a".repeat(64);
    assert!(
        names(&long, "x")
            .unwrap_err()
            .to_string()
            .contains("is 64 characters long; must be no more than 63 characters")
    );
    assert!(matches!(
        names("a", &long),
        Err(NameError::HpaTooLong { .. })
    ));
    assert_eq!(names(&"a".repeat(63), "b"), Ok(()));
}

#[test]
fn pod_identity_rules_follow_the_provider() {
    let identity = |provider| PodIdentity {
        provider,
        identity_id: None,
        identity_tenant_id: None,
        identity_authority_host: None,
        role_arn: None,
        external_id: None,
        owner_is_workload: false,
    };
    let azure = identity(IdentityProvider::AzureWorkload);
    assert_eq!(
        pod_identity(&PodIdentity {
            identity_id: Some(""),
            ..azure
        }),
        Err(PodIdentityError::EmptyIdentityId)
    );
    assert_eq!(
        pod_identity(&PodIdentity {
            identity_authority_host: Some("h"),
            ..azure
        }),
        Err(PodIdentityError::AuthorityHostWithoutTenant)
    );
    let aws = identity(IdentityProvider::Aws);
    assert_eq!(
        pod_identity(&PodIdentity {
            role_arn: Some("r"),
            owner_is_workload: true,
            ..aws
        })
        .unwrap_err()
        .to_string(),
        "roleArn of PodIdentity can't be set if KEDA isn't identityOwner"
    );
    assert_eq!(
        pod_identity(&PodIdentity {
            external_id: Some("e"),
            ..aws
        }),
        Err(PodIdentityError::ExternalIdWithoutRoleArn)
    );
    assert_eq!(
        pod_identity(&PodIdentity {
            external_id: Some("e"),
            ..identity(IdentityProvider::Other)
        }),
        Ok(())
    );
}
