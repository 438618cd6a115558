//! The `cron` scaler (§7.6 of the behaviour reference): active while "now" is inside the window
//! from `start` to `end` (5-field cron expressions in `timezone`), that is when the next `end`
//! comes before the next `start`. Its value is `desiredReplicas` inside the window and 0
//! outside, against a target of 1, so the HPA asks for `desiredReplicas`.
//!
//! "Now" comes from an injectable clock, so the window logic is tested on fixed instants
//! (daylight-saving changes, windows across midnight).

use std::sync::Arc;

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

use crate::params::{META, Params};
use crate::{Metric, ReadFuture, Reading, Scaler, ScalerError, Target, TriggerConfig};

pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

pub struct CronScaler {
    timezone: TimeZone,
    start: Schedule,
    end: Schedule,
    desired_replicas: i64,
    metric_name: String,
    target: Target,
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

/// KEDA's rewriting of a cron expression for the metric name.
fn name_part(expression: &str) -> String {
    expression
        .replace(' ', "")
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
        let p = Params::new(&config);
        let tz_name = p.required("timezone", META)?;
        let timezone = TimeZone::get(tz_name.trim()).map_err(|_| {
            ScalerError::Config(format!(
                "unable to set param \"timezone\" value {tz_name:?}: not an IANA time zone"
            ))
        })?;
        let start_text = p.required("start", META)?;
        let end_text = p.required("end", META)?;
        let start = Schedule::parse(&start_text)
            .map_err(|e| ScalerError::Config(format!("error parsing start schedule: {e}")))?;
        let end = Schedule::parse(&end_text)
            .map_err(|e| ScalerError::Config(format!("error parsing end schedule: {e}")))?;
        if start_text.trim() == end_text.trim() {
            return Err(ScalerError::Config(
                "error parsing cron metadata: start and end should not be the same".to_string(),
            ));
        }
        let replicas_text = p.required("desiredReplicas", META)?;
        let desired_replicas = replicas_text.trim().parse::<i64>().map_err(|_| {
            ScalerError::Config(format!(
                "unable to set param \"desiredReplicas\" value {replicas_text:?}: not an integer"
            ))
        })?;
        if desired_replicas == 0 {
            return Err(ScalerError::Config(
                "param \"desiredReplicas\" must not be 0".to_string(),
            ));
        }
        let metric_name = keda_operator_core::names::external_metric_name(
            config.trigger_index,
            &format!(
                "cron-{}-{}-{}",
                tz_name.trim(),
                name_part(&start_text),
                name_part(&end_text)
            ),
        );
        let target = config.metric_type.external_target(1.0)?;
        Ok(CronScaler {
            timezone,
            start,
            end,
            desired_replicas,
            metric_name,
            target,
            clock,
        })
    }

    /// Inside the window: the next `end` comes before the next `start`.
    pub fn is_active_at(&self, now: Timestamp) -> bool {
        match (
            self.start.next_after(now, &self.timezone),
            self.end.next_after(now, &self.timezone),
        ) {
            (Some(start), Some(end)) => end < start,
            (None, Some(_)) => true,
            _ => false,
        }
    }
}

impl Scaler for CronScaler {
    fn metrics(&self) -> Vec<Metric> {
        vec![Metric::External {
            name: self.metric_name.clone(),
            target: self.target,
        }]
    }

    fn read<'a>(&'a self, _metric_name: &'a str) -> ReadFuture<'a> {
        let active = self.is_active_at((self.clock)());
        let value = if active {
            self.desired_replicas as f64
        } else {
            0.0
        };
        Box::pin(async move { Ok(Reading { value, active }) })
    }
}

/// A 5-field cron expression (minute hour day-of-month month day-of-week), as Go's
/// robfig/cron standard parser reads it: `*`, `?`, lists, ranges, steps, month and weekday
/// names, and the `@yearly`…`@hourly` descriptors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    /// Day-of-month or day-of-week given as `*`/`?`: then both must match; otherwise either.
    any_day_star: bool,
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

