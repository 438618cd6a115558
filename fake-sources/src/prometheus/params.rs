//! Query parameters read exactly as Prometheus reads them: times, durations, and the messages
//! it refuses them with.

use std::sync::LazyLock;

use regex::Regex;

/// What Prometheus answers for a float time too large for its clock (`Inf`, `1e300`): Go's
/// conversion of such a float to int64 gives the smallest int64 seconds, written back as
/// these milliseconds.
const OVERFLOWED_TIME_MS: i64 = -9_223_372_036_854;

/// RFC 3339 as Go's `time.RFC3339Nano` layout parses it: upper-case `T` and `Z`, seconds
/// required, any number of fraction digits, a `±hh:mm` offset.
static RFC3339: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
        .expect("the RFC 3339 pattern is valid")
});

/// Prometheus's own duration syntax (`model.ParseDuration`): units largest first, each at most
/// once, integers only.
static DURATION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")
        .expect("the duration pattern is valid")
});

/// A time parameter in milliseconds since the Unix epoch: a float of Unix seconds (rounded to
/// the millisecond, halves away from zero) or RFC 3339 (cut to the millisecond).
pub fn parse_time(text: &str) -> Option<i64> {
    if let Ok(seconds) = text.parse::<f64>() {
        if !seconds.is_finite() || seconds.abs() >= 9.0e15 {
            return Some(OVERFLOWED_TIME_MS);
        }
        let whole = seconds.trunc();
        let millis = ((seconds - whole) * 1000.0).round();
        // Both parts are integral and far inside i64's range here.
        return Some(whole as i64 * 1000 + millis as i64);
    }
    if !RFC3339.is_match(text) {
        return None;
    }
    let timestamp: jiff::Timestamp = text.parse().ok()?;
    i64::try_from(timestamp.as_nanosecond().div_euclid(1_000_000)).ok()
}

/// Why a duration parameter was refused, in Prometheus's words.
pub fn duration_error(text: &str) -> String {
    format!("cannot parse \"{text}\" to a valid duration")
}

/// A duration parameter (`timeout`, `step`) in seconds: a float of seconds or a Prometheus
/// duration such as `1m30s`.
pub fn parse_duration(text: &str) -> Result<f64, String> {
    if let Ok(seconds) = text.parse::<f64>() {
        let nanos = seconds * 1e9;
        if nanos.is_nan() || nanos.abs() > i64::MAX as f64 {
            return Err(format!("{}. It overflows int64", duration_error(text)));
        }
        return Ok(seconds);
    }
    let captures = (!text.is_empty())
        .then(|| DURATION.captures(text))
        .flatten()
        .ok_or_else(|| duration_error(text))?;
    const UNITS: [f64; 7] = [31_536_000.0, 604_800.0, 86_400.0, 3_600.0, 60.0, 1.0, 0.001];
    let mut total = 0.0;
    for (index, unit) in UNITS.iter().enumerate() {
        if let Some(count) = captures.get(index + 1) {
            let count: f64 = count.as_str().parse().map_err(|_| duration_error(text))?;
            total += count * unit;
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_times_round_to_the_millisecond() {
        assert_eq!(parse_time("1700000000"), Some(1_700_000_000_000));
        assert_eq!(parse_time("1700000000.25"), Some(1_700_000_000_250));
        assert_eq!(parse_time("1700000000.1239"), Some(1_700_000_000_124));
        assert_eq!(parse_time("1700000000.0001234"), Some(1_700_000_000_000));
        assert_eq!(parse_time("-1.0006"), Some(-1_001));
        assert_eq!(parse_time("1.7e9"), Some(1_700_000_000_000));
        assert_eq!(parse_time("Inf"), Some(OVERFLOWED_TIME_MS));
    }

    #[test]
    fn rfc3339_times_are_cut_to_the_millisecond_and_need_the_t() {
        assert_eq!(parse_time("2024-01-01T00:00:00Z"), Some(1_704_067_200_000));
        assert_eq!(
            parse_time("2024-01-01T00:00:00.1239Z"),
            Some(1_704_067_200_123)
        );
        assert_eq!(
            parse_time("2024-01-01T00:00:00+02:00"),
            Some(1_704_060_000_000)
        );
        for refused in [
            "2024-01-01 00:00:00Z",
            "2024-01-01t00:00:00Z",
            "2024-01-01T00:00:00z",
            "2024-01-01T00:00Z",
            "2024-02-30T00:00:00Z",
            "0x10",
            "soon",
            "",
        ] {
            assert_eq!(parse_time(refused), None, "{refused}");
        }
    }

    #[test]
    fn durations_are_float_seconds_or_prometheus_units_in_order() {
        assert_eq!(parse_duration("30"), Ok(30.0));
        assert_eq!(parse_duration("0.5"), Ok(0.5));
        assert_eq!(parse_duration("-3"), Ok(-3.0));
        assert_eq!(parse_duration("1m30s"), Ok(90.0));
        assert_eq!(parse_duration("500ms"), Ok(0.5));
        assert_eq!(parse_duration("1h1m"), Ok(3_660.0));
        assert_eq!(parse_duration("1y"), Ok(31_536_000.0));
        for refused in ["", "1.5s", "1m1h", "5q", "1s1s"] {
            assert_eq!(
                parse_duration(refused),
                Err(duration_error(refused)),
                "{refused}"
            );
        }
        assert!(
            parse_duration("1e300")
                .unwrap_err()
                .ends_with("overflows int64")
        );
    }
}
