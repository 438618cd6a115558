//! KEDA's `castToFloatIfNecessary`: the text actually compiled, and the way back from a byte
//! offset in it to a position in the formula the user wrote.

use super::Position;

/// KEDA leaves a `??` formula alone when it already starts with its own wrapper.
const NILABLE_PREFIX_MARK: &str = "let _kedaCompositeResult = ";
const NILABLE_PREFIX: &str = "let _kedaCompositeResult = (";
const NILABLE_SUFFIX: &str = "); _kedaCompositeResult == nil ? nil : float(_kedaCompositeResult)";
const FLOAT_PREFIX: &str = "float(";
const FLOAT_SUFFIX: &str = ")";

/// The wrapped program text and where the user's formula sits in it.
#[derive(Debug, Clone)]
pub(super) struct Wrapped {
    pub(super) text: String,
    user_start: usize,
    user_end: usize,
}

impl Wrapped {
    pub(super) fn new(formula: &str) -> Wrapped {
        let (prefix, suffix) = if formula.contains("??") {
            if formula.starts_with(NILABLE_PREFIX_MARK) {
                ("", "")
            } else {
                (NILABLE_PREFIX, NILABLE_SUFFIX)
            }
        } else if formula.starts_with(FLOAT_PREFIX) {
            ("", "")
        } else {
            (FLOAT_PREFIX, FLOAT_SUFFIX)
        };
        Wrapped {
            text: format!("{prefix}{formula}{suffix}"),
            user_start: prefix.len(),
            user_end: prefix.len() + formula.len(),
        }
    }

    /// The formula as the user wrote it.
    pub(super) fn user(&self) -> &str {
        &self.text[self.user_start..self.user_end]
    }

    /// Where the user's formula starts in the program text.
    pub(super) fn user_start(&self) -> usize {
        self.user_start
    }

    /// Whether the byte at `offset` of the program text was written by the user (and not by
    /// the wrapping).
    pub(super) fn is_user(&self, offset: usize) -> bool {
        (self.user_start..self.user_end).contains(&offset)
    }

    /// Whether `offset` lies after the user's text (in the wrapping's tail or at the end).
    pub(super) fn is_past_user(&self, offset: usize) -> bool {
        offset >= self.user_end
    }

    /// The user-facing position of a byte offset of the program text; offsets in the wrapping
    /// clamp to the start or the end of the formula.
    pub(super) fn position(&self, offset: usize) -> Position {
        let user_offset = offset.clamp(self.user_start, self.user_end) - self.user_start;
        let before = &self.user()[..floor_char_boundary(self.user(), user_offset)];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Position {
            line,
            column: before[line_start..].chars().count() + 1,
        }
    }

    /// The position just after the last character of the formula.
    pub(super) fn end(&self) -> Position {
        self.position(self.user_end)
    }
}

fn floor_char_boundary(text: &str, mut index: usize) -> usize {
    while !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}
