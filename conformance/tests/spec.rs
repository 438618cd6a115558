//! Every rule cites a section of conformance/SPEC.md (`section:`), and a reader of a failure
//! must find it there: each cited number is a heading of the spec.

use std::path::Path;

use keda_conformance::report::spec::Spec;

#[test]
fn every_section_a_rule_cites_is_a_heading_of_the_spec() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // The spec compiled into the runner, whose reports link and carry the cited sections.
    let spec = Spec::shipped();
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
        if !spec.has(number) {
            missing.push(format!("{}: §{number}", path.display()));
        }
    }
    assert!(cited > 0, "no rule read");
    assert!(missing.is_empty(), "cited but not in SPEC.md: {missing:?}");
}
