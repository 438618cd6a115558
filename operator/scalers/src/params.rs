//! Trigger parameters read as KEDA reads them: each parameter lists its sources in order
//! (`triggerMetadata`, `authParams`, `resolvedEnv`) and the first non-empty value (after
//! trimming) wins. Errors use KEDA's wording and name the parameter; a value that came from
//! authentication is never repeated in an error.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::{ScalerError, TriggerConfig};

/// Where a parameter may come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    TriggerMetadata,
    AuthParams,
    ResolvedEnv,
}

impl Source {
    fn name(self) -> &'static str {
        match self {
            Source::TriggerMetadata => "triggerMetadata",
            Source::AuthParams => "authParams",
            Source::ResolvedEnv => "resolvedEnv",
        }
    }
}

pub const META: &[Source] = &[Source::TriggerMetadata];
pub const AUTH: &[Source] = &[Source::AuthParams];
pub const META_AUTH: &[Source] = &[Source::TriggerMetadata, Source::AuthParams];
pub const AUTH_ENV: &[Source] = &[Source::AuthParams, Source::ResolvedEnv];
pub const META_ENV: &[Source] = &[Source::TriggerMetadata, Source::ResolvedEnv];
pub const META_AUTH_ENV: &[Source] = &[
    Source::TriggerMetadata,
    Source::AuthParams,
    Source::ResolvedEnv,
];

/// A found value and whether it may be shown in messages.
#[derive(Debug, Clone)]
pub struct Found {
    pub value: String,
    pub secret: bool,
}

/// Reads the parameters of one trigger.
#[derive(Debug, Clone, Copy)]
pub struct Params<'a> {
    config: &'a TriggerConfig,
}

fn order_text(order: &[Source]) -> String {
    format!(
        "[{}]",
        order.iter().map(|s| s.name()).collect::<Vec<_>>().join(" ")
    )
}

impl<'a> Params<'a> {
    pub fn new(config: &'a TriggerConfig) -> Self {
        Params { config }
    }

    /// The first non-empty value among the sources, in order.
    pub fn find(&self, name: &str, order: &[Source]) -> Option<Found> {
        order.iter().find_map(|source| {
            let (value, secret) = match source {
                Source::TriggerMetadata => (self.config.metadata.get(name).cloned(), false),
                Source::AuthParams => (
                    self.config
                        .auth_params
                        .get(name)
                        .map(|s| s.expose().to_string()),
                    true,
                ),
                Source::ResolvedEnv => (
                    self.config
                        .metadata
                        .get(&format!("{name}FromEnv"))
                        .and_then(|var| self.config.resolved_env.get(var.trim()))
                        .map(|s| s.expose().to_string()),
                    true,
                ),
            };
            let value = value?.trim().to_string();
            (!value.is_empty()).then_some(Found { value, secret })
        })
    }

    pub fn optional(&self, name: &str, order: &[Source]) -> Option<String> {
        self.find(name, order).map(|f| f.value)
    }

    pub fn required(&self, name: &str, order: &[Source]) -> Result<String, ScalerError> {
        self.find(name, order).map(|f| f.value).ok_or_else(|| {
            ScalerError::Config(format!(
                "missing required parameter {name:?} in {}",
                order_text(order)
            ))
        })
    }

    fn invalid(name: &str, found: &Found, why: &str) -> ScalerError {
        if found.secret {
            ScalerError::Config(format!("unable to set param {name:?}: {why}"))
        } else {
            ScalerError::Config(format!(
                "unable to set param {name:?} value {:?}: {why}",
                found.value
            ))
        }
    }

