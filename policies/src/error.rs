//! Why a policy could not be loaded: [`PolicyError`], one variant per failure.
//!
//! Every error displays as one line that names the policy (its file path, or "built-in policy
//! NAME"), the place in it (a line and column for broken JSON, a JSON path such as
//! `$.time.offset_seconds` for a wrong value) and what to write instead. The launcher prints
//! that line and exits with status 125.
//!
//! This module also words serde's errors for people: serde_json tells a syntax error from a
//! data error (`serde_json::Error::classify`), serde_path_to_error says where a data error
//! happened, and the messages serde writes ("unknown field `x`, expected one of `a`, `b`",
//! "invalid type: string \"x\", expected i64") are taken apart into expected / found / fix.
//! It does not check values that parse but are out of range; that is `validate`'s job.

use std::{fmt, io};

use serde_json::error::Category;
use serde_path_to_error::Segment;

use crate::schema::field_help;

/// Fix offered when the schema has no help for a path (which should not happen).
const GENERIC_FIX: &str = "compare with the output of `cloister policy show default`";

/// Why a policy could not be read, parsed or accepted.
#[derive(Debug)]
pub enum PolicyError {
    /// The policy file could not be read.
    Read {
        /// The path as given.
        path: String,
        /// What the host said.
        source: io::Error,
    },
    /// The text is not valid JSON.
    Syntax {
        /// The file path, or "built-in policy NAME".
        origin: String,
        /// Line of the error, from 1.
        line: usize,
        /// Column of the error, from 1 (0 when the text is empty).
        column: usize,
        /// serde_json's description, e.g. "trailing comma".
        message: String,
    },
    /// A value has the wrong type, e.g. a string where a number belongs.
    Schema {
        /// The file path, or "built-in policy NAME".
        origin: String,
        /// Where the value is, e.g. `$.time.offset_seconds`.
        json_path: String,
        /// What belongs there, e.g. "an integer number of seconds".
        expected: String,
        /// What was there, e.g. `the string "soon"`.
        found: String,
        /// How to write it, e.g. "write a whole number such as 3600".
        fix: String,
    },
    /// An object has a key the schema does not know (often a misspelling).
    UnknownKey {
        /// The file path, or "built-in policy NAME".
        origin: String,
        /// The object holding the key, e.g. `$.identity`.
        json_path: String,
        /// The unknown key.
        key: String,
        /// The keys that object may have.
        allowed: Vec<String>,
    },
    /// The name is neither a file nor a built-in policy.
    UnknownBuiltin {
        /// The name as given.
        name: String,
        /// The built-in policies, sorted.
        available: Vec<&'static str>,
    },
    /// A value has the right type but is not allowed, e.g. a host name with a space.
    Invalid {
        /// The file path, or "built-in policy NAME".
        origin: String,
        /// Where the value is, e.g. `$.identity.hostname`.
        json_path: String,
        /// What is wrong with it.
        message: String,
        /// What to write instead.
        fix: String,
    },
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read { path, source } => {
                write!(f, "policy {path}: cannot read the file: {source}")?;
                if source.kind() == io::ErrorKind::NotFound {
                    let names = crate::builtin_names().join(", ");
                    write!(f, "; check the path, or name a built-in policy ({names})")?;
                }
                Ok(())
            }
            Self::Syntax { origin, line, column, message } => {
                write!(f, "{}: line {line} column {column}: invalid JSON: {message}", Label(origin))
            }
            Self::Schema { origin, json_path, expected, found, fix } => {
                write!(f, "{}: at {json_path}: expected {expected}, found {found}; {fix}", Label(origin))
            }
            Self::UnknownKey { origin, json_path, key, allowed } => {
                write!(f, "{}: at {json_path}: unknown key {key:?}; ", Label(origin))?;
                if allowed.is_empty() {
                    f.write_str("no keys are allowed here")
                } else {
                    write!(f, "the keys allowed here are {}", allowed.join(", "))
                }
            }
            Self::UnknownBuiltin { name, available } => write!(
                f,
                "policy {name}: no built-in policy has this name; choose one of {}, \
                 or give a file path such as ./{name}.json",
                available.join(", ")
            ),
            Self::Invalid { origin, json_path, message, fix } => {
                write!(f, "{}: at {json_path}: {message}; {fix}", Label(origin))
            }
        }
    }
}

impl std::error::Error for PolicyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Read { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// How a message names its policy: "policy ./x.json", or "built-in policy NAME" as it is.
struct Label<'a>(&'a str);

impl fmt::Display for Label<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.starts_with("built-in policy ") {
            f.write_str(self.0)
        } else {
            write!(f, "policy {}", self.0)
        }
    }
}

