use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

fn config(tz: &str, start: &str, end: &str, desired: &str) -> TriggerConfig {
    TriggerConfig {
        trigger_type: "cron".into(),
        metadata: [
            ("timezone", tz),
            ("start", start),
            ("end", end),
            ("desiredReplicas", desired),
        ]
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        ..Default::default()
    }
}

fn at(text: &str, tz: &str) -> Timestamp {
    let dt: jiff::civil::DateTime = text.parse().unwrap();
    dt.to_zoned(TimeZone::get(tz).unwrap()).unwrap().timestamp()
}

fn scaler(tz: &str, start: &str, end: &str) -> CronScaler {
    CronScaler::new(config(tz, start, end, "4")).unwrap()
}

#[test]
fn the_metric_name_follows_kedas_example_and_the_target_is_one() {
    let s = scaler("Asia/Kolkata", "0 6 * * *", "0 20 * * *");
    assert_eq!(
        s.metrics(),
        vec![Metric::External {
            name: "s0-cron-Asia-Kolkata-06xxx-020xxx".into(),
            target: Target::AverageValue(1.0),
        }]
    );
    let s = scaler("UTC", "*/5 * ? * 1,2", "0 20 * * *");
    assert_eq!(
        s.metrics()[0].clone(),
        Metric::External {
            name: "s0-cron-UTC-xSl5xQmx1Cm2-020xxx".into(),
            target: Target::AverageValue(1.0),
        }
    );
}

#[test]
fn windows_are_active_inside_and_inactive_outside_including_across_midnight() {
    // (timezone, start, end, local time, active)
    let table = [
        (
            "Europe/Berlin",
            "0 8 * * *",
            "0 18 * * *",
            "2026-03-10T07:59",
            false,
        ),
        (
            "Europe/Berlin",
            "0 8 * * *",
            "0 18 * * *",
            "2026-03-10T08:00",
            true,
        ),
        (
            "Europe/Berlin",
            "0 8 * * *",
            "0 18 * * *",
            "2026-03-10T17:59",
            true,
        ),
        (
            "Europe/Berlin",
            "0 8 * * *",
            "0 18 * * *",
            "2026-03-10T18:00",
            false,
        ),
        // A window crossing midnight: 22:00 → 02:00.
        ("UTC", "0 22 * * *", "0 2 * * *", "2026-01-01T21:30", false),
        ("UTC", "0 22 * * *", "0 2 * * *", "2026-01-01T23:30", true),
        ("UTC", "0 22 * * *", "0 2 * * *", "2026-01-02T01:59", true),
        ("UTC", "0 22 * * *", "0 2 * * *", "2026-01-02T02:00", false),
        // Weekdays only: Saturday 10:00 is outside.
        (
            "UTC",
            "0 9 * * 1-5",
            "0 17 * * 1-5",
            "2026-01-03T10:00",
            false,
        ),
        (
            "UTC",
            "0 9 * * mon-fri",
            "0 17 * * mon-fri",
            "2026-01-05T10:00",
            true,
        ),
    ];
    for (tz, start, end, local, active) in table {
        let reading = scaler(tz, start, end).at(at(local, tz));
        assert_eq!(reading.active, active, "{tz} {start} → {end} at {local}");
        assert_eq!(reading.value, if active { 4.0 } else { 0.0 });
    }
}

