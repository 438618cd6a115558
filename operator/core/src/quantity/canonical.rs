//! Kubernetes quantities as `resource.Quantity` keeps them: parsed exactly (to nano precision,
//! rounded away from zero beyond it) and printed in canonical form with the format of the
//! suffix the user wrote. KEDA's cpu/memory scaler parses `value` this way and the HPA gets
//! the canonical string, so `512Mi` stays `512Mi`, `1024Mi` becomes `1Gi`, `0.5` becomes `500m`.

use std::fmt;

/// How a quantity was written, which decides how it is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuantityFormat {
    /// No suffix or an SI one (`m`, `k`, `M`, …).
    DecimalSi,
    /// A binary suffix (`Ki`, `Mi`, …).
    BinarySi,
    /// An `e`/`E` exponent.
    DecimalExponent,
}

/// An exact quantity: `mantissa × 10^exponent`, with no trailing zeros in the mantissa.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity {
    mantissa: i128,
    exponent: i32,
    format: QuantityFormat,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a Kubernetes quantity")]
pub struct QuantityError(String);

/// The smallest scale a quantity keeps (nano).
const MIN_EXPONENT: i32 = -9;
/// More digits than this cannot be held exactly.
const MAX_DIGITS: usize = 30;

fn pow10(n: u32) -> Option<i128> {
    10i128.checked_pow(n)
}

