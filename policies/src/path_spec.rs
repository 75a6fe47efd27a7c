//! Paths as a policy or the command line writes them: `/abs/path`, `~`, `~/in/home`, and
//! `HOST[:GUEST]` pairs for the filesystem view's `ro`, `rw` and `overlay` entries.
//!
//! Parsing only checks the shape and keeps the text: `~` is expanded later, by the launcher,
//! with the home of the user who runs the sandbox ([`PathSpec::expand`]), so that a policy
//! file means the same for every user. Guest paths are then normalised lexically
//! ([`normalize_guest`]); host paths are resolved by the launcher against the real host tree
//! (`canonicalize`), which a lexical rule cannot do.
//!
//! Relative paths are refused: the sandbox cannot know which directory they would be relative
//! to (the launcher's, the program's, the policy file's), and guessing is how a view ends up
//! showing the wrong tree. `~user` is refused too: it depends on the password database of
//! whoever runs the policy.

use std::fmt;

/// A path written as absolute or under the home directory; its text is kept as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathSpec(String);

/// Why a written path is not accepted; [`PathError::fix`] says what to write instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathError {
    /// Nothing was written.
    Empty,
    /// The path neither starts with `/` nor is `~` or `~/...`.
    Relative(String),
    /// `~name/...`: another user's home.
    OtherHome(String),
    /// The path contains a NUL byte, which no file name can.
    Nul(String),
}

impl PathError {
    /// What to write instead, as a clause that follows a `;`.
    pub fn fix(&self) -> &'static str {
        match self {
            PathError::Empty | PathError::Relative(_) => {
                "write it from the root, such as \"/srv/data\", or from your home, such as \"~/data\""
            }
            PathError::OtherHome(_) => "write that home's absolute path, such as \"/home/alice/data\"",
            PathError::Nul(_) => "remove the NUL character",
        }
    }
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathError::Empty => f.write_str("the path is empty"),
            PathError::Relative(p) => write!(f, "the path {p:?} is relative"),
            PathError::OtherHome(p) => write!(f, "the path {p:?} names another user's home"),
            PathError::Nul(p) => write!(f, "the path {p:?} contains a NUL character"),
        }
    }
}

impl std::error::Error for PathError {}

impl PathSpec {
    /// Accepts `/...`, `~` and `~/...`.
    pub fn parse(text: &str) -> Result<PathSpec, PathError> {
        if text.is_empty() {
            return Err(PathError::Empty);
        }
        if text.contains('\0') {
            return Err(PathError::Nul(text.to_owned()));
        }
        if text.starts_with('/') || text == "~" || text.starts_with("~/") {
            return Ok(PathSpec(text.to_owned()));
        }
        if text.starts_with('~') {
            return Err(PathError::OtherHome(text.to_owned()));
        }
        Err(PathError::Relative(text.to_owned()))
    }

    /// The text as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path with a leading `~` replaced by `home` (an absolute path); not normalised.
    pub fn expand(&self, home: &str) -> String {
        match self.0.strip_prefix('~') {
            Some(rest) => format!("{}{rest}", home.trim_end_matches('/')),
            None => self.0.clone(),
        }
    }
}

/// A `ro`, `rw` or `overlay` entry: `HOST[:GUEST]`, split at the first `:` (so a host path
/// cannot contain one; a guest path can). Without `:GUEST` the program sees the host path at
/// the same place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindSpec {
    /// The host tree shown.
    pub host: PathSpec,
    /// Where the program sees it.
    pub guest: PathSpec,
}

/// Why a `HOST[:GUEST]` entry is not accepted: which half, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindError {
    /// "host" or "guest".
    pub part: &'static str,
    /// What is wrong with that half.
    pub error: PathError,
}

impl fmt::Display for BindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (the {} part)", self.error, self.part)
    }
}

impl std::error::Error for BindError {}

impl BindSpec {
    /// Parses `HOST` or `HOST:GUEST`.
    pub fn parse(text: &str) -> Result<BindSpec, BindError> {
        let (host, guest) = match text.split_once(':') {
            Some((host, guest)) => (host, guest),
            None => (text, text),
        };
        let host = PathSpec::parse(host).map_err(|error| BindError { part: "host", error })?;
        let guest = PathSpec::parse(guest).map_err(|error| BindError { part: "guest", error })?;
        Ok(BindSpec { host, guest })
    }
}

/// An absolute path with `.`, `..` and repeated or trailing `/` taken out, as the program will
/// name it (`..` above the root stays at the root, as in the kernel's path walk).
pub fn normalize_guest(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            name => parts.push(name),
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_and_home_paths_parse_and_expand() {
        let abs = PathSpec::parse("/srv/data").unwrap();
        assert_eq!(abs.expand("/home/u"), "/srv/data");
        assert_eq!(PathSpec::parse("~").unwrap().expand("/home/u"), "/home/u");
        assert_eq!(PathSpec::parse("~/.ssh").unwrap().expand("/home/u/"), "/home/u/.ssh");
        assert_eq!(PathSpec::parse("~/.ssh").unwrap().expand("/"), "/.ssh");
    }

    #[test]
    fn relative_empty_and_other_homes_are_refused() {
        assert_eq!(PathSpec::parse(""), Err(PathError::Empty));
        assert_eq!(PathSpec::parse("data"), Err(PathError::Relative("data".into())));
        assert_eq!(PathSpec::parse("./data"), Err(PathError::Relative("./data".into())));
        assert_eq!(PathSpec::parse("~alice/x"), Err(PathError::OtherHome("~alice/x".into())));
        assert_eq!(PathSpec::parse("/a\0b"), Err(PathError::Nul("/a\0b".into())));
        assert_eq!(PathError::Relative("d".into()).to_string(), r#"the path "d" is relative"#);
    }

    #[test]
    fn bind_splits_at_the_first_colon() {
        let b = BindSpec::parse("/srv/data").unwrap();
        assert_eq!((b.host.as_str(), b.guest.as_str()), ("/srv/data", "/srv/data"));
        let b = BindSpec::parse("~/src:/work:x").unwrap();
        assert_eq!((b.host.as_str(), b.guest.as_str()), ("~/src", "/work:x"));
        let b = BindSpec::parse("/a:~/b").unwrap();
        assert_eq!(b.guest.expand("/home/u"), "/home/u/b");
        let e = BindSpec::parse("/a:").unwrap_err();
        assert_eq!((e.part, e.error), ("guest", PathError::Empty));
        let e = BindSpec::parse("a:/b").unwrap_err();
        assert_eq!(e.to_string(), r#"the path "a" is relative (the host part)"#);
        assert_eq!(BindSpec::parse(":/b").unwrap_err().part, "host");
    }

    #[test]
    fn guest_paths_are_normalised() {
        for (input, expected) in [
            ("/", "/"),
            ("//", "/"),
            ("/a/b/", "/a/b"),
            ("/a//./b", "/a/b"),
            ("/a/../b", "/b"),
            ("/../..", "/"),
            ("/a/b/..", "/a"),
        ] {
            assert_eq!(normalize_guest(input), expected, "{input}");
        }
    }
}
