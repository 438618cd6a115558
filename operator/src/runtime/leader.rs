//! Leader election on a `coordination.k8s.io/v1` Lease, as controller-runtime runs it for
//! KEDA's operator (`--leader-elect`, the Lease `operator.keda.sh` in the operator's namespace,
//! and `KEDA_OPERATOR_LEADER_ELECTION_{LEASE_DURATION,RENEW_DEADLINE,RETRY_PERIOD}`).
//!
//! Every replica watches and keeps its stores; only the leader reconciles, polls and writes
//! (see [`Leadership`]). A replica takes a Lease whose holder has not renewed it for a lease
//! duration (measured on this replica's clock from when it last saw the record change, as
//! client-go does, so clocks need not agree), or one with no holder. The leader renews every
//! retry period; when it cannot renew within the renew deadline it stops leading and the
//! process ends (as KEDA's manager does), to be restarted as a follower. On a clean shutdown
//! the leader gives the Lease up, so a follower takes over at its next retry instead of after
//! a lease duration.

use std::time::Duration;

use futures::Stream;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// KEDA's Lease name (`--leader-election-id`).
pub const DEFAULT_LEASE_NAME: &str = "operator.keda.sh";

/// controller-runtime's defaults, which KEDA keeps unless its environment variables say otherwise.
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(15);
pub const DEFAULT_RENEW_DEADLINE: Duration = Duration::from_secs(10);
pub const DEFAULT_RETRY_PERIOD: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElectionSettings {
    pub lease_name: String,
    pub namespace: String,
    /// This replica's name in `spec.holderIdentity` (the pod name, made unique).
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

/// Why election settings are refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("the leader election retry period must be more than 0")]
    NoRetryPeriod,
    #[error(
        "the leader election renew deadline ({renew_deadline:?}) must be longer than the retry period ({retry_period:?})"
    )]
    RenewWithinRetry {
        renew_deadline: Duration,
        retry_period: Duration,
    },
    #[error(
        "the leader election lease duration ({lease_duration:?}) must be longer than the renew deadline ({renew_deadline:?})"
    )]
    LeaseWithinRenew {
        lease_duration: Duration,
        renew_deadline: Duration,
    },
    #[error("the leader election lease name, namespace and identity must not be empty")]
    EmptyName,
}

impl ElectionSettings {
    /// The durations must leave the leader time to notice it lost the Lease before anyone
    /// else may take it: `lease duration > renew deadline > retry period > 0`.
    pub fn check(&self) -> Result<(), SettingsError> {
        if self.retry_period.is_zero() {
            return Err(SettingsError::NoRetryPeriod);
        }
        if self.renew_deadline <= self.retry_period {
            return Err(SettingsError::RenewWithinRetry {
                renew_deadline: self.renew_deadline,
                retry_period: self.retry_period,
            });
        }
        if self.lease_duration <= self.renew_deadline {
            return Err(SettingsError::LeaseWithinRenew {
                lease_duration: self.lease_duration,
                renew_deadline: self.renew_deadline,
            });
        }
        if self.lease_name.is_empty() || self.namespace.is_empty() || self.identity.is_empty() {
            return Err(SettingsError::EmptyName);
        }
        Ok(())
    }
}

/// A text that is not a Go duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a duration like 15s, 1m30s or 500ms")]
pub struct NotADuration(pub String);

/// Reads a duration as Go's `time.ParseDuration` writes the ones KEDA's environment takes
/// (`15s`, `1m30s`, `500ms`, `1.5s`); a bare number is refused, as Go refuses it.
pub fn parse_go_duration(text: &str) -> Result<Duration, NotADuration> {
    let refuse = || NotADuration(text.to_string());
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(refuse());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(refuse)?;
        let (number, tail) = rest.split_at(digits);
        let value: f64 = number.parse().map_err(|_| refuse())?;
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
            _ => return Err(refuse()),
        };
        total += value * seconds;
        rest = tail;
    }
    Duration::try_from_secs_f64(total).map_err(|_| refuse())
}

/// Whether this replica leads now. Without election it always does.
#[derive(Debug, Clone)]
pub struct Leadership {
    leading: watch::Receiver<bool>,
}

impl Leadership {
    /// Leading from the start, for good: a single replica without election.
    pub fn always() -> Self {
        let (tx, rx) = watch::channel(true);
        // The receiver keeps the last value once the sender is gone.
        drop(tx);
        Leadership { leading: rx }
    }

    pub fn is_leader(&self) -> bool {
        *self.leading.borrow()
    }

    /// One item each time this replica becomes the leader (not for leading from the start).
    /// It ends when leadership can no longer change, and may be polled again after that.
    pub fn gained(&self) -> impl Stream<Item = ()> + Send + 'static {
        let mut leading = self.leading.clone();
        leading.mark_unchanged();
        futures::StreamExt::fuse(futures::stream::unfold(leading, |mut leading| async move {
            loop {
                leading.changed().await.ok()?;
                if *leading.borrow_and_update() {
                    return Some(((), leading));
                }
            }
        }))
    }
}

