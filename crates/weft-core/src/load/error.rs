//! Configuration errors that say where (file:line:column and field path), what, and how to fix.

use std::fmt;

use serde::Serialize;

use super::yaml::Pos;

/// A place in a config file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Location {
    pub file: String,
    pub line: usize,
    pub column: usize,
}

impl Location {
    pub fn new(file: &str, pos: Pos) -> Self {
        Location {
            file: file.to_string(),
            line: pos.line,
            column: pos.column,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// A document or file that could not be read as configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfigError {
    pub location: Location,
    /// Field path inside the document, e.g. `spec.ports[0].port`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The resource the document declares, when known: `Kind/namespace/name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    pub message: String,
    /// What to change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// Other places involved (e.g. the first definition of a duplicate).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub related: Vec<Location>,
}

impl ConfigError {
    pub fn new(location: Location, message: impl Into<String>) -> Self {
        ConfigError {
            location,
            path: None,
            resource: None,
            message: message.into(),
            hint: None,
            related: Vec::new(),
        }
    }

    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        let p = path.into();
        if !p.is_empty() {
            self.path = Some(p);
        }
        self
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: error", self.location)?;
        if let Some(r) = &self.resource {
            write!(f, " in {r}")?;
        }
        if let Some(p) = &self.path {
            write!(f, " at `{p}`")?;
        }
        write!(f, ": {}", self.message)?;
        for r in &self.related {
            write!(f, "\n  see also: {r}")?;
        }
        if let Some(h) = &self.hint {
            write!(f, "\n  fix: {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Turns a serde error message into a clearer one with a fix, given the fields that exist.
pub(crate) fn explain_serde(message: &str) -> (String, Option<String>, Option<String>) {
    // Returns (message, hint, unknown field name if any).
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (field, tail) = rest.split_once('`').unwrap_or((rest, ""));
        let expected = backticked(tail);
        let hint = match closest(field, &expected) {
            Some(best) => format!("did you mean `{best}`?"),
            None if expected.is_empty() => "remove it: this object takes no fields".into(),
            None => format!("remove it; the fields here are: {}", expected.join(", ")),
        };
        return (
            format!("unknown field `{field}`"),
            Some(hint),
            Some(field.to_string()),
        );
    }
    if let Some(rest) = message.strip_prefix("unknown variant `") {
        let (variant, tail) = rest.split_once('`').unwrap_or((rest, ""));
        let expected = backticked(tail);
        let hint = match closest(variant, &expected) {
            Some(best) => format!("did you mean `{best}`? (one of: {})", expected.join(", ")),
            None => format!("use one of: {}", expected.join(", ")),
        };
        return (
            format!("`{variant}` is not a valid value"),
            Some(hint),
            None,
        );
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let field = rest.split('`').next().unwrap_or(rest);
        return (
            format!("required field `{field}` is missing"),
            Some(format!("add `{field}:` here")),
            None,
        );
    }
    if message.starts_with("invalid type") || message.starts_with("invalid value") {
        let hint = message
            .rsplit_once("expected ")
            .map(|(_, e)| format!("write {}", plain_expected(e)));
        return (message.to_string(), hint, None);
    }
    (message.to_string(), None, None)
}

fn backticked(s: &str) -> Vec<String> {
    s.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// The candidate closest to `word`, if it is close enough to be a likely typo.
pub fn closest<S: AsRef<str>>(word: &str, candidates: &[S]) -> Option<String> {
    let lower = word.to_ascii_lowercase();
    candidates
        .iter()
        .map(|c| c.as_ref())
        .map(|c| {
            let other = c.to_ascii_lowercase();
            let contains = lower.len() >= 3 && (other.contains(&lower) || lower.contains(&other));
            let score = if contains {
                1
            } else {
                strsim::damerau_levenshtein(&lower, &other)
            };
            (score, c)
        })
        .filter(|(d, c)| *d <= (c.len().max(word.len()) / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.to_string())
}

fn plain_expected(e: &str) -> String {
    match e {
        "u16" => "a whole number from 0 to 65535 (a port)".into(),
        "u32" | "u64" | "usize" => "a whole number, 0 or more".into(),
        "a boolean" => "true or false (without quotes)".into(),
        "a string" => "a string (quote it if it looks like a number or boolean)".into(),
        "a sequence" => "a list (`- item` lines, or `[a, b]`)".into(),
        "a map" => "a mapping (`key: value` lines)".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_field_suggests_the_closest() {
        let (msg, hint, field) = explain_serde(
            "unknown field `replcas`, expected one of `command`, `replicas`, `ports`",
        );
        assert_eq!(msg, "unknown field `replcas`");
        assert_eq!(hint.unwrap(), "did you mean `replicas`?");
        assert_eq!(field.unwrap(), "replcas");
    }

    #[test]
    fn far_off_names_list_the_choices() {
        let (_, hint, _) = explain_serde("unknown field `zzzzzzzz`, expected `name` or `value`");
        assert_eq!(hint.unwrap(), "remove it; the fields here are: name, value");
    }
}
