//! The cron window a rule gets: the next whole UTC minute at least [`CRON_LEAD`] away, open for
//! one minute, so a rule sees a `cron` trigger inactive, active and inactive again within its
//! deadlines (cron expressions have whole minutes).

use std::time::Duration;

use crate::scenario::deadline::CRON_LEAD;

#[derive(Debug, Clone, PartialEq)]
pub struct CronWindow {
    /// From the moment the window was placed to its opening.
    pub opens: Duration,
    /// From the moment the window was placed to its close.
    pub closes: Duration,
    /// Seconds since the epoch of the opening (a whole minute).
    opening_epoch: i64,
}

impl CronWindow {
    pub fn after(now: jiff::Timestamp) -> Self {
        let now_ms = now.as_millisecond();
        let earliest = now_ms + CRON_LEAD.as_millis() as i64;
        let opening_ms = earliest.div_euclid(60_000) * 60_000
            + if earliest.rem_euclid(60_000) == 0 {
                0
            } else {
                60_000
            };
        let opens = Duration::from_millis((opening_ms - now_ms) as u64);
        CronWindow {
            opens,
            closes: opens + Duration::from_secs(60),
            opening_epoch: opening_ms / 1000,
        }
    }

    /// `cronStartMinute`, `cronStartHour`, `cronEndMinute`, `cronEndHour` (UTC).
    pub fn vars(&self) -> Vec<(String, String)> {
        let minute_hour = |epoch: i64| ((epoch / 60) % 60, (epoch / 3600) % 24);
        let (start_minute, start_hour) = minute_hour(self.opening_epoch);
        let (end_minute, end_hour) = minute_hour(self.opening_epoch + 60);
        [
            ("cronStartMinute", start_minute),
            ("cronStartHour", start_hour),
            ("cronEndMinute", end_minute),
            ("cronEndHour", end_hour),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> jiff::Timestamp {
        text.parse().unwrap()
    }

    fn vars(w: &CronWindow) -> Vec<String> {
        w.vars().into_iter().map(|(_, v)| v).collect()
    }

    #[test]
    fn the_window_opens_on_the_first_minute_at_least_the_lead_away() {
        let w = CronWindow::after(at("2026-12-07T01:37:30.250Z"));
        assert_eq!(w.opens, Duration::from_millis(29_750));
        assert_eq!(w.closes, Duration::from_millis(89_750));
        assert_eq!(vars(&w), ["38", "1", "39", "1"]);
    }

    #[test]
    fn a_minute_closer_than_the_lead_is_skipped() {
        let w = CronWindow::after(at("2026-12-07T01:37:45Z"));
        assert_eq!(w.opens, Duration::from_secs(75));
        assert_eq!(vars(&w), ["39", "1", "40", "1"]);
    }

    #[test]
    fn the_window_may_close_in_the_next_hour_and_day() {
        let w = CronWindow::after(at("2026-12-07T23:58:10Z"));
        assert_eq!(vars(&w), ["59", "23", "0", "0"]);
        let w = CronWindow::after(at("2026-12-07T23:59:40Z"));
        assert_eq!(w.opens, Duration::from_secs(20));
        assert_eq!(vars(&w), ["0", "0", "1", "0"]);
    }
}
