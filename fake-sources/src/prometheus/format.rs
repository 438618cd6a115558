//! Numbers and times written the way Prometheus writes them in its JSON answers.

/// A sample value as Prometheus's API writes it: Go's `FormatFloat(v, 'f', -1, 64)`, except
/// that magnitudes below 1e-6 or from 1e21 up switch to the exponent form (`1e+21`, `1e-07`),
/// the same cut-offs Go's `encoding/json` uses.
pub fn sample_value(value: f64) -> String {
    if value.is_nan() {
        return "NaN".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let magnitude = value.abs();
    if magnitude != 0.0 && !(1e-6..1e21).contains(&magnitude) {
        go_exponent(value)
    } else {
        // Rust's shortest round-trip digits without an exponent: Go's 'f' with precision -1.
        format!("{value}")
    }
}

/// Go's `FormatFloat(v, 'e', -1, 64)`: shortest digits, an exponent with a sign and at least
/// two digits.
fn go_exponent(value: f64) -> String {
    let rust = format!("{value:e}");
    let (mantissa, exponent) = rust.split_once('e').unwrap_or((rust.as_str(), "0"));
    let (sign, digits) = match exponent.strip_prefix('-') {
        Some(digits) => ('-', digits),
        None => ('+', exponent),
    };
    format!("{mantissa}e{sign}{digits:0>2}")
}

/// A time in milliseconds since the Unix epoch as Prometheus writes it: seconds, with the
/// milliseconds as a fraction only when there are any.
pub fn timestamp_json(millis: i64) -> serde_json::Value {
    if millis % 1000 == 0 {
        serde_json::Value::from(millis / 1000)
    } else {
        // Milliseconds within ±2^53 convert exactly; the shortest digits of the quotient are
        // the ones Prometheus writes (it drops nothing but trailing zeros).
        serde_json::Number::from_f64(millis as f64 / 1000.0)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_values_are_written_as_prometheus_writes_them() {
        for (value, written) in [
            (3.0, "3"),
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (0.0, "0"),
            (1e20, "100000000000000000000"),
            (1e21, "1e+21"),
            (1.5e300, "1.5e+300"),
            (1e-6, "0.000001"),
            (1e-7, "1e-07"),
            (-2.5e-9, "-2.5e-09"),
            (1e-100, "1e-100"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
        ] {
            assert_eq!(sample_value(value), written, "{value:?}");
        }
    }

    #[test]
    fn timestamps_show_milliseconds_only_when_there_are_some() {
        assert_eq!(timestamp_json(1_700_000_000_000).to_string(), "1700000000");
        assert_eq!(
            timestamp_json(1_700_000_000_124).to_string(),
            "1700000000.124"
        );
        assert_eq!(timestamp_json(-1_001).to_string(), "-1.001");
    }
}