#[test]
fn dst_changes_keep_wall_clock_windows() {
    // Europe/Berlin springs forward 2026-03-29 02:00 → 03:00 and falls back 2026-10-25 03:00 → 02:00.
    let s = scaler("Europe/Berlin", "30 2 * * *", "0 4 * * *");
    let tz = TimeZone::get("Europe/Berlin").unwrap();
    // 02:30 does not exist on the spring day: it fires at 03:30 local (one hour on).
    let spring_start = s
        .start
        .next(at("2026-03-29T01:00", "Europe/Berlin"), &tz)
        .unwrap();
    assert_eq!(
        spring_start.to_zoned(tz.clone()).datetime().to_string(),
        "2026-03-29T03:30:00"
    );
    assert!(s.at(at("2026-03-29T03:45", "Europe/Berlin")).active);
    assert!(!s.at(at("2026-03-29T03:15", "Europe/Berlin")).active);
    // On the autumn day 02:30 happens twice; the window opens at the first one.
    let first = at("2026-10-25T02:30", "Europe/Berlin"); // compatible: the earlier 02:30
    assert!(
        s.at(first
            .checked_add(jiff::SignedDuration::from_mins(1))
            .unwrap())
            .active
    );
    let second_0230 = first
        .checked_add(jiff::SignedDuration::from_hours(1))
        .unwrap();
    assert!(
        s.at(second_0230
            .checked_add(jiff::SignedDuration::from_mins(1))
            .unwrap())
            .active
    );
    // The same UTC instant is inside in one zone and outside in another.
    let utc_noon = at("2026-06-01T12:00", "UTC");
    assert!(scaler("UTC", "0 9 * * *", "0 17 * * *").at(utc_noon).active);
    assert!(
        !scaler("America/New_York", "0 9 * * *", "0 17 * * *")
            .at(utc_noon)
            .active
    );
}

#[test]
fn reads_take_now_from_the_injected_clock() {
    let now = at("2026-01-01T23:30", "UTC");
    let s = CronScaler::with_clock(
        config("UTC", "0 22 * * *", "0 2 * * *", "3"),
        Arc::new(move || now),
    )
    .unwrap();
    let reading = futures_lite(s.read("s0"));
    assert_eq!(
        reading,
        Reading {
            value: 3.0,
            active: true
        }
    );
}

fn futures_lite(f: ReadFuture<'_>) -> Reading {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
        .unwrap()
}

#[test]
fn bad_metadata_errors_name_the_parameter() {
    let cases = [
        (config("", "0 6 * * *", "0 7 * * *", "1"), "\"timezone\""),
        (
            config("Mars/Olympus", "0 6 * * *", "0 7 * * *", "1"),
            "\"timezone\"",
        ),
        (config("UTC", "", "0 7 * * *", "1"), "\"start\""),
        (config("UTC", "0 6 * * *", "", "1"), "\"end\""),
        (config("UTC", "0 6 * *", "0 7 * * *", "1"), "start schedule"),
        (
            config("UTC", "0 6 * * *", "61 7 * * *", "1"),
            "end schedule",
        ),
        (
            config("UTC", "0 6 * * *", "0 6 * * *", "1"),
            "same time input",
        ),
        (
            config("UTC", "0 6 * * *", "0 7 * * *", ""),
            "\"desiredReplicas\"",
        ),
        (
            config("UTC", "0 6 * * *", "0 7 * * *", "0"),
            "desiredReplicas",
        ),
        (
            config("UTC", "0 6 * * *", "0 7 * * *", "two"),
            "\"desiredReplicas\"",
        ),
        (
            config("UTC", "0 6 * * */0", "0 7 * * *", "1"),
            "start schedule",
        ),
    ];
    for (c, name) in cases {
        let err = CronScaler::new(c).unwrap_err().to_string();
        assert!(err.starts_with("error parsing cron metadata: "), "{err}");
        assert!(err.contains(name), "{name}: {err}");
    }
}

proptest! {
    #[test]
    fn arbitrary_metadata_never_panics_the_parser(
        meta in proptest::collection::btree_map(
            proptest::sample::select(&["timezone", "start", "end", "desiredReplicas"][..]).prop_map(String::from),
            "[0-9a-zA-Z*/?,\\- ]{0,16}",
            0..5,
        ),
    ) {
        let c = TriggerConfig { metadata: meta.into_iter().collect::<BTreeMap<_, _>>(), ..Default::default() };
        let _ = CronScaler::new(c);
    }

    #[test]
    fn valid_schedules_always_find_a_next_time_after_now(minute in 0u32..60, hour in 0u32..24, secs in 0i64..2_000_000_000) {
        let s = Schedule::parse(&format!("{minute} {hour} * * *")).unwrap();
        let now = Timestamp::from_second(secs).unwrap();
        let tz = TimeZone::get("America/New_York").unwrap();
        let next = s.next(now, &tz).unwrap();
        prop_assert!(next > now);
        prop_assert!(next.duration_since(now).as_secs() <= 25 * 3600);
    }
}