    /// A finite number; `default` when absent, an error naming the parameter when required.
    pub fn float(
        &self,
        name: &str,
        order: &[Source],
        default: Option<f64>,
    ) -> Result<f64, ScalerError> {
        let Some(found) = self.find(name, order) else {
            return match default {
                Some(d) => Ok(d),
                None => self.required(name, order).map(|_| 0.0),
            };
        };
        match found.value.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            Ok(_) => Err(Self::invalid(name, &found, "not a finite number")),
            Err(_) => Err(Self::invalid(name, &found, "not a number")),
        }
    }

    /// Go's `ParseBool` (strict: anything else is an error here).
    pub fn boolean(
        &self,
        name: &str,
        order: &[Source],
        default: bool,
    ) -> Result<bool, ScalerError> {
        let Some(found) = self.find(name, order) else {
            return Ok(default);
        };
        match found.value.as_str() {
            "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
            "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
            _ => Err(Self::invalid(name, &found, "not a boolean")),
        }
    }

    /// `k=v,k2=v2`; every item must split into exactly two parts on `=`.
    pub fn map(
        &self,
        name: &str,
        order: &[Source],
    ) -> Result<BTreeMap<String, String>, ScalerError> {
        let Some(found) = self.find(name, order) else {
            return Ok(BTreeMap::new());
        };
        let mut map = BTreeMap::new();
        for item in found
            .value
            .split(',')
            .map(str::trim)
            .filter(|i| !i.is_empty())
        {
            let parts: Vec<&str> = item.split('=').collect();
            if parts.len() != 2 {
                return Err(Self::invalid(
                    name,
                    &found,
                    &format!(
                        "item {:?} is not key=value",
                        if found.secret { "<redacted>" } else { item }
                    ),
                ));
            }
            map.insert(parts[0].trim().to_string(), parts[1].trim().to_string());
        }
        Ok(map)
    }

    /// `"30s"`, `"5m"`, `"1h"`, `"250ms"`, or a whole number of milliseconds.
    pub fn duration(&self, name: &str, order: &[Source]) -> Result<Option<Duration>, ScalerError> {
        let Some(found) = self.find(name, order) else {
            return Ok(None);
        };
        parse_duration(&found.value).map(Some).ok_or_else(|| {
            Self::invalid(
                name,
                &found,
                "not a duration such as 30s or a number of milliseconds",
            )
        })
    }

    /// A comma list whose items must all be in `allowed`.
    pub fn list(
        &self,
        name: &str,
        order: &[Source],
        allowed: &[&str],
    ) -> Result<Vec<String>, ScalerError> {
        let Some(found) = self.find(name, order) else {
            return Ok(vec![]);
        };
        let items: Vec<String> = found
            .value
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        if let Some(bad) = items.iter().find(|i| !allowed.contains(&i.as_str())) {
            return Err(ScalerError::Config(format!(
                "parameter {name:?} value {:?} must be one of [{}] ({bad:?} is not)",
                found.value,
                allowed.join(" ")
            )));
        }
        Ok(items)
    }
}