impl Quantity {
    pub fn parse(text: &str) -> Result<Quantity, QuantityError> {
        let error = || QuantityError(text.to_string());
        let (negative, rest) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, suffix) = rest.split_at(number_end);
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
            return Err(error());
        }
        let digits = format!("{whole}{fraction}");
        let digits = digits.trim_start_matches('0');
        if digits.len() > MAX_DIGITS {
            return Err(error());
        }
        let mut mantissa: i128 = if digits.is_empty() {
            0
        } else {
            digits.parse().map_err(|_| error())?
        };
        let fraction_len = i32::try_from(fraction.len()).map_err(|_| error())?;
        let mut exponent = -fraction_len;
        let (format, shift, binary) = match suffix {
            "" => (QuantityFormat::DecimalSi, 0, 0),
            "n" => (QuantityFormat::DecimalSi, -9, 0),
            "u" => (QuantityFormat::DecimalSi, -6, 0),
            "m" => (QuantityFormat::DecimalSi, -3, 0),
            "k" => (QuantityFormat::DecimalSi, 3, 0),
            "M" => (QuantityFormat::DecimalSi, 6, 0),
            "G" => (QuantityFormat::DecimalSi, 9, 0),
            "T" => (QuantityFormat::DecimalSi, 12, 0),
            "P" => (QuantityFormat::DecimalSi, 15, 0),
            "E" => (QuantityFormat::DecimalSi, 18, 0),
            "Ki" => (QuantityFormat::BinarySi, 0, 10),
            "Mi" => (QuantityFormat::BinarySi, 0, 20),
            "Gi" => (QuantityFormat::BinarySi, 0, 30),
            "Ti" => (QuantityFormat::BinarySi, 0, 40),
            "Pi" => (QuantityFormat::BinarySi, 0, 50),
            "Ei" => (QuantityFormat::BinarySi, 0, 60),
            other => {
                let power = other
                    .strip_prefix(['e', 'E'])
                    .filter(|p| !p.is_empty() && p.len() <= 4)
                    .and_then(|p| p.parse::<i32>().ok())
                    .ok_or_else(error)?;
                (QuantityFormat::DecimalExponent, power, 0)
            }
        };
        mantissa = mantissa.checked_mul(1i128 << binary).ok_or_else(error)?;
        exponent += shift;
        if exponent < MIN_EXPONENT {
            // Finer than nano: rounded away from zero, as resource.Quantity does.
            let drop = (MIN_EXPONENT - exponent) as u32;
            mantissa = match pow10(drop) {
                Some(divisor) => mantissa / divisor + i128::from(mantissa % divisor != 0),
                None => i128::from(mantissa != 0),
            };
            exponent = MIN_EXPONENT;
        }
        while mantissa != 0 && mantissa % 10 == 0 {
            mantissa /= 10;
            exponent += 1;
        }
        if mantissa == 0 {
            exponent = 0;
        }
        if exponent > 60 {
            return Err(error());
        }
        Ok(Quantity {
            mantissa: if negative { -mantissa } else { mantissa },
            exponent,
            format,
        })
    }

    pub fn as_f64(&self) -> f64 {
        self.mantissa as f64 * 10f64.powi(self.exponent)
    }

    pub fn is_positive(&self) -> bool {
        self.mantissa > 0
    }

    /// Canonical decimal form: the largest exponent that is a multiple of 3 and keeps the
    /// mantissa whole, as an SI suffix or an `e` exponent.
    fn decimal(&self, exponent_form: bool) -> String {
        let power = self.exponent.div_euclid(3) * 3;
        let Some(mantissa) = pow10((self.exponent - power) as u32)
            .and_then(|scale| self.mantissa.checked_mul(scale))
        else {
            return format!("{}e{}", self.mantissa, self.exponent);
        };
        let suffix = match (exponent_form, power) {
            (_, 0) => String::new(),
            (true, p) => format!("e{p}"),
            (false, -9) => "n".into(),
            (false, -6) => "u".into(),
            (false, -3) => "m".into(),
            (false, 3) => "k".into(),
            (false, 6) => "M".into(),
            (false, 9) => "G".into(),
            (false, 12) => "T".into(),
            (false, 15) => "P".into(),
            (false, 18) => "E".into(),
            (false, p) => format!("e{p}"),
        };
        format!("{mantissa}{suffix}")
    }

    /// Canonical binary form for whole values of at least 1024 (smaller or fractional ones
    /// print as decimal, so nothing is rounded).
    fn binary(&self) -> Option<String> {
        const SUFFIXES: [&str; 7] = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
        if self.exponent < 0 {
            return None;
        }
        let mut whole = self.mantissa.checked_mul(pow10(self.exponent as u32)?)?;
        if whole.abs() < 1024 {
            return None;
        }
        let mut power = 0;
        while power < SUFFIXES.len() - 1 && whole % 1024 == 0 {
            whole /= 1024;
            power += 1;
        }
        Some(format!("{whole}{}", SUFFIXES[power]))
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mantissa == 0 {
            return f.write_str("0");
        }
        let text = match self.format {
            QuantityFormat::DecimalSi => self.decimal(false),
            QuantityFormat::DecimalExponent => self.decimal(true),
            QuantityFormat::BinarySi => self.binary().unwrap_or_else(|| self.decimal(false)),
        };
        f.write_str(&text)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn prints_the_canonical_form_of_the_written_format() {
        let cases = [
            ("512Mi", "512Mi"),
            ("1024Mi", "1Gi"),
            ("1536Mi", "1536Mi"),
            ("0.5Gi", "512Mi"),
            ("1.5Ki", "1536"),
            ("0.5Ki", "512"),
            ("100Ki", "100Ki"),
            ("1Ei", "1Ei"),
            ("1.0001Ki", "1024102400u"),
            ("500m", "500m"),
            ("0.5", "500m"),
            ("1.5", "1500m"),
            ("2000", "2k"),
            ("1500", "1500"),
            ("0.1k", "100"),
            ("10k", "10k"),
            ("+3G", "3G"),
            ("1e3", "1e3"),
            ("1E3", "1e3"),
            ("1.5e3", "1500"),
            ("12e-1", "1200e-3"),
            ("100n", "100n"),
            ("1.1n", "2n"),
            ("0.000000001", "1n"),
            ("0", "0"),
            ("0Mi", "0"),
            ("007", "7"),
        ];
        for (text, want) in cases {
            let quantity = Quantity::parse(text).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(quantity.to_string(), want, "{text}");
        }
    }

    #[test]
    fn malformed_quantities_are_errors_naming_the_text() {
        for text in [
            "", "abc", "1.2.3", "5Xi", "--5", "e3", "1e", "1ee3", ".", "5 Mi", "1e99999",
        ] {
            assert_eq!(
                Quantity::parse(text).unwrap_err().to_string(),
                format!("{text:?} is not a Kubernetes quantity")
            );
        }
    }

    #[test]
    fn values_are_exact() {
        assert_eq!(Quantity::parse("512Mi").unwrap().as_f64(), 536_870_912.0);
        assert_eq!(Quantity::parse("250m").unwrap().as_f64(), 0.25);
        assert!(Quantity::parse("1n").unwrap().is_positive());
        assert!(!Quantity::parse("-1").unwrap().is_positive());
    }

    proptest! {
        #[test]
        fn the_canonical_form_parses_back_to_the_same_value(
            whole in 0u64..1_000_000,
            fraction in 0u32..1000,
            suffix in proptest::sample::select(&["", "m", "k", "M", "Ki", "Mi", "Gi", "e3", "e-2"][..]),
        ) {
            let text = format!("{whole}.{fraction:03}{suffix}");
            let quantity = Quantity::parse(&text).unwrap();
            let again = Quantity::parse(&quantity.to_string()).unwrap();
            prop_assert_eq!(again.mantissa, quantity.mantissa);
            prop_assert_eq!(again.exponent, quantity.exponent);
            prop_assert_eq!(again.to_string(), quantity.to_string(), "stable");
        }

        #[test]
        fn arbitrary_text_never_panics(text in ".{0,24}") {
            let _ = Quantity::parse(&text).map(|q| q.to_string());
        }
    }
}
