//! Round tick values, so a reader sees 0, 30s, 1m, 1m30s or 0, 200, 400 on an axis, never
//! 2m58s+125ms. Values step by 1, 2 or 5 times a power of ten; time steps by what clocks count
//! in (1, 2, 5, 10, 15 or 30 seconds or minutes, 1, 2, 3, 6 or 12 hours, then days). An axis
//! starts and ends on a tick, so both of its ends are labelled.

/// A step of `mantissa × 10^exponent`, mantissa 1, 2 or 5: kept apart so labels are exact
/// (0.6, not 0.6000000000000001).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Step {
    mantissa: i64,
    exponent: i32,
}

impl Step {
    fn first(exponent: i32) -> Self {
        Step {
            mantissa: 1,
            exponent,
        }
    }

    /// 1, 2, 5, 10, 20, 50, …
    fn next(self) -> Self {
        match self.mantissa {
            1 => Step {
                mantissa: 2,
                ..self
            },
            2 => Step {
                mantissa: 5,
                ..self
            },
            _ => Step::first(self.exponent + 1),
        }
    }

    fn value(self) -> f64 {
        self.mantissa as f64 * 10f64.powi(self.exponent)
    }
}

/// A value axis from `lo` to `hi`, both whole multiples of its step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ValueAxis {
    lo: i64,
    hi: i64,
    step: Step,
    /// The SI prefix every label uses (1000^unit): `k`, `M`, … on axes that reach 10,000.
    unit: i32,
}

impl ValueAxis {
    /// The smallest round step that covers `[min(lo, 0), max(hi, 0)]` in at most `most`
    /// intervals. Non-finite bounds count as 0; an empty range becomes 0..1.
    pub fn new(lo: f64, hi: f64, most: usize) -> Self {
        let finite = |v: f64| if v.is_finite() { v } else { 0.0 };
        let (lo, mut hi) = (finite(lo).min(0.0), finite(hi).max(0.0));
        if hi - lo <= 0.0 {
            hi = 1.0;
        }
        let most = most.max(1) as f64;
        let start = ((hi - lo) / most).log10().floor() as i32 - 1;
        Self::first_fit(lo, hi, most, Step::first(start))
    }

    /// A whole-number axis (replicas): steps of at least 1.
    pub fn counts(hi: i64, most: usize) -> Self {
        let hi = hi.max(1) as f64;
        Self::first_fit(0.0, hi, most.max(1) as f64, Step::first(0))
    }

    fn first_fit(lo: f64, hi: f64, most: f64, mut step: Step) -> Self {
        loop {
            let size = step.value();
            let (a, b) = ((lo / size).floor(), (hi / size).ceil());
            if b - a <= most || !size.is_finite() {
                let largest = (b * size).max(-a * size);
                let unit = if largest >= 10_000.0 {
                    (largest.log10() / 3.0).floor() as i32
                } else {
                    0
                };
                return ValueAxis {
                    lo: a as i64,
                    hi: b as i64,
                    step,
                    unit: unit.clamp(0, PREFIXES.len() as i32 - 1),
                };
            }
            step = step.next();
        }
    }

    pub fn lo(&self) -> f64 {
        self.lo as f64 * self.step.value()
    }

    pub fn hi(&self) -> f64 {
        self.hi as f64 * self.step.value()
    }

    /// Where `v` falls on the axis: 0 at `lo`, 1 at `hi`.
    pub fn fraction(&self, v: f64) -> f64 {
        (v - self.lo()) / (self.hi() - self.lo())
    }

    /// Every tick: its value and its label.
    pub fn ticks(&self) -> Vec<(f64, String)> {
        (self.lo..=self.hi)
            .map(|i| {
                let digits = i * self.step.mantissa;
                let label = match digits {
                    0 => "0".to_string(),
                    _ => {
                        decimal(digits, self.step.exponent - 3 * self.unit)
                            + PREFIXES[self.unit as usize]
                    }
                };
                (digits as f64 * 10f64.powi(self.step.exponent), label)
            })
            .collect()
    }

