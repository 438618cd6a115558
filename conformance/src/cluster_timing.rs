//! The HPA timing a cluster's kube-controller-manager runs with. The rules' deadlines are
//! derived from it, so guessing wrong fails good operators: a kind cluster made by this project
//! scales down after 5 s, which a rule expecting Kubernetes' 300 s calls too early.
//!
//! Where kube-controller-manager runs as a pod (kind, kubeadm), its flags are read from the pod;
//! elsewhere (a managed control plane) the flags given to the runner, else Kubernetes' defaults.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;

const SYNC_FLAG: &str = "--horizontal-pod-autoscaler-sync-period";
const STABILIZATION_FLAG: &str = "--horizontal-pod-autoscaler-downscale-stabilization";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HpaTiming {
    pub sync_period: Duration,
    pub downscale_stabilization: Duration,
}

/// kube-controller-manager's defaults for both flags.
pub const KUBERNETES_DEFAULTS: HpaTiming = HpaTiming {
    sync_period: Duration::from_secs(15),
    downscale_stabilization: Duration::from_secs(300),
};

/// The timing in kube-controller-manager's arguments; a flag that is absent has its default.
pub fn from_args<S: AsRef<str>>(args: &[S]) -> Result<HpaTiming, String> {
    let mut timing = KUBERNETES_DEFAULTS;
    let mut args = args.iter().map(AsRef::as_ref);
    while let Some(arg) = args.next() {
        for (flag, slot) in [
            (SYNC_FLAG, &mut timing.sync_period),
            (STABILIZATION_FLAG, &mut timing.downscale_stabilization),
        ] {
            let value = match arg.strip_prefix(flag) {
                Some(rest) if rest.starts_with('=') => Some(rest[1..].to_string()),
                Some("") => Some(
                    args.next()
                        .ok_or_else(|| format!("{flag} has no value"))?
                        .to_string(),
                ),
                _ => None,
            };
            if let Some(value) = value {
                *slot = parse_go_duration(&value).map_err(|e| format!("{flag}={value}: {e}"))?;
            }
        }
    }
    Ok(timing)
}

/// Reads the timing from the kube-controller-manager pod in kube-system (label
/// `component=kube-controller-manager`, as kubeadm and kind run it). `None` when there is no
/// such pod to read.
pub async fn from_controller_manager_pod(
    client: &kube::Client,
) -> anyhow::Result<Option<HpaTiming>> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "kube-system");
    let listed = pods
        .list(&ListParams::default().labels("component=kube-controller-manager"))
        .await?;
    let Some(pod) = listed.items.first() else {
        return Ok(None);
    };
    let Some(container) = pod.spec.as_ref().and_then(|s| s.containers.first()) else {
        return Ok(None);
    };
    let args: Vec<&String> = container
        .command
        .iter()
        .flatten()
        .chain(container.args.iter().flatten())
        .collect();
    from_args(&args).map(Some).map_err(|e| {
        anyhow::anyhow!(
            "kube-controller-manager pod {}: {e}",
            pod.metadata.name.as_deref().unwrap_or("?")
        )
    })
}

/// A Go `time.Duration` as kube-controller-manager's flags take it: `15s`, `5m0s`, `1m30s`,
/// `500ms`, `1h`, `1.5s`.
pub fn parse_go_duration(text: &str) -> Result<Duration, String> {
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err("an empty duration".into());
    }
    let mut total = 0.0_f64;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("{text:?} lacks a unit (ns, us, ms, s, m, h)"))?;
        let (number, tail) = rest.split_at(number_len);
        let value: f64 = number
            .parse()
            .map_err(|_| format!("{text:?} is not a duration"))?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let seconds = match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            other => return Err(format!("{text:?} has an unknown unit {other:?}")),
        };
        total += value * seconds;
        rest = tail;
    }
    Ok(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_as_flags_write_them() {
        for (text, seconds) in [
            ("15s", 15.0),
            ("5m0s", 300.0),
            ("1m30s", 90.0),
            ("500ms", 0.5),
            ("1h", 3600.0),
            ("1.5s", 1.5),
            ("0", 0.0),
        ] {
            assert_eq!(
                parse_go_duration(text).unwrap(),
                Duration::from_secs_f64(seconds),
                "{text}"
            );
        }
        for bad in ["", "15", "5 m", "1x", "s"] {
            assert!(parse_go_duration(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn flags_in_both_forms_and_defaults_for_the_absent() {
        let kind = [
            "kube-controller-manager",
            "--horizontal-pod-autoscaler-sync-period=1s",
            "--horizontal-pod-autoscaler-downscale-stabilization",
            "5s",
            "--leader-elect=true",
        ];
        assert_eq!(
            from_args(&kind).unwrap(),
            HpaTiming {
                sync_period: Duration::from_secs(1),
                downscale_stabilization: Duration::from_secs(5),
            }
        );
        assert_eq!(
            from_args(&["kube-controller-manager", "--v=2"]).unwrap(),
            KUBERNETES_DEFAULTS
        );
        let only_sync = from_args(&["--horizontal-pod-autoscaler-sync-period=30s"]).unwrap();
        assert_eq!(only_sync.sync_period, Duration::from_secs(30));
        assert_eq!(only_sync.downscale_stabilization, Duration::from_secs(300));
    }

    #[test]
    fn a_bad_flag_value_is_named() {
        let err = from_args(&["--horizontal-pod-autoscaler-sync-period=soon"]).unwrap_err();
        assert!(
            err.starts_with("--horizontal-pod-autoscaler-sync-period=soon:"),
            "{err}"
        );
        let err = from_args(&["--horizontal-pod-autoscaler-downscale-stabilization"]).unwrap_err();
        assert!(err.contains("has no value"), "{err}");
    }

    #[test]
    fn a_longer_flag_with_the_same_prefix_is_not_taken_for_it() {
        let timing = from_args(&["--horizontal-pod-autoscaler-sync-period-jitter=9s"]).unwrap();
        assert_eq!(timing, KUBERNETES_DEFAULTS);
    }
}
