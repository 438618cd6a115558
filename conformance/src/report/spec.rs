//! The behaviour specification shipped with the suite (conformance/SPEC.md), compiled into the
//! runner so a report can link each rule to the section it checks and carry that section's
//! text: a reader of a failure sees what was promised without the repository at hand.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use super::junit::escape;

/// SPEC.md's numbered sections: `## N. Title` and `### N.M Title`, each with its text up to
/// the next numbered heading.
pub struct Spec {
    sections: BTreeMap<String, Section>,
}

struct Section {
    heading: String,
    body: String,
}

impl Spec {
    /// The spec this runner was built with.
    pub fn shipped() -> Self {
        Self::parse(include_str!("../../SPEC.md"))
    }

    pub fn parse(text: &str) -> Self {
        let mut sections: BTreeMap<String, Section> = BTreeMap::new();
        let mut current: Option<String> = None;
        for line in text.lines() {
            match section_number(line) {
                Some(number) => {
                    let heading = line.trim_start_matches('#').trim().to_string();
                    sections.insert(
                        number.clone(),
                        Section {
                            heading,
                            body: String::new(),
                        },
                    );
                    current = Some(number);
                }
                None => {
                    // A heading of the same levels without a number (an appendix) ends the
                    // section as well.
                    if line.starts_with("## ") || line.starts_with("### ") {
                        current = None;
                    } else if let Some(section) = current.as_ref().and_then(|n| sections.get_mut(n))
                    {
                        section.body.push_str(line);
                        section.body.push('\n');
                    }
                }
            }
        }
        for section in sections.values_mut() {
            section.body = section.body.trim().to_string();
        }
        Spec { sections }
    }

    pub fn has(&self, number: &str) -> bool {
        self.sections.contains_key(number)
    }

    pub fn numbers(&self) -> impl Iterator<Item = &str> {
        self.sections.keys().map(String::as_str)
    }

    /// `§2.4` linking to that section's copy in the report's appendix (plain text for a
    /// section the spec does not have).
    pub fn link(&self, number: &str) -> String {
        if self.has(number) {
            format!(
                "<a href=\"#spec-{n}\" title=\"{}\">§{n}</a>",
                escape(&self.sections[number].heading),
                n = escape(number)
            )
        } else {
            format!("§{}", escape(number))
        }
    }

    /// The text of every cited section, in section order, as the report's appendix.
    pub fn appendix<'a>(&self, cited: impl IntoIterator<Item = &'a str>) -> String {
        let cited: BTreeSet<&str> = cited.into_iter().filter(|n| self.has(n)).collect();
        if cited.is_empty() {
            return String::new();
        }
        let mut html = String::from(
            "<h2>What the rules check (conformance/SPEC.md)</h2>\n<p class=\"meta\">The sections of the behaviour specification shipped with this suite that the rules above cite.</p>\n",
        );
        let mut numbers: Vec<&str> = cited.into_iter().collect();
        numbers.sort_by_key(|n| {
            n.split('.')
                .map(|p| p.parse::<u32>().unwrap_or(u32::MAX))
                .collect::<Vec<_>>()
        });
        for number in numbers {
            let section = &self.sections[number];
            let _ = writeln!(
                html,
                "<section id=\"spec-{}\"><h3>{}</h3><pre class=\"spec\">{}</pre></section>",
                escape(number),
                escape(&section.heading),
                escape(&section.body)
            );
        }
        html
    }
}

/// `2.4` for `### 2.4 Conditions`, `9` for `## 9. Admission webhooks`; `None` for any other
/// line, deeper headings included.
fn section_number(line: &str) -> Option<String> {
    let title = line
        .strip_prefix("## ")
        .or_else(|| line.strip_prefix("### "))?;
    let number = title.split_whitespace().next()?.trim_end_matches('.');
    let numbered = !number.is_empty()
        && number
            .split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    numbered.then(|| number.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# Title\nintro\n## 2. ScaledObject\nabout SOs\n### 2.1 Spec fields\nfields <here>\n#### 2.1.1 deeper\nstill 2.1\n## Appendix\nnot a section\n## 9. Webhooks\ndenials\n";

    #[test]
    fn numbered_second_and_third_level_headings_are_sections_with_their_text() {
        let spec = Spec::parse(TEXT);
        assert_eq!(spec.numbers().collect::<Vec<_>>(), ["2", "2.1", "9"]);
        assert_eq!(spec.sections["2"].body, "about SOs");
        assert_eq!(
            spec.sections["2.1"].body,
            "fields <here>\n#### 2.1.1 deeper\nstill 2.1"
        );
        assert_eq!(spec.sections["9"].body, "denials");
        assert_eq!(spec.sections["9"].heading, "9. Webhooks");
    }

    #[test]
    fn a_link_points_at_the_cited_sections_copy_in_the_appendix() {
        let spec = Spec::parse(TEXT);
        let link = spec.link("2.1");
        assert!(link.contains("href=\"#spec-2.1\""), "{link}");
        assert_eq!(
            spec.link("7.7"),
            "§7.7",
            "no link to a section that is not there"
        );
        let appendix = spec.appendix(["9", "2.1", "2.1", "7.7"]);
        assert_eq!(appendix.matches("<section id=\"spec-").count(), 2);
        let (first, second) = (
            appendix.find("spec-2.1").unwrap(),
            appendix.find("spec-9").unwrap(),
        );
        assert!(first < second, "in section order");
        assert!(appendix.contains("fields &lt;here&gt;"), "escaped");
        assert_eq!(spec.appendix(["7.7"]), "");
    }

    #[test]
    fn the_shipped_spec_has_the_sections_rules_cite_most() {
        let spec = Spec::shipped();
        for number in ["2.4", "3.4", "4.4", "9", "10.1"] {
            assert!(spec.has(number), "§{number}");
        }
    }
}