/// Leadership was lost while leading: the process must stop writing and end.
#[derive(Debug, thiserror::Error)]
#[error("leader election lost: the Lease {namespace}/{name} was not renewed within {deadline:?}")]
pub struct LostLeadership {
    pub namespace: String,
    pub name: String,
    pub deadline: Duration,
}

/// What to do with the Lease as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// No Lease yet: create it, held by us.
    Create,
    /// Take it over from `previous` (empty when nobody held it).
    Take { previous: String },
    /// We hold it: renew.
    Renew,
    /// Someone else holds it and renewed it within a lease duration.
    Wait,
}

/// The decision for a Lease `record` last seen changing `unchanged_for` ago.
pub fn decide(record: Option<&LeaseSpec>, me: &str, unchanged_for: Duration) -> Decision {
    let Some(record) = record else {
        return Decision::Create;
    };
    let holder = record.holder_identity.clone().unwrap_or_default();
    if holder == me {
        return Decision::Renew;
    }
    let duration = Duration::from_secs(record.lease_duration_seconds.unwrap_or(0).max(0) as u64);
    if !holder.is_empty() && unchanged_for < duration {
        return Decision::Wait;
    }
    Decision::Take { previous: holder }
}

/// Runs the election for one replica.
pub struct Elector {
    api: Api<Lease>,
    settings: ElectionSettings,
    leading: watch::Sender<bool>,
    /// The record last read and when it was first seen as it is.
    observed: Option<(LeaseSpec, Instant)>,
}

impl Elector {
    pub fn new(client: kube::Client, settings: ElectionSettings) -> (Self, Leadership) {
        let (tx, rx) = watch::channel(false);
        let elector = Elector {
            api: Api::namespaced(client, &settings.namespace),
            settings,
            leading: tx,
            observed: None,
        };
        (elector, Leadership { leading: rx })
    }

