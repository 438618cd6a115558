use std::collections::BTreeMap;

use super::*;

fn at(text: &str) -> Timestamp {
    text.parse().expect("an RFC 3339 instant")
}

fn scaler(meta: &[(&str, &str)], now: &str) -> Result<CronScaler, ScalerError> {
    let now = at(now);
    CronScaler::with_clock(
        TriggerConfig {
            trigger_type: "cron".into(),
            trigger_index: 2,
            metadata: meta
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            ..Default::default()
        },
        Arc::new(move || now),
    )
}

fn office_hours(tz: &str) -> Vec<(&'static str, String)> {
    vec![
        ("timezone", tz.to_string()),
        ("start", "0 8 * * 1-5".to_string()),
        ("end", "30 17 * * 1-5".to_string()),
        ("desiredReplicas", "4".to_string()),
    ]
}

fn meta<'a>(pairs: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    pairs.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

async fn read(s: &CronScaler) -> (f64, bool) {
    let r = s.read("m").await.expect("cron reads never fail");
    (r.value, r.active)
}

#[tokio::test]
async fn inside_the_window_the_value_is_desired_replicas() {
    let m = office_hours("Europe/Amsterdam");
    // Tuesday 2026-03-10 09:00 in Amsterdam (UTC+1) is 08:00Z.
    let s = scaler(&meta(&m), "2026-03-10T08:00:00Z").unwrap();
    assert_eq!(read(&s).await, (4.0, true));
    // 07:59 local: not yet.
    let s = scaler(&meta(&m), "2026-03-10T06:59:00Z").unwrap();
    assert_eq!(read(&s).await, (0.0, false));
    // Saturday: never.
    let s = scaler(&meta(&m), "2026-03-14T10:00:00Z").unwrap();
    assert_eq!(read(&s).await, (0.0, false));
    assert_eq!(
        s.metrics(),
        [Metric::External {
            name: "s2-cron-Europe-Amsterdam-08xx1-5-3017xx1-5".into(),
            target: Target::AverageValue(1.0),
        }]
    );
}

#[tokio::test]
async fn the_window_follows_daylight_saving_time() {
    let m = office_hours("Europe/Amsterdam");
    // Monday 2026-03-30, after the switch to UTC+2: 08:30 local is 06:30Z.
    let s = scaler(&meta(&m), "2026-03-30T06:30:00Z").unwrap();
    assert_eq!(read(&s).await, (4.0, true));
    // The same UTC instant a week earlier (UTC+1) is 07:30 local: outside.
    let s = scaler(&meta(&m), "2026-03-23T06:30:00Z").unwrap();
    assert_eq!(read(&s).await, (0.0, false));
}

#[tokio::test]
async fn a_window_across_midnight() {
    let m = [
        ("timezone", "UTC"),
        ("start", "0 22 * * *"),
        ("end", "0 6 * * *"),
        ("desiredReplicas", "2"),
    ];
    for (now, want) in [
        ("2026-05-01T23:30:00Z", true),
        ("2026-05-02T05:59:00Z", true),
        ("2026-05-02T06:00:00Z", false),
        ("2026-05-02T21:59:00Z", false),
        ("2026-05-02T22:00:00Z", true),
    ] {
        let s = scaler(&m, now).unwrap();
        assert_eq!(read(&s).await.1, want, "{now}");
    }
}

#[test]
fn schedules_parse_like_the_standard_parser() {
    let tz = TimeZone::UTC;
    let next = |expr: &str, now: &str| {
        Schedule::parse(expr)
            .unwrap()
            .next_after(at(now), &tz)
            .map(|t| t.to_string())
    };
    assert_eq!(
        next("*/15 * * * *", "2026-01-01T00:07:00Z").as_deref(),
        Some("2026-01-01T00:15:00Z")
    );
    assert_eq!(
        next("0 0 1 jan *", "2026-06-01T00:00:00Z").as_deref(),
        Some("2027-01-01T00:00:00Z")
    );
    assert_eq!(
        next("@hourly", "2026-01-01T00:00:30Z").as_deref(),
        Some("2026-01-01T01:00:00Z")
    );
    // Day of month and day of week both restricted: either matches (the 13th, or a Friday).
    assert_eq!(
        next("0 0 13 * FRI", "2026-02-01T00:00:00Z").as_deref(),
        Some("2026-02-06T00:00:00Z")
    );
    assert_eq!(next("0 0 30 2 *", "2026-01-01T00:00:00Z"), None);
    for bad in [
        "* * * *",
        "61 * * * *",
        "0 0 * * 8",
        "*/0 * * * *",
        "@sometimes",
        "5-1 * * * *",
    ] {
        assert!(Schedule::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn bad_metadata_is_named() {
    let base = [
        ("timezone", "UTC"),
        ("start", "0 8 * * *"),
        ("end", "0 9 * * *"),
        ("desiredReplicas", "3"),
    ];
    let with = |key: &'static str,
                value: Option<&'static str>|
     -> Vec<(&'static str, &'static str)> {
        let mut m: Vec<(&str, &str)> = base.iter().filter(|(k, _)| *k != key).copied().collect();
        if let Some(v) = value {
            m.push((key, v));
        }
        m
    };
    let cases = [
        (with("timezone", Some("Mars/Olympus")), "\"timezone\""),
        (with("timezone", None), "\"timezone\""),
        (with("start", Some("eight")), "error parsing start schedule"),
        (
            with("end", Some("0 8 * * *")),
            "start and end should not be the same",
        ),
        (
            with("desiredReplicas", Some("0")),
            "\"desiredReplicas\" must not be 0",
        ),
        (with("desiredReplicas", Some("many")), "\"desiredReplicas\""),
    ];
    for (m, want) in cases {
        let err = scaler(&m, "2026-01-01T00:00:00Z").unwrap_err().to_string();
        assert!(err.contains(want), "{m:?}: {err}");
    }
}

proptest::proptest! {
    #[test]
    fn arbitrary_metadata_never_panics_the_parser(
        entries in proptest::collection::btree_map(
            proptest::sample::select(vec!["timezone", "start", "end", "desiredReplicas", "x"]),
            "[ -~]{0,24}",
            0..6,
        )
    ) {
        let _ = CronScaler::new(TriggerConfig {
            trigger_type: "cron".into(),
            metadata: entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            ..Default::default()
        });
    }
}
