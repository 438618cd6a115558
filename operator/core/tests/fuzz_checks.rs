//! Fuzzing the admission checks of ScaledObjects, ScaledJobs and (Cluster)TriggerAuthentications
//! (`keda_operator_core::checks`, which the webhook, the reconcilers and the simulator call),
//! with counts.
//!
//! Properties: no input panics; every rejection names the field it is about; each check
//! accepts exactly what a one-line statement of KEDA's rule accepts.
//!
//! `cargo test` runs 256 cases per target; `PROPTEST_CASES=10000` makes it a fuzz run.

mod fuzz_support;

use std::collections::BTreeSet;

use fuzz_support::{fuzz, hostile_value};
use keda_operator_core::checks::{
    self, FallbackCheck, IdentityProvider, PodIdentity, ReplicaCounts, TriggerError, TriggerSpec,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Trigger {
    trigger_type: String,
    name: Option<String>,
    cached: bool,
}

fn trigger() -> impl Strategy<Value = Trigger> {
    (
        prop_oneof![
            3 => proptest::sample::select(
                &["prometheus", "cpu", "memory", "cron", "mysql", "external", "external-push",
                  "rabbitmq", "datadog", "CPU", "kafka", ""][..],
            )
            .prop_map(String::from),
            1 => hostile_value(),
        ],
        proptest::option::of(prop_oneof![
            proptest::sample::select(&["", "a", "b", "A", "ä"][..]).prop_map(String::from),
            hostile_value(),
        ]),
        any::<bool>(),
    )
        .prop_map(|(trigger_type, name, cached)| Trigger {
            trigger_type,
            name,
            cached,
        })
}

fn specs(triggers: &[Trigger]) -> Vec<TriggerSpec<'_>> {
    triggers
        .iter()
        .map(|t| TriggerSpec {
            trigger_type: &t.trigger_type,
            name: t.name.as_deref(),
            use_cached_metrics: t.cached,
        })
        .collect()
}

/// KEDA's trigger rule in one statement.
fn triggers_allowed(triggers: &[Trigger]) -> bool {
    let mut names = BTreeSet::new();
    !triggers.is_empty()
        && triggers.iter().all(|t| {
            !(t.cached && matches!(t.trigger_type.as_str(), "cpu" | "memory" | "cron"))
                && t.name
                    .as_deref()
                    .filter(|n| !n.is_empty())
                    .is_none_or(|n| names.insert(n.to_string()))
        })
}

fn int() -> impl Strategy<Value = i32> {
    prop_oneof![
        any::<i32>(),
        -3..30i32,
        Just(i32::MIN),
        Just(i32::MAX),
        Just(0)
    ]
}

#[test]
fn trigger_lists_are_judged_as_keda_does_and_rejections_name_the_field() {
    fuzz(
        "webhook checks: triggers",
        (
            proptest::collection::vec(trigger(), 0..6),
            proptest::option::of(int()),
            proptest::sample::select(&["Deployment", "StatefulSet", "Job", "", "deployment"][..]),
        ),
        |(triggers, min, kind)| {
            let specs = specs(&triggers);
            let result = checks::triggers(&specs);
            prop_assert_eq!(result.is_ok(), triggers_allowed(&triggers), "{:?}", result);
            if let Err(e) = result {
                let message = e.to_string();
                let field = match e {
                    TriggerError::NoTriggers => "triggers",
                    TriggerError::CachedMetricsNotSupported { .. } => "useCachedMetrics",
                    TriggerError::DuplicateName { .. } => "triggerName",
                    TriggerError::OnlyResourceTriggersAtZero => "minReplica",
                };
                prop_assert!(message.contains(field), "{message}");
            }
            let at_zero = checks::resource_triggers_at_zero(&specs, min, kind);
            let resource_only = !triggers.is_empty()
                && triggers
                    .iter()
                    .all(|t| matches!(t.trigger_type.as_str(), "cpu" | "memory"));
            let refused = resource_only
                && min.unwrap_or(0) == 0
                && matches!(kind, "Deployment" | "StatefulSet");
            prop_assert_eq!(at_zero.is_err(), refused);
            if let Err(e) = at_zero {
                prop_assert!(e.to_string().contains("minReplica"), "{e}");
            }
            Ok(())
        },
    );
}