    /// A value in the axis' terms (its prefix), to three decimals at most.
    pub fn label(&self, v: f64) -> String {
        let scaled = v / 1000f64.powi(self.unit);
        let text = format!("{scaled:.3}");
        let text = text.trim_end_matches('0').trim_end_matches('.');
        format!("{text}{}", PREFIXES[self.unit as usize])
    }
}

const PREFIXES: [&str; 6] = ["", "k", "M", "G", "T", "P"];

/// `digits × 10^exponent` written out exactly, without trailing zeros after the point.
fn decimal(digits: i64, exponent: i32) -> String {
    if digits == 0 {
        return "0".into();
    }
    let sign = if digits < 0 { "-" } else { "" };
    let magnitude = digits.unsigned_abs().to_string();
    if exponent >= 0 {
        return format!("{sign}{magnitude}{}", "0".repeat(exponent as usize));
    }
    let places = (-exponent) as usize;
    let padded = format!("{magnitude:0>width$}", width = places + 1);
    let (whole, fraction) = padded.split_at(padded.len() - places);
    let fraction = fraction.trim_end_matches('0');
    if fraction.is_empty() {
        format!("{sign}{whole}")
    } else {
        format!("{sign}{whole}.{fraction}")
    }
}

const SECOND: u64 = 1000;
const MINUTE: u64 = 60 * SECOND;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;

/// The steps a clock counts in, in milliseconds, up to a million days.
fn clock_steps() -> impl Iterator<Item = u64> {
    let days = (0..6).flat_map(|e| [1, 2, 5].map(|m| m * 10u64.pow(e) * DAY));
    [1, 2, 5, 10, 20, 50, 100, 200, 500]
        .into_iter()
        .chain([1, 2, 5, 10, 15, 30].map(|s| s * SECOND))
        .chain([1, 2, 5, 10, 15, 30].map(|m| m * MINUTE))
        .chain([1, 2, 3, 6, 12].map(|h| h * HOUR))
        .chain(days)
}

/// A time axis from 0 to `end_ms`, both whole multiples of `step_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeAxis {
    pub step_ms: u64,
    pub end_ms: u64,
}

impl TimeAxis {
    /// The smallest clock step that covers `0..=max_ms` in at most `most` intervals (0 ms: 1 s).
    pub fn new(max_ms: u64, most: usize) -> Self {
        if max_ms == 0 {
            return TimeAxis {
                step_ms: SECOND,
                end_ms: SECOND,
            };
        }
        let most = most.max(1) as u64;
        let step_ms = clock_steps()
            .find(|step| max_ms.div_ceil(*step) <= most)
            .unwrap_or(max_ms);
        TimeAxis {
            step_ms,
            end_ms: max_ms.div_ceil(step_ms) * step_ms,
        }
    }

    pub fn fraction(&self, ms: u64) -> f64 {
        ms as f64 / self.end_ms as f64
    }

    /// Every tick: its time and its label.
    pub fn ticks(&self) -> Vec<(u64, String)> {
        (0..=self.end_ms / self.step_ms)
            .map(|i| (i * self.step_ms, clock(i * self.step_ms)))
            .collect()
    }
}

/// A duration as a person says it: `0`, `500ms`, `1.5s`, `45s`, `1m30s`, `2h`, `1d6h`.
pub fn clock(ms: u64) -> String {
    if ms == 0 {
        return "0".into();
    }
    if ms < SECOND {
        return format!("{ms}ms");
    }
    if !ms.is_multiple_of(SECOND) && ms < MINUTE {
        return format!("{}s", decimal(ms as i64, -3));
    }
    let mut out = String::new();
    let mut rest = ms;
    for (size, unit) in [(DAY, "d"), (HOUR, "h"), (MINUTE, "m"), (SECOND, "s")] {
        if rest >= size {
            out.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    if rest > 0 {
        out.push_str(&format!("{rest}ms"));
    }
    out
}
