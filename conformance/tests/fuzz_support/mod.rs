//! What every fuzz target of the conformance crate shares: the runner that counts its cases
//! and the hostile values the generators mix into well-formed input.
//!
//! A target runs `PROPTEST_CASES` cases (256 when unset, enough for `cargo test`); the fuzz
//! run sets it to 10,000 or more. A panic inside a case fails the target, shrunk to the
//! smallest input that shows it.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// Cases per target: `PROPTEST_CASES`, else 256.
pub fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(256)
}

/// Runs `check` on `cases()` inputs drawn from `strategy`, fails on the first failing or
/// panicking case, and prints how many cases ran.
pub fn fuzz<S: Strategy>(
    target: &str,
    strategy: S,
    check: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let config = Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    };
    let wanted = config.cases;
    let ran = AtomicU64::new(0);
    let mut runner = TestRunner::new(config);
    let outcome = runner.run(&strategy, |input| {
        ran.fetch_add(1, Ordering::Relaxed);
        check(input)
    });
    if let Err(failure) = outcome {
        panic!("fuzz {target}: {failure}");
    }
    let ran = ran.load(Ordering::Relaxed);
    assert!(
        ran >= u64::from(wanted),
        "fuzz {target}: only {ran} of {wanted} cases ran"
    );
    println!("fuzz {target}: {ran} cases, 0 failures");
}

/// Text a user could put where a value goes: wrong types, huge and tiny numbers, NaN and the
/// infinities, empty and blank, unicode and control characters, very long, random.
pub fn hostile_value() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(
            &[
                "", " ", "\t", "NaN", "nan", "inf", "-inf", "+Inf", "1e309", "-1e309", "1e300",
                "1e300s", "1e300h", "1e19ms", "-5s", "5d", "0", "-0", "-1", "0.0", "1.5",
                "2147483648", "-2147483649", "4294967296", "9223372036854775808",
                "18446744073709551616", "99999999999999999999999", "0x10", "1_000", "true",
                "yes", "null", "~", "[]", "{}", "a=b", "a=b=c", ",,", "=", "ünïcødé ☃",
                "\u{0}", "\u{202e}", "日本語", "http://[::1", "http://127.0.0.1:99999",
                "127.0.0.1:0", "//", "%zz", "${namespace}",
            ][..],
        )
        .prop_map(String::from),
        1 => (1usize..20_000).prop_map(|n| "x".repeat(n)),
        1 => any::<f64>().prop_map(|f| f.to_string()),
        1 => any::<i64>().prop_map(|i| i.to_string()),
        2 => "[ -~]{0,40}",
        2 => ".{0,40}",
    ]
}