fn field(
    text: &str,
    min: u32,
    max: u32,
    names: &[&str],
    what: &str,
) -> Result<(u64, bool), String> {
    let mut bits = 0u64;
    let mut star = false;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s.parse().map_err(|_| format!("{what}: bad step {s:?}"))?;
                if step == 0 {
                    return Err(format!("{what}: step must be positive"));
                }
                (r, Some(step))
            }
            None => (part, None),
        };
        let value = |v: &str| -> Result<u32, String> {
            if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(v)) {
                return Ok(i as u32 + min);
            }
            v.parse::<u32>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| format!("{what}: {v:?} is not in {min}-{max}"))
        };
        let (low, high) = if range == "*" || range == "?" {
            star = step.is_none() && text.split(',').count() == 1;
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a)?, value(b)?)
        } else {
            let v = value(range)?;
            (v, if step.is_some() { max } else { v })
        };
        if low > high {
            return Err(format!("{what}: range {range:?} goes backwards"));
        }
        let mut v = low;
        while v <= high {
            bits |= 1 << v;
            v += step.unwrap_or(1);
        }
    }
    Ok((bits, star))
}

impl Schedule {
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let text = text.trim();
        let expanded = match text {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            other if other.starts_with('@') => {
                return Err(format!("unrecognized descriptor {other:?}"));
            }
            other => other,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(format!(
                "expected exactly 5 fields (minute hour day-of-month month day-of-week), found {}: {text:?}",
                fields.len()
            ));
        }
        let (minutes, _) = field(fields[0], 0, 59, &[], "minute")?;
        let (hours, _) = field(fields[1], 0, 23, &[], "hour")?;
        let (days, day_star) = field(fields[2], 1, 31, &[], "day of month")?;
        let (months, _) = field(fields[3], 1, 12, &MONTHS, "month")?;
        let (weekdays, weekday_star) = field(fields[4], 0, 6, &WEEKDAYS, "day of week")?;
        Ok(Schedule {
            minutes,
            hours,
            days,
            months,
            weekdays,
            any_day_star: day_star || weekday_star,
        })
    }

    fn day_matches(&self, date: Date) -> bool {
        let dom = self.days & (1 << date.day()) != 0;
        let dow = self.weekdays & (1 << date.weekday().to_sunday_zero_offset()) != 0;
        if self.any_day_star {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// The first instant strictly after `now` (to the minute) that matches, in `tz`; `None`
    /// when nothing matches within five years (e.g. 30 February).
    pub fn next_after(&self, now: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let local = now.to_zoned(tz.clone()).datetime();
        let mut t: DateTime = local
            .date()
            .at(local.hour(), local.minute(), 0, 0)
            .checked_add(1.minute())
            .ok()?;
        let limit = local.date().checked_add(5.years()).ok()?;
        while t.date() < limit {
            if self.months & (1 << t.month()) == 0 {
                let first = Date::new(t.year(), t.month(), 1).ok()?;
                t = first.checked_add(1.month()).ok()?.at(0, 0, 0, 0);
                continue;
            }
            if !self.day_matches(t.date()) {
                t = t.date().checked_add(1.day()).ok()?.at(0, 0, 0, 0);
                continue;
            }
            if self.hours & (1 << t.hour()) == 0 {
                t = t.date().at(t.hour(), 0, 0, 0).checked_add(1.hour()).ok()?;
                continue;
            }
            if self.minutes & (1 << t.minute()) == 0 {
                t = t.checked_add(1.minute()).ok()?;
                continue;
            }
            let at = tz.to_ambiguous_zoned(t).compatible().ok()?.timestamp();
            if at > now {
                return Some(at);
            }
            t = t.checked_add(1.minute()).ok()?;
        }
        None
    }
}

#[cfg(test)]
mod tests;
