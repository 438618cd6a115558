//! Five-field cron schedules (minute hour day-of-month month day-of-week) as KEDA's cron
//! library parses them: `*`, `?`, numbers, ranges, `/step`, comma lists, and month and weekday
//! names. When both day fields are restricted, a day matches either of them.

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

/// A parsed schedule: one bit per allowed value of each field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    /// A day field that started with `*` or `?` (it then does not widen the other one).
    days_star: bool,
    weekdays_star: bool,
}

const MONTHS: &[&str] = &[
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

fn value(text: &str, names: &[&str], offset: u32) -> Result<u32, String> {
    if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(text)) {
        return Ok(i as u32 + offset);
    }
    text.parse::<u32>()
        .map_err(|_| format!("failed to parse int from {text}"))
}

fn field(
    text: &str,
    min: u32,
    max: u32,
    names: &[&str],
    offset: u32,
) -> Result<(u64, bool), String> {
    let mut bits = 0u64;
    let star = text.starts_with('*') || text.starts_with('?');
    for item in text.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => {
                let step: u32 = step
                    .parse()
                    .map_err(|_| format!("failed to parse int from {step}"))?;
                (range, Some(step))
            }
            None => (item, None),
        };
        let (low, high) = if range == "*" || range == "?" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a, names, offset)?, value(b, names, offset)?)
        } else {
            let v = value(range, names, offset)?;
            (v, if step.is_some() { max } else { v })
        };
        if low < min || high > max || low > high {
            return Err(format!(
                "{item}: values must be within {min}-{max}, lowest first"
            ));
        }
        let step = step.unwrap_or(1);
        if step == 0 {
            return Err(format!("{item}: step must be positive"));
        }
        let mut v = low;
        while v <= high {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok((bits, star))
}

impl Schedule {
    pub fn parse(spec: &str) -> Result<Schedule, String> {
        let fields: Vec<&str> = spec.split_whitespace().collect();
        let [minute, hour, day, month, weekday] = fields.as_slice() else {
            return Err(format!(
                "expected exactly 5 fields, found {}: {spec}",
                fields.len()
            ));
        };
        let (minutes, _) = field(minute, 0, 59, &[], 0)?;
        let (hours, _) = field(hour, 0, 23, &[], 0)?;
        let (days, days_star) = field(day, 1, 31, &[], 1)?;
        let (months, _) = field(month, 1, 12, MONTHS, 1)?;
        let (weekdays, weekdays_star) = field(weekday, 0, 6, WEEKDAYS, 0)?;
        Ok(Schedule {
            minutes,
            hours,
            days,
            months,
            weekdays,
            days_star,
            weekdays_star,
        })
    }

    fn day_matches(&self, date: Date) -> bool {
        let dom = self.days & (1 << date.day()) != 0;
        let dow = self.weekdays & (1 << date.weekday().to_sunday_zero_offset()) != 0;
        if self.days_star || self.weekdays_star {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// The first instant strictly after `now` whose wall-clock time in `tz` matches. A
    /// matching wall-clock time that a DST gap skips fires at the same offset after the gap;
    /// one that a fold repeats fires at its first occurrence.
    pub fn next(&self, now: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        // Candidates are compared as instants, not wall-clock times, so a time pushed past a
        // DST gap still counts when its shifted instant is after `now`.
        let mut date = now.to_zoned(tz.clone()).date();
        // Five years covers every schedule that can match at all (29 February included).
        for _ in 0..(366 * 5) {
            if self.months & (1 << date.month()) != 0 && self.day_matches(date) {
                for hour in 0..24i8 {
                    if self.hours & (1 << hour) == 0 {
                        continue;
                    }
                    for minute in 0..60i8 {
                        if self.minutes & (1 << minute) == 0 {
                            continue;
                        }
                        let at = DateTime::from_parts(date, Time::new(hour, minute, 0, 0).ok()?);
                        let Ok(zoned) = tz.to_ambiguous_zoned(at).compatible() else {
                            continue;
                        };
                        if zoned.timestamp() > now {
                            return Some(zoned.timestamp());
                        }
                    }
                }
            }
            date = date.checked_add(1.day()).ok()?;
        }
        None
    }
}