#[test]
fn replica_bounds_are_judged_as_keda_does_and_rejections_name_the_field() {
    fuzz(
        "webhook checks: replica bounds",
        (int(), int(), proptest::option::of(int())),
        |(min, max, idle)| {
            let result = checks::replica_bounds(ReplicaCounts { min, max, idle });
            let allowed = min <= max && idle.is_none_or(|i| i < min);
            prop_assert_eq!(result.is_ok(), allowed);
            if let Err(e) = result {
                let message = e.to_string();
                prop_assert!(
                    message.contains("MinReplicaCount") || message.contains("IdleReplicaCount"),
                    "{message}"
                );
            }
            Ok(())
        },
    );
}

#[test]
fn fallbacks_are_checked_without_panic_and_rejections_name_the_field() {
    fuzz(
        "webhook checks: fallback",
        (
            int(),
            int(),
            any::<bool>(),
            any::<bool>(),
            prop_oneof![Just(String::new()), hostile_value()],
            proptest::collection::vec(trigger(), 0..4),
        ),
        |(failure_threshold, replicas, behavior, has_modifiers, formula, triggers)| {
            let check = FallbackCheck {
                failure_threshold,
                replicas,
                behavior_is_scaling_modifiers: behavior,
                has_modifiers,
                formula: &formula,
            };
            let result = checks::fallback(check, &specs(&triggers));
            if failure_threshold < 0 || replicas < 0 {
                prop_assert!(result.is_err());
            }
            if let Err(e) = result {
                prop_assert!(e.to_string().contains("fallback"), "{e}");
            }
            Ok(())
        },
    );
}

#[test]
fn names_are_checked_by_length_and_rejections_name_the_object() {
    let name = || {
        prop_oneof![
            "[a-z0-9-]{0,80}",
            hostile_value(),
            (0usize..200).prop_map(|n| "é".repeat(n)),
        ]
    };
    fuzz(
        "webhook checks: names",
        (name(), name()),
        |(scaled_object, hpa)| {
            let result = checks::names(&scaled_object, &hpa);
            let allowed = scaled_object.len() <= checks::MAX_LABEL_VALUE
                && hpa.len() <= checks::MAX_LABEL_VALUE;
            prop_assert_eq!(result.is_ok(), allowed);
            if let Err(e) = result {
                prop_assert!(e.to_string().contains("name"), "{e}");
            }
            Ok(())
        },
    );
}

#[test]
fn pod_identities_are_checked_without_panic_and_rejections_name_the_field() {
    let field = || {
        proptest::option::of(prop_oneof![
            Just(String::new()),
            Just("arn:aws:iam::1:role/r".to_string()),
            hostile_value()
        ])
    };
    fuzz(
        "webhook checks: pod identity",
        (
            proptest::sample::select(
                &[
                    IdentityProvider::AzureWorkload,
                    IdentityProvider::Aws,
                    IdentityProvider::Other,
                ][..],
            ),
            (field(), field(), field(), field(), field()),
            any::<bool>(),
        ),
        |(provider, (id, tenant, authority, role, external), owner_is_workload)| {
            let identity = PodIdentity {
                provider,
                identity_id: id.as_deref(),
                identity_tenant_id: tenant.as_deref(),
                identity_authority_host: authority.as_deref(),
                role_arn: role.as_deref(),
                external_id: external.as_deref(),
                owner_is_workload,
            };
            if let Err(e) = checks::pod_identity(&identity) {
                let message = e.to_string();
                prop_assert!(
                    ["identityId", "identityTenantI", "roleArn", "externalID"]
                        .iter()
                        .any(|f| message.contains(f)),
                    "{message}"
                );
            }
            if provider == IdentityProvider::Other {
                prop_assert!(checks::pod_identity(&identity).is_ok());
            }
            Ok(())
        },
    );
}
