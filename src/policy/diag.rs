//! Errors that point into a file: `FILE:LINE:COLUMN: message`.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One error in one file, at a position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )
    }
}

/// Every error found in a set of files.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// Turns byte offsets of one source into positions, through an index of line starts
/// (so locating every error of a large file stays linear).
pub struct Source<'a> {
    pub path: &'a Path,
    pub text: &'a str,
    /// Byte offset of the start of each line.
    line_starts: Vec<usize>,
}

impl<'a> Source<'a> {
    /// Indexes `text`, read from `path`.
    pub fn new(path: &'a Path, text: &'a str) -> Source<'a> {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Source {
            path,
            text,
            line_starts,
        }
    }

    /// 1-based line and character column of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.line_starts.partition_point(|&s| s <= offset);
        let line_start = self.line_starts[line - 1];
        let column = self.text[line_start..offset].chars().count() + 1;
        (line, column)
    }

    /// A diagnostic at the start of `span`.
    pub fn at(&self, span: &Range<usize>, message: impl Into<String>) -> Diagnostic {
        let (line, column) = self.line_col(span.start);
        Diagnostic {
            file: self.path.to_path_buf(),
            line,
            column,
            message: message.into(),
        }
    }

    /// A diagnostic from the TOML parser's own error, without the value it was about (a
    /// token in the wrong place must not end up in a log, a D-Bus property or the store).
    pub fn toml_error(&self, e: &toml::de::Error) -> Diagnostic {
        let span = e.span().unwrap_or(0..0);
        self.at(&span, without_value(e.message().trim_end()))
    }
}

/// Serde's `invalid type: string "secret", expected a map` as `invalid type: a string,
/// expected a map`: the kind of what was found, never the value itself.
pub fn without_value(message: &str) -> String {
    let expected = |rest: &str| -> String {
        rest.find(", expected ")
            .map(|i| rest[i..].to_string())
            .unwrap_or_default()
    };
    if let Some(rest) = message.strip_prefix("unknown variant ") {
        return format!("unknown variant{}", expected(rest));
    }
    for prefix in ["invalid type", "invalid value"] {
        let Some(rest) = message
            .strip_prefix(prefix)
            .and_then(|r| r.strip_prefix(": "))
        else {
            continue;
        };
        let word = rest.split([' ', ',']).next().unwrap_or("value");
        let article = if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        };
        return format!("{prefix}: {article} {word}{}", expected(rest));
    }
    message.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_never_appear_in_type_errors() {
        assert_eq!(
            without_value("invalid type: string \"Authorization: Bearer s3cret\", expected a map"),
            "invalid type: a string, expected a map"
        );
        assert_eq!(
            without_value("invalid value: integer `-5`, expected u32"),
            "invalid value: an integer, expected u32"
        );
        assert_eq!(
            without_value("unknown variant `s3cret`, expected `a` or `b`"),
            "unknown variant, expected `a` or `b`"
        );
        assert_eq!(
            without_value("unknown field `port`"),
            "unknown field `port`"
        );
    }

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let s = Source::new(Path::new("p.toml"), "a = 1\nbé = \"x\"\n");
        assert_eq!(s.line_col(0), (1, 1));
        assert_eq!(s.line_col(6), (2, 1));
        // After "bé = " (é is two bytes, one character).
        assert_eq!(s.line_col(6 + 6), (2, 6));
        assert_eq!(s.at(&(6..7), "bad").to_string(), "p.toml:2:1: bad");
        // The end of the text, and an offset inside a character.
        assert_eq!(s.line_col(s.text.len()), (3, 1));
        assert_eq!(s.line_col(8), (2, 2));
    }
}
