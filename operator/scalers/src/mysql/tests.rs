use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::{MetricType, Secret};

fn config(meta: &[(&str, &str)], auth: &[(&str, &str)], env: &[(&str, &str)]) -> TriggerConfig {
    let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, Secret> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Secret::from(*v)))
            .collect()
    };
    TriggerConfig {
        trigger_type: "mysql".into(),
        trigger_index: 1,
        metadata: meta
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        auth_params: map(auth),
        resolved_env: map(env),
        timeout: Duration::from_secs(3),
        ..Default::default()
    }
}

const MINIMAL: &[(&str, &str)] = &[
    ("host", "db.example"),
    ("port", "3307"),
    ("username", "keda"),
    ("dbName", "stats_db"),
    ("query", "SELECT COUNT(*) FROM jobs"),
    ("queryValue", "4.5"),
];

#[test]
fn the_metric_is_named_after_the_database_with_query_value_as_target() {
    let scaler = MySqlScaler::new(config(MINIMAL, &[("password", "pw")], &[])).unwrap();
    assert_eq!(
        scaler.metrics(),
        vec![Metric::External {
            name: "s1-mysql-stats_db".into(),
            target: Target::AverageValue(4.5),
        }]
    );
    let mut c = config(MINIMAL, &[], &[]);
    c.metric_type = MetricType::Value;
    c.metadata.insert("dbName".into(), "a.b/c".into());
    c.metadata.insert("metricName".into(), "ignored".into());
    let scaler = MySqlScaler::new(c).unwrap();
    assert_eq!(
        scaler.metrics(),
        vec![Metric::External {
            name: "s1-mysql-a-b-c".into(),
            target: Target::Value(4.5),
        }]
    );
}

#[test]
fn a_connection_string_names_the_metric_by_its_last_path_segment() {
    let meta = &[("query", "SELECT 1"), ("queryValue", "1")];
    let auth = &[("connectionString", "u:p@tcp(h:3306)/stats_db?tls=false")];
    let scaler = MySqlScaler::new(config(meta, auth, &[])).unwrap();
    assert!(matches!(
        &scaler.metrics()[0],
        Metric::External { name, .. } if name == "s1-mysql-stats_db?tls=false"
    ));
    assert_eq!(scaler.dsn().db_name, "stats_db");
    assert_eq!(scaler.dsn().addr, "h:3306");
}

#[test]
fn each_parameter_reads_only_its_keda_sources() {
    // connectionString: authParams, then resolvedEnv; never metadata (quirk 4).
    let meta = [
        ("query", "q"),
        ("queryValue", "1"),
        ("connectionString", "m:m@tcp(meta:1)/meta"),
        ("connectionStringFromEnv", "DSN"),
    ];
    let from_env =
        MySqlScaler::new(config(&meta, &[], &[("DSN", "e:e@tcp(env:2)/envdb")])).unwrap();
    assert_eq!(from_env.dsn().addr, "env:2");
    let from_auth = MySqlScaler::new(config(
        &meta,
        &[("connectionString", "a:a@tcp(auth:3)/authdb")],
        &[("DSN", "e:e@tcp(env:2)/envdb")],
    ))
    .unwrap();
    assert_eq!(from_auth.dsn().addr, "auth:3");
    let ignored = MySqlScaler::new(config(&meta[..3], &[], &[])).unwrap();
    assert_eq!(ignored.dsn().addr, ":", "no host or port: KEDA's tcp(:)");

    // password: authParams, then resolvedEnv; metadata ignored.
    let meta = [
        MINIMAL,
        &[("password", "in-metadata"), ("passwordFromEnv", "PW")],
    ]
    .concat();
    let s = MySqlScaler::new(config(&meta, &[], &[("PW", "from-env")])).unwrap();
    assert_eq!(s.dsn().password.expose(), "from-env");
    let s = MySqlScaler::new(config(&meta, &[("password", "from-auth")], &[])).unwrap();
    assert_eq!(s.dsn().password.expose(), "from-auth");
    let s = MySqlScaler::new(config(&meta[..MINIMAL.len() + 1], &[], &[])).unwrap();
    assert_eq!(s.dsn().password.expose(), "");

    // username: metadata, authParams, resolvedEnv.
    let without_user: Vec<(&str, &str)> = MINIMAL
        .iter()
        .copied()
        .filter(|(k, _)| *k != "username")
        .chain([("usernameFromEnv", "USER")])
        .collect();
    let s = MySqlScaler::new(config(&without_user, &[], &[("USER", "env-user")])).unwrap();
    assert_eq!(s.dsn().user, "env-user");
    let s = MySqlScaler::new(config(&without_user, &[("username", "auth-user")], &[])).unwrap();
    assert_eq!(s.dsn().user, "auth-user");

    // host, port, dbName: metadata, then authParams (no *FromEnv).
    let bare = [("query", "q"), ("queryValue", "1"), ("hostFromEnv", "H")];
    let s = MySqlScaler::new(config(
        &bare,
        &[
            ("host", "auth-host"),
            ("port", "4000"),
            ("dbName", "auth_db"),
        ],
        &[("H", "env-host")],
    ))
    .unwrap();
    assert_eq!(s.dsn().addr, "auth-host:4000");
    assert_eq!(s.dsn().db_name, "auth_db");
}

