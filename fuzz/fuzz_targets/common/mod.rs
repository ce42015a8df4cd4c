//! What the text targets share: a diagnostic must point into the text it is about.

/// Panics unless `line:column` (1-based, the column in characters) lies within `text`: on
/// one of its lines, at most one past that line's last character.
pub fn assert_within(text: &str, line: usize, column: usize, shown: &dyn std::fmt::Display) {
    let lines: Vec<&str> = text.split('\n').collect();
    assert!(
        (1..=lines.len()).contains(&line),
        "line {line} outside the text's {} lines: {shown}",
        lines.len()
    );
    let chars = lines[line - 1].chars().count();
    assert!(
        (1..=chars + 1).contains(&column),
        "column {column} outside line {line} ({chars} characters): {shown}"
    );
}
