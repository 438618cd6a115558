//! A model of the HorizontalPodAutoscaler controller for external metrics, enough to replay
//! what happens between 1 and N replicas: the replica count each metric asks for (with the
//! controller's 10 % tolerance), the largest of them, the stabilization windows, the default
//! scale-up rate limit and the bounds. The HPA does nothing while the target is at 0 replicas
//! (ScalingDisabled) — that is KEDA's part.

use std::collections::VecDeque;

use keda_operator_core::fallback::{MetricTarget, MetricTargetType};

/// The HPA controller's default tolerance (`--horizontal-pod-autoscaler-tolerance`).
pub const TOLERANCE: f64 = 0.1;
/// The default scale-down stabilization window, in seconds.
pub const DEFAULT_SCALE_DOWN_WINDOW_SECS: i64 = 300;

/// The replica count one metric asks for (the HPA controller's replica calculator).
pub fn desired_for(target: MetricTarget, value: f64, current: i32) -> i32 {
    let current_f = f64::from(current.max(1));
    let t = target.value;
    match target.metric_type {
        MetricTargetType::AverageValue => {
            let ratio = value / (t * current_f);
            if (ratio - 1.0).abs() <= TOLERANCE {
                current
            } else {
                (value / t).ceil() as i32
            }
        }
        MetricTargetType::Value => {
            let ratio = value / t;
            if (ratio - 1.0).abs() <= TOLERANCE {
                current
            } else {
                (ratio * current_f).ceil() as i32
            }
        }
    }
}

/// The HPA's settings the model reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HpaSettings {
    pub min: i32,
    pub max: i32,
    pub scale_down_window_ms: i64,
    pub scale_up_window_ms: i64,
    /// `paused-scale-in` / `paused-scale-out`: KEDA disables that direction in the HPA.
    pub scale_down_disabled: bool,
    pub scale_up_disabled: bool,
}

/// The HPA controller's memory: its recent recommendations.
#[derive(Debug, Default)]
pub struct HpaModel {
    recommendations: VecDeque<(i64, i32)>,
}

impl HpaModel {
    /// One sync: `desired` is the largest replica count the metrics ask for (`None` when no
    /// metric could be read: the HPA leaves the replicas alone). Returns the new count.
    pub fn sync(
        &mut self,
        settings: &HpaSettings,
        now_ms: i64,
        current: i32,
        desired: Option<i32>,
    ) -> i32 {
        let Some(desired) = desired else {
            return current;
        };
        let desired = desired.clamp(settings.min, settings.max.max(settings.min));
        self.recommendations.push_back((now_ms, desired));
        let oldest = now_ms
            - settings
                .scale_down_window_ms
                .max(settings.scale_up_window_ms);
        while self
            .recommendations
            .front()
            .is_some_and(|(t, _)| *t < oldest)
        {
            self.recommendations.pop_front();
        }
        let within = |window: i64| {
            self.recommendations
                .iter()
                .filter(move |(t, _)| *t >= now_ms - window)
                .map(|(_, r)| *r)
        };
        // Scale down only as far as the highest recent recommendation; scale up only as far as
        // the lowest recent one.
        let down_floor = within(settings.scale_down_window_ms)
            .max()
            .unwrap_or(desired);
        let up_ceiling = within(settings.scale_up_window_ms).min().unwrap_or(desired);
        let mut next = current;
        if desired > current {
            // The default scale-up policy: at most double, or four more, per period.
            let limit = (current * 2).max(current + 4);
            next = up_ceiling.max(current).min(limit);
            if settings.scale_up_disabled {
                next = current;
            }
        } else if desired < current {
            next = down_floor.min(current);
            if settings.scale_down_disabled {
                next = current;
            }
        }
        next.clamp(settings.min, settings.max.max(settings.min))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> HpaSettings {
        HpaSettings {
            min: 1,
            max: 10,
            scale_down_window_ms: 300_000,
            scale_up_window_ms: 0,
            scale_down_disabled: false,
            scale_up_disabled: false,
        }
    }

    fn target(metric_type: MetricTargetType, value: f64) -> MetricTarget {
        MetricTarget { metric_type, value }
    }

    #[test]
    fn each_target_type_asks_for_its_replicas_within_tolerance() {
        assert_eq!(
            desired_for(target(MetricTargetType::AverageValue, 10.0), 30.0, 1),
            3
        );
        assert_eq!(
            desired_for(target(MetricTargetType::AverageValue, 10.0), 31.0, 3),
            3,
            "within 10 %"
        );
        assert_eq!(
            desired_for(target(MetricTargetType::AverageValue, 10.0), 35.0, 3),
            4
        );
        assert_eq!(
            desired_for(target(MetricTargetType::Value, 10.0), 20.0, 2),
            4
        );
        assert_eq!(
            desired_for(target(MetricTargetType::Value, 10.0), 10.5, 2),
            2
        );
        assert_eq!(
            desired_for(target(MetricTargetType::AverageValue, 10.0), 0.0, 3),
            0
        );
    }

    #[test]
    fn scale_down_waits_for_the_stabilization_window() {
        let mut hpa = HpaModel::default();
        let s = settings();
        assert_eq!(hpa.sync(&s, 0, 1, Some(5)), 5);
        assert_eq!(hpa.sync(&s, 15_000, 5, Some(1)), 5, "5 is still recent");
        assert_eq!(hpa.sync(&s, 299_000, 5, Some(1)), 5);
        assert_eq!(hpa.sync(&s, 301_000, 5, Some(1)), 1);
    }

    #[test]
    fn scale_up_is_rate_limited_and_bounded() {
        let mut hpa = HpaModel::default();
        let s = settings();
        assert_eq!(hpa.sync(&s, 0, 1, Some(50)), 5, "max(2 × 1, 1 + 4)");
        assert_eq!(hpa.sync(&s, 15_000, 5, Some(50)), 10, "max replicas");
        assert_eq!(hpa.sync(&s, 30_000, 10, None), 10, "no metric: no change");
    }

    #[test]
    fn paused_directions_hold() {
        let mut hpa = HpaModel::default();
        let s = HpaSettings {
            scale_up_disabled: true,
            scale_down_window_ms: 0,
            ..settings()
        };
        assert_eq!(hpa.sync(&s, 0, 2, Some(8)), 2);
        assert_eq!(hpa.sync(&s, 15_000, 2, Some(1)), 1);
    }
}