/// Turns a failed `serde_path_to_error::deserialize` of a policy into a [`PolicyError`].
pub(crate) fn from_json(err: serde_path_to_error::Error<serde_json::Error>, origin: &str) -> PolicyError {
    if err.inner().classify() != Category::Data {
        return syntax(err.inner(), origin);
    }
    let mut segments: Vec<&Segment> = err.path().iter().collect();
    let message = bare_message(err.inner());
    let origin = origin.to_owned();
    if let Some((key, allowed)) = unknown_field(&message) {
        // serde_path_to_error counts the unknown key as a step of the path; name its object.
        if matches!(segments.last(), Some(Segment::Map { key: last }) if *last == key) {
            segments.pop();
        }
        let json_path = render_path(&segments);
        return PolicyError::UnknownKey { origin, json_path, key, allowed };
    }
    let json_path = render_path(&segments);
    let help = field_help(&json_path);
    let fix = help.as_ref().map_or(GENERIC_FIX, |h| h.fix).to_owned();
    if let Some((found, serde_expected)) = wrong_type(&message) {
        let expected = help.map_or(serde_expected, |h| h.expected).to_owned();
        return PolicyError::Schema { origin, json_path, expected, found, fix };
    }
    if let Some(key) = message.strip_prefix("duplicate field `").and_then(|r| r.strip_suffix('`')) {
        let message = format!("the key {key:?} appears twice");
        return PolicyError::Invalid { origin, json_path, message, fix: "keep only one".into() };
    }
    PolicyError::Invalid { origin, json_path, message, fix }
}

/// Turns a serde_json error that is not about the data (broken JSON, text cut short) into
/// [`PolicyError::Syntax`].
pub(crate) fn syntax(err: &serde_json::Error, origin: &str) -> PolicyError {
    PolicyError::Syntax {
        origin: origin.to_owned(),
        line: err.line(),
        column: err.column(),
        message: bare_message(err),
    }
}

/// serde_json's message without the " at line L column C" it appends when it knows where.
fn bare_message(err: &serde_json::Error) -> String {
    let full = err.to_string();
    let suffix = format!(" at line {} column {}", err.line(), err.column());
    full.strip_suffix(&suffix).unwrap_or(&full).to_owned()
}

/// Renders a serde_path_to_error path as `$.a.b[2]`; keys that are not plain words are
/// quoted, as in `$["odd key"]`.
fn render_path(segments: &[&Segment]) -> String {
    let mut out = String::from("$");
    for segment in segments {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                let plain = !key.is_empty()
                    && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                if plain {
                    out.push('.');
                    out.push_str(key);
                } else {
                    out.push_str(&format!("[{key:?}]"));
                }
            }
            Segment::Unknown => out.push_str(".?"),
        }
    }
    out
}

/// Takes apart "unknown field `k`, expected one of `a`, `b`" (or "expected `a`", or "there are
/// no fields") into the key and the allowed keys.
fn unknown_field(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown field `")?;
    if let Some(key) = rest.strip_suffix("`, there are no fields") {
        return Some((key.to_owned(), Vec::new()));
    }
    let end = rest.rfind("`, expected ")?;
    let allowed = rest[end + 1..].split('`').skip(1).step_by(2).map(str::to_owned).collect();
    Some((rest[..end].to_owned(), allowed))
}

/// Takes apart "invalid type: string \"x\", expected i64" (or "invalid value: ...", which
/// serde_json writes for an integer out of the type's range) into what was found, in words,
/// and serde's name for what was expected.
fn wrong_type(message: &str) -> Option<(String, &str)> {
    let (rest, out_of_range) = match message.strip_prefix("invalid type: ") {
        Some(rest) => (rest, false),
        None => (message.strip_prefix("invalid value: ")?, true),
    };
    let (unexpected, expected) = rest.rsplit_once(", expected ")?;
    let ticked = |prefix: &str| unexpected.strip_prefix(prefix).map(|v| v.trim_matches('`').to_owned());
    let mut found = match unexpected {
        "map" => "an object".to_owned(),
        "sequence" => "an array".to_owned(),
        "null" => "null".to_owned(),
        _ if unexpected.starts_with("string ") => format!("the {unexpected}"),
        _ => ticked("integer ")
            .map(|v| format!("the integer {v}"))
            .or_else(|| ticked("floating point ").map(|v| format!("the number {v}")))
            .or_else(|| ticked("boolean ").map(|v| format!("the value {v}")))
            .unwrap_or_else(|| unexpected.to_owned()),
    };
    if out_of_range {
        found.push_str(", which is out of range");
    }
    Some((found, expected))
}
