//! The few places where Go's numbers differ from Rust's and KEDA's results would show it:
//! `int(float64)` out of range, `math.Pow` (not the C library's `pow`: integer powers are
//! products of repeated squares, so `x ** 3` rounds twice), and `strconv.ParseFloat`'s input
//! and error text.

/// Go's `int(x)` for a float64 on amd64: truncation, and the minimum int when out of range.
pub(super) fn go_int(x: f64) -> i64 {
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if x.is_nan() || !(-LIMIT..LIMIT).contains(&x) {
        i64::MIN
    } else {
        x as i64
    }
}

const SHIFT: u32 = 52;
const MASK: u64 = 0x7ff;
const BIAS: i64 = 1023;
const SMALLEST_NORMAL: f64 = 2.2250738585072014e-308;

/// Scales a subnormal up so its exponent bits are meaningful.
fn normalize(x: f64) -> (f64, i64) {
    if x.abs() < SMALLEST_NORMAL {
        (x * (1u64 << 52) as f64, -52)
    } else {
        (x, 0)
    }
}

fn exponent_bits(x: f64) -> i64 {
    ((x.to_bits() >> SHIFT) & MASK) as i64
}

fn with_exponent_bits(x: f64, exponent: i64) -> f64 {
    let cleared = x.to_bits() & !(MASK << SHIFT);
    f64::from_bits(cleared | ((exponent as u64 & MASK) << SHIFT))
}

/// `x = frac × 2^exp` with `|frac|` in [0.5, 1).
fn frexp(x: f64) -> (f64, i64) {
    if x == 0.0 || !x.is_finite() {
        return (x, 0);
    }
    let (x, shift) = normalize(x);
    let exp = shift + exponent_bits(x) - BIAS + 1;
    (with_exponent_bits(x, BIAS - 1), exp)
}

/// `frac × 2^exp`, rounding once if the result is subnormal.
fn ldexp(frac: f64, exp: i64) -> f64 {
    if frac == 0.0 || !frac.is_finite() {
        return frac;
    }
    let (frac, shift) = normalize(frac);
    let mut exp = exp + shift + exponent_bits(frac) - BIAS;
    if exp < -1075 {
        return 0.0f64.copysign(frac);
    }
    if exp > 1023 {
        return f64::INFINITY.copysign(frac);
    }
    let mut scale = 1.0;
    if exp < -1022 {
        exp += 53;
        scale = 1.0 / (1u64 << 53) as f64;
    }
    scale * with_exponent_bits(frac, exp + BIAS)
}

fn is_odd_int(x: f64) -> bool {
    if x.abs() >= (1u64 << 53) as f64 {
        return false;
    }
    x.fract() == 0.0 && (x.trunc() as i64) & 1 == 1
}

/// Go's `math.Pow`. Only a fractional exponent goes through `exp` and `ln`, whose last bit
/// may differ from Go's assembly versions.
pub(super) fn go_pow(x: f64, y: f64) -> f64 {
    if y == 0.0 || x == 1.0 {
        return 1.0;
    }
    if y == 1.0 {
        return x;
    }
    if x.is_nan() || y.is_nan() {
        return f64::NAN;
    }
    if x == 0.0 {
        let odd_negative_zero = x.is_sign_negative() && is_odd_int(y);
        return match (y < 0.0, odd_negative_zero) {
            (true, true) => f64::NEG_INFINITY,
            (true, false) => f64::INFINITY,
            (false, true) => x,
            (false, false) => 0.0,
        };
    }
    if y.is_infinite() {
        return if x == -1.0 {
            1.0
        } else if (x.abs() < 1.0) == (y > 0.0) {
            0.0
        } else {
            f64::INFINITY
        };
    }
    if x.is_infinite() {
        if x < 0.0 {
            return go_pow(1.0 / x, -y);
        }
        return if y < 0.0 { 0.0 } else { f64::INFINITY };
    }
    if y == 0.5 {
        return x.sqrt();
    }
    if y == -0.5 {
        return 1.0 / x.sqrt();
    }

    let mut whole = y.abs().trunc();
    let mut fraction = y.abs() - whole;
    if fraction != 0.0 && x < 0.0 {
        return f64::NAN;
    }
    if whole >= 9_223_372_036_854_775_808.0 {
        return if x == -1.0 {
            1.0
        } else if (x.abs() < 1.0) == (y > 0.0) {
            0.0
        } else {
            f64::INFINITY
        };
    }
    // The answer is mantissa × 2^exponent.
    let mut mantissa = 1.0;
    let mut exponent: i64 = 0;
    if fraction != 0.0 {
        if fraction > 0.5 {
            fraction -= 1.0;
            whole += 1.0;
        }
        mantissa = (fraction * x.ln()).exp();
    }
    let (mut square, mut square_exponent) = frexp(x);
    let mut bits = whole as i64;
    while bits != 0 {
        if !(-(1 << 12)..=(1 << 12)).contains(&square_exponent) {
            // Certain over- or underflow: let ldexp produce it.
            exponent += square_exponent;
            break;
        }
        if bits & 1 == 1 {
            mantissa *= square;
            exponent += square_exponent;
        }
        square *= square;
        square_exponent <<= 1;
        if square < 0.5 {
            square += square;
            square_exponent -= 1;
        }
        bits >>= 1;
    }
    if y < 0.0 {
        mantissa = 1.0 / mantissa;
        exponent = -exponent;
    }
    ldexp(mantissa, exponent)
}