#[test]
fn missing_or_bad_required_parameters_use_keda_wording() {
    for missing in ["query", "queryValue"] {
        let meta: Vec<(&str, &str)> = MINIMAL
            .iter()
            .copied()
            .filter(|(k, _)| *k != missing)
            .collect();
        assert_eq!(
            MySqlScaler::new(config(&meta, &[], &[]))
                .unwrap_err()
                .to_string(),
            format!(
                "error parsing MySQL metadata: error parsing mysql metadata: missing required \
                 parameter \"{missing}\" in [triggerMetadata]"
            )
        );
    }
    let meta = [MINIMAL, &[("activationQueryValue", "lots")]].concat();
    let err = MySqlScaler::new(config(&meta, &[], &[]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("\"activationQueryValue\"") && err.contains("not a number"),
        "{err}"
    );
}

#[test]
fn keda_writes_and_rereads_the_dsn_with_its_quirks() {
    let dsn = Dsn::from_parts("keda", "p@ss/w:rd", "db", "3306", "my db?").unwrap();
    assert_eq!(
        (dsn.user.as_str(), dsn.password.expose()),
        ("keda", "p@ss/w:rd")
    );
    assert_eq!(dsn.db_name, "my db?");
    // A ':' in the user name moves the rest into the password.
    let dsn = Dsn::from_parts("us:er", "pw", "db", "3306", "x").unwrap();
    assert_eq!((dsn.user.as_str(), dsn.password.expose()), ("us", "er:pw"));
    // A password without a user is not written at all.
    let dsn = Dsn::from_parts("", "pw", "db", "3306", "x").unwrap();
    assert_eq!(dsn.password.expose(), "");
    // IPv6 hosts are bracketed; an empty port stays empty (port 0 when dialled).
    assert_eq!(
        Dsn::from_parts("", "", "::1", "3306", "").unwrap().addr,
        "[::1]:3306"
    );
    assert_eq!(Dsn::from_parts("", "", "db", "", "").unwrap().addr, "db:");
}

#[test]
fn connection_strings_parse_like_the_go_driver() {
    let dsn = Dsn::parse(
        "user:pa:ss@tcp(10.0.0.1)/jobs?timeout=1s500ms&readTimeout=2s&tls=skip-verify&charset=utf8mb4,utf8&sql_mode=%27ANSI%27&parseTime=true",
    )
    .unwrap();
    assert_eq!(
        (dsn.user.as_str(), dsn.password.expose()),
        ("user", "pa:ss")
    );
    assert_eq!(dsn.addr, "10.0.0.1:3306", "a missing port is 3306");
    assert_eq!(dsn.timeout, Some(Duration::from_millis(1500)));
    assert_eq!(dsn.read_timeout, Some(Duration::from_secs(2)));
    assert_eq!(dsn.tls, Tls::SkipVerify);
    assert_eq!(dsn.charset.as_deref(), Some("utf8mb4"));
    assert_eq!(dsn.system_variables, [("sql_mode".into(), "'ANSI'".into())]);
    let dsn = Dsn::parse("/").unwrap();
    assert_eq!(
        (dsn.net.as_str(), dsn.addr.as_str()),
        ("tcp", "127.0.0.1:3306")
    );
    let dsn = Dsn::parse("u@unix(/run/mysqld/mysqld.sock)/db").unwrap();
    assert_eq!(
        (dsn.net.as_str(), dsn.addr.as_str()),
        ("unix", "/run/mysqld/mysqld.sock")
    );

    for (bad, why) in [
        ("u:p@tcp(host:3306", "missing the slash"),
        ("u:p@tcp(host:3306/db", "missing closing brace"),
        ("u:p@tcp(host:3306)x/db", "forget to escape"),
        ("u:secret@tcp(h)/db?parseTime=maybe", "invalid bool value"),
        ("u:secret@tcp(h)/db?timeout=soon", "is not a duration"),
        ("u:secret@tcp(h)/db?tls=custom", "not supported"),
        ("u:secret@udp(h)/db", "not supported"),
    ] {
        let err = Dsn::parse(bad).unwrap_err().to_string();
        assert!(err.contains(why), "{bad}: {err}");
        assert!(!err.contains("secret"), "{err}");
    }
}

#[test]
fn debug_output_never_shows_the_password() {
    let scaler = MySqlScaler::new(config(MINIMAL, &[("password", "hunter2")], &[])).unwrap();
    let shown = format!("{scaler:?}");
    assert!(
        !shown.contains("hunter2") && shown.contains("stats_db"),
        "{shown}"
    );
}

#[test]
fn values_scan_into_floats_as_go_scans_them() {
    assert_eq!(scan_float(&Value::Bytes(b"21".to_vec())), Ok(21.0));
    assert_eq!(scan_float(&Value::Bytes(b"12.50".to_vec())), Ok(12.5));
    assert_eq!(scan_float(&Value::Int(-3)), Ok(-3.0));
    assert_eq!(
        scan_float(&Value::NULL),
        Err("converting NULL to float64 is unsupported".into())
    );
    assert_eq!(
        scan_float(&Value::Bytes(b"abc".to_vec())),
        Err("converting driver.Value type []uint8 (\"abc\") to a float64: invalid syntax".into())
    );
    assert!(
        scan_float(&Value::Bytes(b"1e400".to_vec())).is_err(),
        "out of range"
    );
    assert_eq!(
        scan_float(&Value::Bytes(b"-Inf".to_vec())),
        Ok(f64::NEG_INFINITY)
    );
}

#[test]
fn go_durations_parse() {
    assert_eq!(parse_go_duration("0"), Some(Duration::ZERO));
    assert_eq!(parse_go_duration("1h2m3s"), Some(Duration::from_secs(3723)));
    assert_eq!(parse_go_duration("250ms"), Some(Duration::from_millis(250)));
    assert_eq!(parse_go_duration("1.5s"), Some(Duration::from_millis(1500)));
    assert_eq!(parse_go_duration("10"), None, "a unit is required");
    assert_eq!(parse_go_duration("-1s"), None);
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("connectionString".to_string()),
        Just("connectionStringFromEnv".to_string()),
        Just("host".to_string()),
        Just("port".to_string()),
        Just("dbName".to_string()),
        Just("username".to_string()),
        Just("password".to_string()),
        Just("query".to_string()),
        Just("queryValue".to_string()),
        Just("activationQueryValue".to_string()),
        Just("metricName".to_string()),
        "[a-zA-Z]{0,12}",
    ]
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,40}",
        "[0-9.eE+-]{0,10}",
        "[a-z:@/()?=&%\\[\\]]{0,40}",
        Just("u:p@tcp(h:1)/db?timeout=1s".to_string()),
    ]
}

proptest! {
    #[test]
    fn arbitrary_metadata_never_panics_the_parser(
        meta in proptest::collection::btree_map(key(), value(), 0..12),
        auth in proptest::collection::btree_map(key(), value(), 0..6),
        env in proptest::collection::btree_map("[A-Z]{1,4}", value(), 0..4),
    ) {
        let config = TriggerConfig {
            trigger_type: "mysql".into(),
            metadata: meta,
            auth_params: auth.into_iter().map(|(k, v)| (k, Secret::new(v))).collect(),
            resolved_env: env.into_iter().map(|(k, v)| (k, Secret::new(v))).collect(),
            ..Default::default()
        };
        if let Ok(scaler) = MySqlScaler::new(config) {
            let metrics = scaler.metrics();
            prop_assert_eq!(metrics.len(), 1);
            let _ = scaler.opts();
        }
    }

    #[test]
    fn arbitrary_connection_strings_never_panic(dsn in "[ -~]{0,60}") {
        let _ = Dsn::parse(&dsn);
    }
}