fn parse_duration(text: &str) -> Option<Duration> {
    if let Ok(ms) = text.parse::<u64>() {
        return Some(Duration::from_millis(ms));
    }
    let (number, unit_ms) = if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1e3)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60e3)
    } else if let Some(n) = text.strip_suffix('h') {
        (n, 3600e3)
    } else {
        return None;
    };
    let value: f64 = number.parse().ok()?;
    // A number too big for a Duration ("1e300h") is as invalid as one that is not a number.
    if !(value.is_finite() && value >= 0.0) {
        return None;
    }
    Duration::try_from_secs_f64(value * unit_ms / 1e3).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Secret;

    fn config(meta: &[(&str, &str)], auth: &[(&str, &str)], env: &[(&str, &str)]) -> TriggerConfig {
        TriggerConfig {
            metadata: meta
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            auth_params: auth
                .iter()
                .map(|(k, v)| (k.to_string(), Secret::from(*v)))
                .collect(),
            resolved_env: env
                .iter()
                .map(|(k, v)| (k.to_string(), Secret::from(*v)))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn the_first_non_empty_source_wins() {
        let c = config(&[("p", "  ")], &[("p", "from-auth")], &[]);
        assert_eq!(
            Params::new(&c).optional("p", META_AUTH).as_deref(),
            Some("from-auth")
        );
        let c = config(&[("p", "meta")], &[("p", "auth")], &[]);
        assert_eq!(
            Params::new(&c).optional("p", META_AUTH).as_deref(),
            Some("meta")
        );
        assert_eq!(Params::new(&c).optional("p", AUTH).as_deref(), Some("auth"));
    }

    #[test]
    fn a_source_not_listed_is_ignored() {
        let c = config(&[("password", "in-metadata")], &[], &[]);
        assert_eq!(Params::new(&c).optional("password", AUTH_ENV), None);
    }

    #[test]
    fn from_env_reads_the_named_container_variable() {
        let c = config(
            &[("passwordFromEnv", "DB_PASS")],
            &[],
            &[("DB_PASS", "s3cret")],
        );
        assert_eq!(
            Params::new(&c).optional("password", AUTH_ENV).as_deref(),
            Some("s3cret")
        );
        assert_eq!(Params::new(&c).optional("password", META).as_deref(), None);
    }

    #[test]
    fn missing_required_uses_keda_wording() {
        let c = config(&[], &[], &[]);
        let err = Params::new(&c).required("query", META).unwrap_err();
        assert_eq!(
            err.to_string(),
            "missing required parameter \"query\" in [triggerMetadata]"
        );
        let err = Params::new(&c)
            .float("threshold", META_AUTH, None)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "missing required parameter \"threshold\" in [triggerMetadata authParams]"
        );
    }

    #[test]
    fn bad_numbers_name_the_parameter_and_hide_secret_values() {
        let c = config(&[("threshold", "ten")], &[("token", "hunter2")], &[]);
        let err = Params::new(&c).float("threshold", META, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unable to set param \"threshold\" value \"ten\": not a number"
        );
        let err = Params::new(&c)
            .float("token", AUTH, None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"token\"") && !err.contains("hunter2"),
            "{err}"
        );
        let c = config(&[("threshold", "NaN")], &[], &[]);
        assert!(Params::new(&c).float("threshold", META, None).is_err());
    }

    #[test]
    fn booleans_maps_durations_and_lists() {
        let c = config(
            &[
                ("b", "True"),
                ("bad", "yes"),
                ("m", "a=1, b = 2"),
                ("broken", "a=1,b"),
                ("d1", "1500"),
                ("d2", "2s"),
                ("d3", "soon"),
                ("l", "basic,tls"),
            ],
            &[],
            &[],
        );
        let p = Params::new(&c);
        assert!(p.boolean("b", META, false).unwrap());
        assert!(p.boolean("absent", META, true).unwrap());
        assert!(p.boolean("bad", META, false).is_err());
        assert_eq!(
            p.map("m", META).unwrap(),
            BTreeMap::from([("a".into(), "1".into()), ("b".into(), "2".into())])
        );
        assert!(
            p.map("broken", META)
                .unwrap_err()
                .to_string()
                .contains("\"broken\"")
        );
        assert_eq!(
            p.duration("d1", META).unwrap(),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            p.duration("d2", META).unwrap(),
            Some(Duration::from_secs(2))
        );
        assert!(p.duration("d3", META).is_err());
        assert_eq!(
            p.list("l", META, &["basic", "tls", "bearer"]).unwrap(),
            ["basic", "tls"]
        );
        assert!(p.list("l", META, &["bearer"]).is_err());
    }

    /// Found by the metadata fuzzer: a finite number too big for a Duration panicked.
    #[test]
    fn durations_too_big_for_a_duration_are_errors_naming_the_parameter() {
        let c = config(&[("huge", "1e300s"), ("long", "1e17h")], &[], &[]);
        let p = Params::new(&c);
        let err = p.duration("huge", META).unwrap_err().to_string();
        assert!(err.contains("\"huge\""), "{err}");
        assert!(p.duration("long", META).is_err());
    }
}
