//! Percentiles of measured durations.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The nearest-rank percentile `p` (0..=100) of `sorted` (ascending); `None` when empty.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let p = p.clamp(0.0, 100.0);
    // Nearest rank: the smallest value with at least p% of the values at or below it.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.saturating_sub(1).min(sorted.len() - 1)])
}

/// p50, p99 and max of a set of samples, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Distribution {
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Distribution {
    pub fn of(samples: &[Duration]) -> Option<Self> {
        Self::of_millis(samples.iter().map(|d| d.as_secs_f64() * 1e3).collect())
    }

    /// Of signed samples in milliseconds (a poll that came early is negative lateness).
    pub fn of_millis(mut ms: Vec<f64>) -> Option<Self> {
        ms.sort_by(f64::total_cmp);
        Some(Distribution {
            count: ms.len(),
            p50_ms: percentile(&ms, 50.0)?,
            p99_ms: percentile(&ms, 99.0)?,
            max_ms: *ms.last()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles_of_one_to_hundred_are_the_ranks() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 100.0), Some(100.0));
        assert_eq!(percentile(&v, 0.0), Some(1.0));
    }

    #[test]
    fn a_small_set_s_p99_is_its_maximum() {
        assert_eq!(percentile(&[1.0, 2.0, 10.0], 99.0), Some(10.0));
        assert_eq!(percentile(&[1.0, 2.0, 10.0], 50.0), Some(2.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn a_distribution_sorts_its_samples_and_reports_milliseconds() {
        let d = Distribution::of(&[
            Duration::from_millis(30),
            Duration::from_millis(10),
            Duration::from_millis(20),
        ])
        .unwrap();
        assert_eq!(d.count, 3);
        assert_eq!(d.p50_ms, 20.0);
        assert_eq!(d.p99_ms, 30.0);
        assert_eq!(d.max_ms, 30.0);
        assert!(Distribution::of(&[]).is_none());
        let signed = Distribution::of_millis(vec![5.0, -3.0, 1.0]).unwrap();
        assert_eq!((signed.p50_ms, signed.max_ms), (1.0, 5.0));
    }
}
