//! Fuzzing the scenario parser (`scenario::parse`), with counts.
//!
//! Inputs are the shipped scenarios, mutated: lines dropped, repeated or cut, values replaced
//! by hostile text (wrong types, huge numbers, NaN, unicode, very long), junk keys inserted,
//! indentation broken; and random text. Properties: parsing never panics; a rejection carries
//! the file it was given and a line inside the text, and names the key, placeholder or mark
//! it is about; an accepted scenario has steps and keeps the shipped file's rule id when only
//! values below `steps` changed.
//!
//! `cargo test` runs 256 cases per target; `PROPTEST_CASES=10000` makes it a fuzz run.

mod fuzz_support;

use fuzz_support::{fuzz, hostile_value};
use keda_conformance::scenario::{self, ScenarioError};
use proptest::prelude::*;

fn shipped() -> Vec<(String, String)> {
    let dir = scenario::builtin_dir();
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .expect("the shipped scenarios")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("a readable scenario");
            let name = p
                .file_name()
                .expect("a file name")
                .to_string_lossy()
                .into_owned();
            (name, text)
        })
        .collect();
    files.sort();
    assert!(files.len() > 10, "the shipped scenarios are found");
    files
}

/// What the YAML reader says about text that is not YAML, not one document, or not a map of
/// named keys.
const SYNTAX: &[&str] = &[
    "expected struct Scenario",
    "control characters are not allowed",
    "did not find",
    "could not find",
    "found ",
    "are not allowed in this context",
    "unknown anchor",
    "recursion limit",
    "end of stream",
    "more than one document",
    // A key that is itself a map or a list: there is no key name to repeat.
    "expected field identifier",
];

#[derive(Debug, Clone)]
enum Mutation {
    DropLine(usize),
    RepeatLine(usize),
    /// Replace what follows the first `: ` on a line.
    Value(usize, String),
    InsertLine(usize, String),
    Indent(usize, usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = any::<usize>();
    prop_oneof![
        1 => at.prop_map(Mutation::DropLine),
        1 => at.prop_map(Mutation::RepeatLine),
        4 => (at, hostile_value()).prop_map(|(i, v)| Mutation::Value(i, v)),
        1 => (at, prop_oneof![
            "[a-zA-Z]{1,10}: [ -~]{0,10}".boxed(),
            Just("  - wait: {}".to_string()).boxed(),
            Just("mark: twice".to_string()).boxed(),
            Just("from: nowhere".to_string()).boxed(),
            Just("x: ${undefined}".to_string()).boxed(),
            hostile_value().boxed(),
        ]).prop_map(|(i, l)| Mutation::InsertLine(i, l)),
        1 => (at, 0usize..7).prop_map(|(i, n)| Mutation::Indent(i, n)),
        1 => at.prop_map(Mutation::Truncate),
    ]
}

fn apply(text: &str, mutations: &[Mutation]) -> String {
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    for m in mutations {
        if lines.is_empty() {
            lines.push(String::new());
        }
        let n = lines.len();
        match m {
            Mutation::DropLine(i) => {
                lines.remove(i % n);
            }
            Mutation::RepeatLine(i) => {
                let line = lines[i % n].clone();
                lines.insert(i % n, line);
            }
            Mutation::Value(i, v) => {
                let line = &mut lines[i % n];
                if let Some(at) = line.find(": ") {
                    line.truncate(at + 2);
                    line.push_str(v);
                }
            }
            Mutation::InsertLine(i, l) => lines.insert(i % (n + 1), l.clone()),
            Mutation::Indent(i, k) => {
                let line = &mut lines[i % n];
                *line = format!("{}{}", " ".repeat(*k), line.trim_start());
            }
            Mutation::Truncate(i) => {
                let joined = lines.join("\n");
                let mut cut = i % (joined.len() + 1);
                while !joined.is_char_boundary(cut) {
                    cut -= 1;
                }
                lines = joined[..cut].lines().map(String::from).collect();
            }
        }
    }
    lines.join("\n")
}

/// The rejection says where and what: the given file, a line of the text, and a reason that
/// names a key (`…` in serde's words or a `key:` path), a placeholder, a mark or the YAML
/// position it could not read.
fn well_formed(file: &str, text: &str, e: &ScenarioError) -> Result<(), TestCaseError> {
    prop_assert_eq!(&e.file, file);
    // The YAML reader counts a lone carriage return (and NEL, LS, PS) as a line break too.
    let lines = text
        .replace("\r\n", "\n")
        .split(['\n', '\r', '\u{85}', '\u{2028}', '\u{2029}'])
        .count();
    prop_assert!(
        e.line >= 1 && e.line <= lines + 1,
        "line {} of {lines}: {e}",
        e.line
    );
    prop_assert!(!e.reason.trim().is_empty(), "an empty reason");
    let reason = e.reason.as_str();
    let names_it = reason.contains('`')
        || reason.contains("step")
        || reason.contains("rule id")
        || reason
            .split_once(": ")
            .is_some_and(|(path, _)| !path.is_empty() && !path.contains(' '));
    // A YAML syntax error, or a document that is not a map at all, has no key to name: the
    // line is where to look.
    let syntax = SYNTAX.iter().any(|s| reason.contains(s));
    prop_assert!(names_it || syntax, "the rejection names nothing: {e}");
    Ok(())
}

#[test]
fn mutated_scenarios_parse_without_panic_and_rejections_say_where() {
    let files = shipped();
    let count = files.len();
    fuzz(
        "scenario parser (mutated shipped files)",
        (0..count, proptest::collection::vec(mutation(), 1..5)),
        |(index, mutations)| {
            let (file, original) = &files[index];
            let text = apply(original, &mutations);
            match scenario::parse(file, &text) {
                Ok(parsed) => prop_assert!(!parsed.steps.is_empty()),
                Err(e) => well_formed(file, &text, &e)?,
            }
            Ok(())
        },
    );
}

#[test]
fn random_text_parses_without_panic_and_rejections_say_where() {
    let text = prop_oneof![
        hostile_value(),
        "[a-z:{}\\[\\], \n\"'\\-#&*!|>%@`]{0,200}",
        proptest::collection::vec("[a-zA-Z]{1,8}: [ -~]{0,12}", 0..12).prop_map(|l| l.join("\n")),
        (1usize..2_000).prop_map(|n| format!("{}x{}", "[".repeat(n), "]".repeat(n))),
        (1usize..2_000).prop_map(|n| "- ".repeat(n)),
    ];
    fuzz("scenario parser (random text)", text, |text| {
        match scenario::parse("fuzz.yaml", &text) {
            Ok(parsed) => prop_assert!(!parsed.steps.is_empty()),
            Err(e) => well_formed("fuzz.yaml", &text, &e)?,
        }
        Ok(())
    });
}

#[test]
fn every_shipped_scenario_parses() {
    for (file, text) in shipped() {
        if let Err(e) = scenario::parse(&file, &text) {
            panic!("{e}");
        }
    }
}
