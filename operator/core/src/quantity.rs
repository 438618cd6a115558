//! Metric targets and values as KEDA writes them: the float is printed with three decimals and
//! read back as a Kubernetes quantity in canonical DecimalSI form (`100.5` → `100500m`,
//! `5` → `5`, `2000` → `2k`). NaN, infinities and negative values become `0`.

mod canonical;

pub use canonical::{Quantity, QuantityError, QuantityFormat};

/// The canonical quantity string for a metric value or target.
pub fn milli_quantity(value: f64) -> String {
    if !value.is_finite() || value <= 0.0 {
        return "0".to_string();
    }
    let fixed = format!("{value:.3}");
    let (int_part, frac_part) = fixed.split_once('.').unwrap_or((fixed.as_str(), "000"));
    if frac_part != "000" {
        let milli = format!("{int_part}{frac_part}");
        let milli = milli.trim_start_matches('0');
        return format!("{milli}m");
    }
    let int_part = int_part.trim_start_matches('0');
    if int_part.is_empty() {
        return "0".to_string();
    }
    // Canonical DecimalSI: the largest SI suffix (up to E) that keeps the mantissa whole.
    const SUFFIXES: [&str; 7] = ["", "k", "M", "G", "T", "P", "E"];
    let trailing_zeros = int_part.len() - int_part.trim_end_matches('0').len();
    let groups = (trailing_zeros / 3).min(SUFFIXES.len() - 1);
    let mantissa = &int_part[..int_part.len() - groups * 3];
    format!("{mantissa}{}", SUFFIXES[groups])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn formats_like_keda() {
        let cases = [
            (100.5, "100500m"),
            (5.0, "5"),
            (0.5, "500m"),
            (1.25, "1250m"),
            (0.001, "1m"),
            (0.0004, "0"),
            (0.0005, "1m"),
            (1000.0, "1k"),
            (1500.0, "1500"),
            (2_000_000.0, "2M"),
            (10.0, "10"),
            (0.0, "0"),
            (-3.0, "0"),
            (f64::NAN, "0"),
            (f64::INFINITY, "0"),
            (f64::NEG_INFINITY, "0"),
            (1e21, "1000E"),
        ];
        for (value, want) in cases {
            assert_eq!(milli_quantity(value), want, "value {value}");
        }
    }

    proptest! {
        #[test]
        fn the_quantity_reads_back_as_the_rounded_value(v in 0.0005f64..1e9) {
            let q = milli_quantity(v);
            let (digits, scale) = match q.strip_suffix('m') {
                Some(d) => (d, 0.001),
                None => match q.char_indices().last() {
                    Some((i, 'k')) => (&q[..i], 1e3),
                    Some((i, 'M')) => (&q[..i], 1e6),
                    Some((i, 'G')) => (&q[..i], 1e9),
                    _ => (q.as_str(), 1.0),
                },
            };
            let parsed: f64 = digits.parse::<f64>().unwrap() * scale;
            prop_assert!((parsed - v).abs() <= 0.0005 + v * 1e-12, "{v} -> {q} -> {parsed}");
        }
    }
}
