//! The built-in policies: JSON files in `policies/builtin/`, embedded in the binary.
//!
//! Each one is an ordinary policy file, parsed and validated like any other when it is loaded,
//! and a test checks that every one of them does. To add one, drop `NAME.json` into
//! `policies/builtin/` (with a top-level `comment`, which is its summary) and add a line to
//! [`BUILTINS`], keeping it sorted.

/// Every built-in policy as (name, JSON text), sorted by name.
const BUILTINS: &[(&str, &str)] = &[
    ("default", include_str!("../builtin/default.json")),
    ("fixed-identity", include_str!("../builtin/fixed-identity.json")),
    ("reproducible", include_str!("../builtin/reproducible.json")),
    ("untrusted", include_str!("../builtin/untrusted.json")),
];

/// Names of the built-in policies, sorted.
pub fn builtin_names() -> Vec<&'static str> {
    BUILTINS.iter().map(|&(name, _)| name).collect()
}

/// The JSON text of a built-in policy, or `None` if there is none of that name.
pub fn builtin_text(name: &str) -> Option<&'static str> {
    BUILTINS.iter().find(|&&(n, _)| n == name).map(|&(_, text)| text)
}

/// One-line description of a built-in policy (its top-level `comment`; empty if it has none),
/// or `None` if there is no built-in of that name.
pub fn builtin_summary(name: &str) -> Option<String> {
    let policy = crate::parse(builtin_text(name)?, &origin(name)).ok()?;
    Some(policy.comment.unwrap_or_default())
}

/// How errors name a built-in policy.
pub(crate) fn origin(name: &str) -> String {
    format!("built-in policy {name}")
}
