//! KEDA release versions (`v2.16.1`), for rules about behaviour a release introduced: a rule
//! with `since:` is reported as not applicable on an older release instead of failing there.

use std::fmt;
use std::path::Path;

use serde::Deserialize;

/// `vMAJOR.MINOR.PATCH` (the `v` is optional, a pre-release or build suffix is kept apart and
/// ignored when comparing: `v2.17.0-rc1` counts as `v2.17.0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KedaVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl KedaVersion {
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("`{text}` is not a KEDA version like v2.16.1");
        let core = text.trim().strip_prefix('v').unwrap_or(text.trim());
        let core = core.split(['-', '+']).next().unwrap_or(core);
        let mut parts = core.split('.');
        let mut number = || -> Result<u32, String> {
            let part = parts.next().ok_or_else(bad)?;
            if part.is_empty() || !part.chars().all(|c| c.is_ascii_digit()) {
                return Err(bad());
            }
            part.parse().map_err(|_| bad())
        };
        let version = KedaVersion {
            major: number()?,
            minor: number()?,
            patch: number()?,
        };
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(version)
    }

    /// The release a `build-keda.sh` output directory holds: the `version=` line of its `done`
    /// file, else the `upstream-keda-<version>` directory name; `None` for any other directory
    /// (a build of the user's own, whose version the runner cannot know).
    pub fn of_build_dir(dir: &Path) -> Option<Self> {
        let stamped = std::fs::read_to_string(dir.join("done"))
            .ok()
            .and_then(|text| {
                text.lines()
                    .find_map(|l| l.strip_prefix("version=").map(str::to_string))
            });
        let named = || {
            dir.file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix("upstream-keda-"))
                .map(str::to_string)
        };
        stamped
            .or_else(named)
            .and_then(|text| Self::parse(&text).ok())
    }
}

impl fmt::Display for KedaVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl<'de> Deserialize<'de> for KedaVersion {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A rule's `since:`: the first KEDA release with the behaviour it checks, and what that
/// behaviour is, for the "not applicable" line of older releases.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Since {
    pub keda: KedaVersion,
    pub feature: String,
}

impl Since {
    /// Why the rule does not apply to `version`, or `None` when it does.
    pub fn not_applicable_to(&self, version: KedaVersion) -> Option<String> {
        (version < self.keda).then(|| {
            format!(
                "not applicable to KEDA {version}: {} arrived in {}",
                self.feature, self.keda
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> KedaVersion {
        KedaVersion::parse(text).unwrap()
    }

    #[test]
    fn versions_parse_with_or_without_v_and_compare_numerically() {
        assert_eq!(
            v("v2.16.1"),
            KedaVersion {
                major: 2,
                minor: 16,
                patch: 1
            }
        );
        assert_eq!(v("2.9.0"), v("v2.9.0"));
        assert!(v("v2.9.0") < v("v2.10.0"), "numeric, not lexical");
        assert!(v("v2.20.2") < v("v2.21.0"));
        assert_eq!(v("v2.17.0-rc1"), v("v2.17.0"));
        assert_eq!(v("v2.21.1").to_string(), "v2.21.1");
    }

    #[test]
    fn malformed_versions_are_refused_naming_the_text() {
        for bad in ["", "v2", "v2.16", "v2.16.x", "v2.16.1.4", "latest", "v2..1"] {
            let err = KedaVersion::parse(bad).unwrap_err();
            assert!(err.contains(&format!("`{bad}`")), "{bad}: {err}");
        }
    }

    #[test]
    fn a_rule_since_a_release_applies_from_that_release_on() {
        let since = Since {
            keda: v("v2.16.0"),
            feature: "ClusterCloudEventSource".into(),
        };
        assert_eq!(
            since.not_applicable_to(v("v2.15.1")).as_deref(),
            Some("not applicable to KEDA v2.15.1: ClusterCloudEventSource arrived in v2.16.0")
        );
        assert_eq!(since.not_applicable_to(v("v2.16.0")), None);
        assert_eq!(since.not_applicable_to(v("v2.21.1")), None);
    }

    #[test]
    fn a_build_directory_names_its_release_by_stamp_then_by_name() {
        let root = tempfile::tempdir().unwrap();
        let named = root.path().join("upstream-keda-v2.20.2");
        std::fs::create_dir(&named).unwrap();
        assert_eq!(KedaVersion::of_build_dir(&named), Some(v("v2.20.2")));
        std::fs::write(named.join("done"), "version=v2.16.1\nbuilt=x\n").unwrap();
        assert_eq!(KedaVersion::of_build_dir(&named), Some(v("v2.16.1")));
        let own = root.path().join("my-keda");
        std::fs::create_dir(&own).unwrap();
        assert_eq!(KedaVersion::of_build_dir(&own), None);
    }
}
