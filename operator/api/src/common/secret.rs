//! A string that holds a credential and never shows it in `Debug`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A credential carried literally in a spec (e.g. `hashiCorpVault.credential.token`). On the wire
/// it is a plain string; in Rust its `Debug` output is redacted so it cannot leak into logs.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
#[schemars(transparent)]
pub struct SecretValue(String);

impl SecretValue {
    /// Wraps a credential.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The credential itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::SecretValue;

    #[test]
    fn debug_output_never_shows_the_credential() {
        let token = SecretValue::new("s.very-secret");
        assert_eq!(format!("{token:?}"), "SecretValue(<redacted>)");
        assert_eq!(token.expose(), "s.very-secret");
    }

    #[test]
    fn the_wire_form_is_a_plain_string() {
        let token: SecretValue = serde_json::from_str("\"abc\"").expect("a string parses");
        assert_eq!(
            serde_json::to_string(&token).expect("serializes"),
            "\"abc\""
        );
    }
}
