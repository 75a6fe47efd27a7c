//! Loading a policy: from a file or a built-in name, then parsing and validating it.
//!
//! A policy is JSON (RFC 8259) read in one piece with serde_json; serde_path_to_error keeps
//! track of where in the document an error happened, so that errors can name a JSON path.

use std::path::Path;

use crate::builtin::{builtin_names, builtin_text, origin};
use crate::error::{from_json, syntax, PolicyError};
use crate::schema::{Document, Policy};
use crate::validate::validate;

/// Load by name (a built-in) or by file path.
///
/// The argument is a file path if it contains a `/`, ends in `.json` or names an existing file;
/// otherwise it is the name of a built-in policy, and an unknown name is
/// [`PolicyError::UnknownBuiltin`], which lists the names there are.
pub fn load(name_or_path: &str) -> Result<Policy, PolicyError> {
    if is_file(name_or_path) {
        let text = std::fs::read_to_string(name_or_path)
            .map_err(|source| PolicyError::Read { path: name_or_path.to_owned(), source })?;
        return parse(&text, name_or_path);
    }
    match builtin_text(name_or_path) {
        Some(text) => parse(text, &origin(name_or_path)),
        None => {
            Err(PolicyError::UnknownBuiltin { name: name_or_path.to_owned(), available: builtin_names() })
        }
    }
}

/// How messages name the policy that [`load`] would load for `name_or_path`: `policy PATH`
/// for a file, `built-in policy NAME` for a built-in; the same words as [`PolicyError`]'s.
pub fn label(name_or_path: &str) -> String {
    if is_file(name_or_path) {
        format!("policy {name_or_path}")
    } else {
        origin(name_or_path)
    }
}

/// Whether [`load`] takes `name_or_path` as a file path rather than a built-in's name.
fn is_file(name_or_path: &str) -> bool {
    name_or_path.contains('/') || name_or_path.ends_with(".json") || Path::new(name_or_path).is_file()
}

/// Parse and validate JSON text; `origin` is what error messages name (a file path, or
/// "built-in policy NAME").
pub fn parse(text: &str, origin: &str) -> Result<Policy, PolicyError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let Document(policy) = serde_path_to_error::deserialize(&mut de).map_err(|e| from_json(e, origin))?;
    // Anything but whitespace after the policy's object is a syntax error.
    de.end().map_err(|e| syntax(&e, origin))?;
    validate(&policy, origin)?;
    Ok(policy)
}
