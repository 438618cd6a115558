//! Every rule cites a section of conformance/SPEC.md (`section:`), and a reader of a failure
//! must find it there: each cited number is a heading of the spec.

use std::collections::BTreeSet;
use std::path::Path;

fn headings(spec: &str) -> BTreeSet<String> {
    spec.lines()
        .filter_map(|l| l.strip_prefix("## ").or_else(|| l.strip_prefix("### ")))
        .filter_map(|title| title.split_whitespace().next())
        .map(|number| number.trim_end_matches('.').to_string())
        .filter(|n| n.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .collect()
}

#[test]
fn every_section_a_rule_cites_is_a_heading_of_the_spec() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let spec = std::fs::read_to_string(root.join("SPEC.md")).expect("conformance/SPEC.md");
    let sections = headings(&spec);
    assert!(
        sections.contains("4.4") && sections.contains("9"),
        "{sections:?}"
    );
    let mut cited = 0;
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(root.join("scenarios")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let Some(line) = text.lines().find(|l| l.starts_with("section:")) else {
            missing.push(format!("{}: no section", path.display()));
            continue;
        };
        let number = line["section:".len()..].trim().trim_matches('"');
        cited += 1;
        if !sections.contains(number) {
            missing.push(format!("{}: §{number}", path.display()));
        }
    }
    assert!(cited > 0, "no rule read");
    assert!(missing.is_empty(), "cited but not in SPEC.md: {missing:?}");
}

#[test]
fn only_numbered_second_and_third_level_headings_are_sections() {
    let sections = headings("## 2. ScaledObject\n### 2.1 Spec fields\ntext\n#### 2.1.1 deeper\n");
    assert_eq!(
        sections.into_iter().collect::<Vec<_>>(),
        ["2".to_string(), "2.1".to_string()]
    );
}