    /// Campaigns, then leads until `shutdown` (the Lease is then given up, `Ok`) or until the
    /// Lease cannot be renewed in time (`Err`; leadership is already withdrawn when it returns).
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<(), LostLeadership> {
        let settings = self.settings.clone();
        tracing::info!(lease = %format!("{}/{}", settings.namespace, settings.lease_name), identity = %settings.identity, "campaigning for leadership");
        loop {
            if self.try_acquire_or_renew().await {
                break;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(settings.retry_period) => {}
            }
        }
        tracing::info!(identity = %settings.identity, "became the leader");
        self.leading.send_replace(true);
        let mut renewed = Instant::now();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => {
                    self.leading.send_replace(false);
                    self.release().await;
                    return Ok(());
                }
                _ = tokio::time::sleep(settings.retry_period) => {}
            }
            // One renewal may not take longer than what is left of the deadline.
            let left = settings.renew_deadline.saturating_sub(renewed.elapsed());
            let attempt = tokio::time::timeout(left, self.try_acquire_or_renew()).await;
            if attempt == Ok(true) {
                renewed = Instant::now();
            } else if renewed.elapsed() >= settings.renew_deadline {
                self.leading.send_replace(false);
                tracing::error!(identity = %settings.identity, "leader election lost");
                return Err(LostLeadership {
                    namespace: settings.namespace.clone(),
                    name: settings.lease_name.clone(),
                    deadline: settings.renew_deadline,
                });
            }
        }
    }

    /// One attempt; `true` when we hold the Lease afterwards.
    async fn try_acquire_or_renew(&mut self) -> bool {
        let settings = &self.settings;
        let now = MicroTime(jiff::Timestamp::now());
        let lease = match self.api.get_opt(&settings.lease_name).await {
            Ok(lease) => lease,
            Err(e) => {
                tracing::debug!(error = %e, "reading the leader election Lease failed");
                return false;
            }
        };
        let record = lease.as_ref().and_then(|l| l.spec.clone());
        let unchanged_for = match (&self.observed, &record) {
            (Some((seen, at)), Some(current)) if seen == current => at.elapsed(),
            _ => {
                self.observed = record.clone().map(|r| (r, Instant::now()));
                Duration::ZERO
            }
        };
        let duration_seconds = settings.lease_duration.as_secs().max(1) as i32;
        let decision = decide(record.as_ref(), &settings.identity, unchanged_for);
        let spec = match &decision {
            Decision::Wait => return false,
            Decision::Create => LeaseSpec {
                holder_identity: Some(settings.identity.clone()),
                lease_duration_seconds: Some(duration_seconds),
                acquire_time: Some(now.clone()),
                renew_time: Some(now),
                lease_transitions: Some(0),
                ..Default::default()
            },
            Decision::Renew => LeaseSpec {
                renew_time: Some(now),
                lease_duration_seconds: Some(duration_seconds),
                ..record.clone().unwrap_or_default()
            },
            Decision::Take { previous } => {
                let old = record.clone().unwrap_or_default();
                tracing::info!(%previous, "taking over the leader election Lease");
                LeaseSpec {
                    holder_identity: Some(settings.identity.clone()),
                    lease_duration_seconds: Some(duration_seconds),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(old.lease_transitions.unwrap_or(0) + 1),
                    ..old
                }
            }
        };
        let result = match lease {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(settings.lease_name.clone()),
                        namespace: Some(settings.namespace.clone()),
                        ..Default::default()
                    },
                    spec: Some(spec.clone()),
                };
                self.api.create(&PostParams::default(), &lease).await
            }
            // A replace carries the resourceVersion read above: of two replicas taking the
            // same expired Lease, one gets a conflict.
            Some(mut lease) => {
                lease.spec = Some(spec.clone());
                self.api
                    .replace(&settings.lease_name, &PostParams::default(), &lease)
                    .await
            }
        };
        match result {
            Ok(_) => {
                self.observed = Some((spec, Instant::now()));
                true
            }
            Err(e) => {
                tracing::debug!(error = %e, "writing the leader election Lease failed");
                false
            }
        }
    }

    /// Gives the Lease up (holder empty), as client-go's ReleaseOnCancel does, if we still
    /// hold it.
    async fn release(&mut self) {
        let settings = &self.settings;
        let Ok(Some(mut lease)) = self.api.get_opt(&settings.lease_name).await else {
            return;
        };
        let Some(spec) = lease.spec.as_mut() else {
            return;
        };
        if spec.holder_identity.as_deref() != Some(settings.identity.as_str()) {
            return;
        }
        let now = MicroTime(jiff::Timestamp::now());
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.acquire_time = Some(now.clone());
        spec.renew_time = Some(now);
        match self
            .api
            .replace(&settings.lease_name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => {
                tracing::info!(identity = %settings.identity, "gave up the leader election Lease")
            }
            Err(e) => {
                tracing::warn!(error = %e, "giving up the leader election Lease failed; a follower takes it after the lease duration")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held_by(holder: &str, seconds: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: (!holder.is_empty()).then(|| holder.to_string()),
            lease_duration_seconds: Some(seconds),
            ..Default::default()
        }
    }

    #[test]
    fn a_missing_lease_is_created_and_our_own_is_renewed() {
        assert_eq!(decide(None, "me", Duration::ZERO), Decision::Create);
        assert_eq!(
            decide(Some(&held_by("me", 15)), "me", Duration::from_secs(60)),
            Decision::Renew
        );
    }

    #[test]
    fn another_holder_is_waited_for_until_its_lease_runs_out_unchanged() {
        let other = held_by("other", 15);
        assert_eq!(
            decide(Some(&other), "me", Duration::from_secs(14)),
            Decision::Wait
        );
        assert_eq!(
            decide(Some(&other), "me", Duration::from_secs(15)),
            Decision::Take {
                previous: "other".into()
            }
        );
    }

    #[test]
    fn a_given_up_lease_is_taken_at_once() {
        assert_eq!(
            decide(Some(&held_by("", 1)), "me", Duration::ZERO),
            Decision::Take {
                previous: String::new()
            }
        );
    }

    #[test]
    fn durations_that_let_two_leaders_overlap_are_refused() {
        let good = ElectionSettings {
            lease_name: DEFAULT_LEASE_NAME.into(),
            namespace: "keda".into(),
            identity: "a".into(),
            lease_duration: DEFAULT_LEASE_DURATION,
            renew_deadline: DEFAULT_RENEW_DEADLINE,
            retry_period: DEFAULT_RETRY_PERIOD,
        };
        assert_eq!(good.check(), Ok(()));
        let overlapping = ElectionSettings {
            renew_deadline: Duration::from_secs(20),
            ..good.clone()
        };
        let err = overlapping
            .check()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("lease duration"), "{err}");
        let no_retry = ElectionSettings {
            retry_period: Duration::ZERO,
            ..good
        };
        assert!(no_retry.check().is_err());
    }

    #[test]
    fn go_durations_are_read_as_kedas_environment_writes_them() {
        assert_eq!(parse_go_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_go_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_go_duration("1.5s"), Ok(Duration::from_millis(1500)));
        for bad in ["", "15", "s", "15x", "1..5s", "-1s"] {
            let err = parse_go_duration(bad)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains("is not a duration"), "{bad:?}: {err}");
        }
    }

    #[tokio::test]
    async fn gained_fires_on_each_rise_and_always_never_fires() {
        use futures::StreamExt;
        let (tx, rx) = watch::channel(false);
        let leadership = Leadership { leading: rx };
        let mut gained = Box::pin(leadership.gained());
        tx.send_replace(true);
        assert_eq!(gained.next().await, Some(()));
        tx.send_replace(false);
        tx.send_replace(true);
        assert_eq!(gained.next().await, Some(()));
        drop(tx);
        assert_eq!(gained.next().await, None);
        assert_eq!(gained.next().await, None, "an ended stream polled again");
        let always = Leadership::always();
        assert!(always.is_leader());
        assert_eq!(Box::pin(always.gained()).next().await, None);
    }
}
