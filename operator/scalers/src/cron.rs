//! The `cron` scaler (§7.6): `desiredReplicas` inside a window that opens at each `start` and
//! closes at each `end` (5-field cron in the IANA `timezone`), 0 outside. It is active iff the
//! next `end` comes no later than the next `start`. The target is 1, so the HPA asks for
//! `desiredReplicas` pods. "Now" comes from a [`Clock`], so tests choose it.

mod schedule;

use std::sync::Arc;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use keda_operator_core::names::external_metric_name;

pub use schedule::Schedule;

use crate::params::{META, Params};
use crate::{Metric, ReadFuture, Reading, Scaler, ScalerError, Target, TriggerConfig};

/// Where the scaler reads the time.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

pub struct CronScaler {
    metric_name: String,
    timezone: TimeZone,
    start: Schedule,
    end: Schedule,
    desired_replicas: i64,
    clock: Clock,
}

impl std::fmt::Debug for CronScaler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CronScaler")
            .field("metric_name", &self.metric_name)
            .field("desired_replicas", &self.desired_replicas)
            .finish_non_exhaustive()
    }
}

fn config_error(e: ScalerError) -> ScalerError {
    ScalerError::Config(format!("error parsing cron metadata: {e}"))
}

/// `*`→`x`, `/`→`Sl`, `?`→`Qm`, `,`→`Cm`, spaces removed (KEDA's cron metric name part).
fn name_part(spec: &str) -> String {
    spec.replace(' ', "")
        .replace('*', "x")
        .replace('/', "Sl")
        .replace('?', "Qm")
        .replace(',', "Cm")
}

impl CronScaler {
    pub fn new(config: TriggerConfig) -> Result<Self, ScalerError> {
        Self::with_clock(config, Arc::new(Timestamp::now))
    }

    pub fn with_clock(config: TriggerConfig, clock: Clock) -> Result<Self, ScalerError> {
        Self::parse(&config, clock).map_err(config_error)
    }

    fn parse(config: &TriggerConfig, clock: Clock) -> Result<Self, ScalerError> {
        let p = Params::new(config);
        let timezone_name = p.required("timezone", META)?;
        let timezone = TimeZone::get(&timezone_name).map_err(|_| {
            ScalerError::Config(format!(
                "unable to set param \"timezone\" value {timezone_name:?}: not an IANA time zone"
            ))
        })?;
        let start_text = p.required("start", META)?;
        let end_text = p.required("end", META)?;
        let start = Schedule::parse(&start_text).map_err(|e| {
            ScalerError::Config(format!("error parsing start schedule {start_text:?}: {e}"))
        })?;
        let end = Schedule::parse(&end_text).map_err(|e| {
            ScalerError::Config(format!("error parsing end schedule {end_text:?}: {e}"))
        })?;
        if start_text == end_text {
            return Err(ScalerError::Config(
                "start and end can not have exactly same time input".into(),
            ));
        }
        let desired_text = p.required("desiredReplicas", META)?;
        let desired_replicas: i64 = desired_text.parse().map_err(|_| {
            ScalerError::Config(format!(
                "unable to set param \"desiredReplicas\" value {desired_text:?}: not an integer"
            ))
        })?;
        if desired_replicas == 0 {
            return Err(ScalerError::Config(
                "desiredReplicas: must be non-zero".into(),
            ));
        }
        let metric_name = external_metric_name(
            config.trigger_index,
            &format!(
                "cron-{timezone_name}-{}-{}",
                name_part(&start_text),
                name_part(&end_text)
            ),
        );
        Ok(CronScaler {
            metric_name,
            timezone,
            start,
            end,
            desired_replicas,
            clock,
        })
    }

    /// The value and activity at `now`.
    pub fn at(&self, now: Timestamp) -> Reading {
        let next_start = self.start.next(now, &self.timezone);
        let next_end = self.end.next(now, &self.timezone);
        let active = match (next_start, next_end) {
            (Some(start), Some(end)) => end <= start,
            (None, Some(_)) => true,
            _ => false,
        };
        Reading {
            value: if active {
                self.desired_replicas as f64
            } else {
                0.0
            },
            active,
        }
    }
}

impl Scaler for CronScaler {
    fn metrics(&self) -> Vec<Metric> {
        vec![Metric::External {
            name: self.metric_name.clone(),
            target: Target::AverageValue(1.0),
        }]
    }

    fn read<'a>(&'a self, _metric_name: &'a str) -> ReadFuture<'a> {
        let reading = self.at((self.clock)());
        Box::pin(async move { Ok(reading) })
    }
}

#[cfg(test)]
mod tests;
