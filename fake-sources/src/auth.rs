//! The credentials a fake demands, and how a request measured up to them.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// A credential. Its `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret::new(value)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

/// The credentials a fake demands of every request. mTLS is not here: it is a property of the
/// listener (see [`crate::TlsOptions`]), checked before any request is read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Auth {
    /// Anything goes.
    #[default]
    None,
    /// `Authorization: Basic base64(username:password)`.
    Basic { username: String, password: Secret },
    /// `Authorization: Bearer <token>`.
    Bearer { token: Secret },
    /// Datadog's API: `DD-API-KEY` and `DD-APPLICATION-KEY` headers.
    ApiKeys { api_key: Secret, app_key: Secret },
    /// An arbitrary header with an exact value (KEDA's prometheus `custom` auth mode).
    Header { name: String, value: Secret },
}

impl Auth {
    pub fn basic(username: impl Into<String>, password: impl Into<Secret>) -> Self {
        Auth::Basic {
            username: username.into(),
            password: password.into(),
        }
    }

    pub fn bearer(token: impl Into<Secret>) -> Self {
        Auth::Bearer {
            token: token.into(),
        }
    }

    pub fn api_keys(api_key: impl Into<Secret>, app_key: impl Into<Secret>) -> Self {
        Auth::ApiKeys {
            api_key: api_key.into(),
            app_key: app_key.into(),
        }
    }

    pub fn header(name: impl Into<String>, value: impl Into<Secret>) -> Self {
        Auth::Header {
            name: name.into(),
            value: value.into(),
        }
    }

    /// Judges the headers of an HTTP request.
    pub fn check_http(&self, headers: &http::HeaderMap) -> AuthOutcome {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        match self {
            Auth::None => AuthOutcome::NotRequired,
            Auth::Basic { username, password } => match header("authorization") {
                None => AuthOutcome::rejected("missing authorization header"),
                Some(value) => match decode_basic(value) {
                    None => AuthOutcome::rejected("authorization is not basic"),
                    Some((user, pass)) if user == *username && pass == password.expose() => {
                        AuthOutcome::Accepted
                    }
                    Some(_) => AuthOutcome::rejected("wrong username or password"),
                },
            },
            Auth::Bearer { token } => match header("authorization") {
                None => AuthOutcome::rejected("missing authorization header"),
                Some(value) => match strip_scheme(value, "bearer") {
                    None => AuthOutcome::rejected("authorization is not bearer"),
                    Some(given) if given == token.expose() => AuthOutcome::Accepted,
                    Some(_) => AuthOutcome::rejected("wrong bearer token"),
                },
            },
            Auth::ApiKeys { api_key, app_key } => {
                match (header("dd-api-key"), header("dd-application-key")) {
                    (None, _) => AuthOutcome::rejected("missing DD-API-KEY header"),
                    (_, None) => AuthOutcome::rejected("missing DD-APPLICATION-KEY header"),
                    (Some(api), _) if api != api_key.expose() => {
                        AuthOutcome::rejected("wrong DD-API-KEY")
                    }
                    (_, Some(app)) if app != app_key.expose() => {
                        AuthOutcome::rejected("wrong DD-APPLICATION-KEY")
                    }
                    _ => AuthOutcome::Accepted,
                }
            }
            Auth::Header { name, value } => match header(name) {
                None => AuthOutcome::rejected(format!("missing {name} header")),
                Some(given) if given == value.expose() => AuthOutcome::Accepted,
                Some(_) => AuthOutcome::rejected(format!("wrong {name} header")),
            },
        }
    }
}

/// What the fake made of a request's credentials.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum AuthOutcome {
    NotRequired,
    Accepted,
    Rejected { reason: String },
}

impl AuthOutcome {
    fn rejected(reason: impl Into<String>) -> Self {
        AuthOutcome::Rejected {
            reason: reason.into(),
        }
    }

    pub fn is_rejected(&self) -> bool {
        matches!(self, AuthOutcome::Rejected { .. })
    }
}

fn strip_scheme<'a>(value: &'a str, scheme: &str) -> Option<&'a str> {
    let (given, rest) = value.split_once(' ')?;
    given
        .eq_ignore_ascii_case(scheme)
        .then_some(rest.trim_start())
}

fn decode_basic(value: &str) -> Option<(String, String)> {
    let encoded = strip_scheme(value, "basic")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn basic_auth_accepts_only_the_right_pair() {
        let auth = Auth::basic("keda", "s3cret");
        let good = base64::engine::general_purpose::STANDARD.encode("keda:s3cret");
        let bad = base64::engine::general_purpose::STANDARD.encode("keda:nope");
        let good_header = format!("Basic {good}");
        let bad_header = format!("Basic {bad}");
        assert_eq!(
            auth.check_http(&headers(&[("authorization", good_header.as_str())])),
            AuthOutcome::Accepted
        );
        assert!(
            auth.check_http(&headers(&[("authorization", bad_header.as_str())]))
                .is_rejected()
        );
        assert!(auth.check_http(&headers(&[])).is_rejected());
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_but_the_token_is_not() {
        let auth = Auth::bearer("Tok");
        assert_eq!(
            auth.check_http(&headers(&[("authorization", "bearer Tok")])),
            AuthOutcome::Accepted
        );
        assert!(
            auth.check_http(&headers(&[("authorization", "Bearer tok")]))
                .is_rejected()
        );
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let auth = Auth::api_keys("api-123", "app-456");
        let shown = format!("{auth:?}");
        assert!(!shown.contains("api-123") && !shown.contains("app-456"));
    }
}