/// Go's `strconv.ParseFloat(s, 64)` for decimal input, with its error text. Go also reads
/// hexadecimal floats (`0x1p-2`) and `_` after a base prefix; those are refused here as
/// invalid syntax.
pub(super) fn go_parse_float(s: &str) -> Result<f64, String> {
    let syntax = || format!("strconv.ParseFloat: parsing {s:?}: invalid syntax");
    let (sign, unsigned) = match s.as_bytes().first() {
        Some(b'+') => (1.0, &s[1..]),
        Some(b'-') => (-1.0, &s[1..]),
        _ => (1.0, s),
    };
    if unsigned.eq_ignore_ascii_case("inf") || unsigned.eq_ignore_ascii_case("infinity") {
        return Ok(sign * f64::INFINITY);
    }
    if s.eq_ignore_ascii_case("nan") {
        return Ok(f64::NAN);
    }
    if !is_decimal(unsigned) {
        return Err(syntax());
    }
    match s.parse::<f64>() {
        Ok(value) if value.is_infinite() => Err(format!(
            "strconv.ParseFloat: parsing {s:?}: value out of range"
        )),
        Ok(value) => Ok(value),
        Err(_) => Err(syntax()),
    }
}

/// `digits [. digits] [e [sign] digits]`, with at least one mantissa digit.
fn is_decimal(s: &str) -> bool {
    let bytes = s.as_bytes();
    let digits_from = |mut i: usize| {
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        i
    };
    let mut i = digits_from(0);
    let mut mantissa_digits = i;
    if bytes.get(i) == Some(&b'.') {
        let after_dot = digits_from(i + 1);
        mantissa_digits += after_dot - (i + 1);
        i = after_dot;
    }
    if mantissa_digits == 0 {
        return false;
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(bytes.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exponent_end = digits_from(i);
        if exponent_end == i {
            return false;
        }
        i = exponent_end;
    }
    i == bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn powers_match_the_bits_go_math_pow_gives() {
        // (x, y, math.Float64bits(math.Pow(x, y))) as printed by Go 1.26 on amd64.
        let table: &[(f64, f64, u64)] = &[
            (9.0, 100.0, 6_034_776_798_212_829_254),
            (1.1, 3.0, 4_608_673_110_276_677_044),
            (1.1, 7.0, 4_611_455_060_778_057_431),
            (0.3, 5.0, 4_567_749_621_038_701_724),
            (10.0, -3.0, 4_562_254_508_917_369_340),
            (2.0, -1.0, 4_602_678_819_172_646_912),
            (2.0, 1100.0, 9_218_868_437_227_405_312),
            (2.0, -1074.0, 1),
            (-2.0, 3.0, 13_844_065_254_536_904_704),
            (-0.0, -3.0, 18_442_240_474_082_181_120),
        ];
        for (x, y, bits) in table {
            assert_eq!(go_pow(*x, *y).to_bits(), *bits, "{x} ** {y}");
        }
        // A fractional exponent goes through exp and ln: at most one unit in the last place.
        for (x, y, bits) in [
            (1.5, 2.5, 4_613_387_649_414_743_381u64),
            (7.0, 0.3, 4_610_752_827_379_810_040),
        ] {
            assert!(go_pow(x, y).to_bits().abs_diff(bits) <= 1, "{x} ** {y}");
        }
        assert!(go_pow(-8.0, 0.5).is_nan());
        assert_eq!(go_pow(f64::NAN, 0.0), 1.0);
        assert_eq!(go_pow(f64::NEG_INFINITY, 3.0), f64::NEG_INFINITY);
        assert_eq!(go_pow(0.5, f64::INFINITY), 0.0);
    }

    #[test]
    fn frexp_and_ldexp_round_trip_normal_and_subnormal_numbers() {
        for x in [1.0, 0.75, -3.5, 1e-310, f64::MAX, f64::MIN_POSITIVE] {
            let (frac, exp) = frexp(x);
            assert!((0.5..1.0).contains(&frac.abs()), "{x}");
            assert_eq!(ldexp(frac, exp), x);
        }
    }

    #[test]
    fn go_int_truncates_and_saturates_to_the_minimum() {
        assert_eq!(go_int(3.9), 3);
        assert_eq!(go_int(-3.9), -3);
        assert_eq!(go_int(1e19), i64::MIN);
        assert_eq!(go_int(f64::NAN), i64::MIN);
    }

    #[test]
    fn parse_float_accepts_what_go_accepts() {
        assert_eq!(go_parse_float("1.5"), Ok(1.5));
        assert_eq!(go_parse_float("+.5e1"), Ok(5.0));
        assert_eq!(go_parse_float("5."), Ok(5.0));
        assert_eq!(go_parse_float("-Infinity"), Ok(f64::NEG_INFINITY));
        assert!(go_parse_float("NaN").is_ok_and(f64::is_nan));
        for rejected in [
            "", "+", ".", "e5", "1e", "1e+", "+nan", "0x10", "1_0", " 1", "1 ",
        ] {
            assert!(go_parse_float(rejected).is_err(), "{rejected:?}");
        }
    }
}
