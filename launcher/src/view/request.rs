//! What the view is asked to be: the policy's `filesystem` entries, then the command line's
//! flags, with `~` expanded, guest paths normalised, one entry per guest path (the later one
//! wins) and a root added when none was given.
//!
//! Nothing here touches the host's files; [`super::table`] resolves the host paths.
//!
//! Two rules are decided here and documented in docs/filesystem.md:
//! - A view always has a root. When no entry is for `/`, the host's `/` is shown read-only, which
//!   is what `cloister run` promises without a view too (the host tree is visible), minus writes.
//! - A *policy's* `hide` entry that is the user's home or contains it is skipped: a policy is
//!   written for every user, and the built-in `untrusted` hides `/root`, which must not hide
//!   root's own home when root runs it (its `~/...` entries hide the secrets in it). A `--hide`
//!   flag is always obeyed: whoever types `--hide ~` means it.

use policies::{normalize_guest, BindSpec, Filesystem, PathSpec};

/// The five kinds of view entry, as flags and as policy keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MountFlag {
    /// `--ro` / `filesystem.ro`.
    Ro,
    /// `--rw` / `filesystem.rw`.
    Rw,
    /// `--overlay` / `filesystem.overlay`.
    Overlay,
    /// `--tmpfs` / `filesystem.tmpfs`.
    Tmpfs,
    /// `--hide` / `filesystem.hide`.
    Hide,
}

impl MountFlag {
    /// Every kind, in the order a policy's keys are taken.
    pub const ALL: [MountFlag; 5] =
        [MountFlag::Ro, MountFlag::Rw, MountFlag::Overlay, MountFlag::Tmpfs, MountFlag::Hide];

    /// The policy key, e.g. `ro`.
    pub fn key(self) -> &'static str {
        match self {
            MountFlag::Ro => "ro",
            MountFlag::Rw => "rw",
            MountFlag::Overlay => "overlay",
            MountFlag::Tmpfs => "tmpfs",
            MountFlag::Hide => "hide",
        }
    }

    /// The command-line flag, e.g. `--ro`.
    pub fn flag(self) -> &'static str {
        match self {
            MountFlag::Ro => "--ro",
            MountFlag::Rw => "--rw",
            MountFlag::Overlay => "--overlay",
            MountFlag::Tmpfs => "--tmpfs",
            MountFlag::Hide => "--hide",
        }
    }

    /// Whether entries of this kind are `HOST[:GUEST]` (the others are a guest path).
    pub fn has_host(self) -> bool {
        matches!(self, MountFlag::Ro | MountFlag::Rw | MountFlag::Overlay)
    }

    fn entries(self, fs: &Filesystem) -> &[String] {
        match self {
            MountFlag::Ro => &fs.ro,
            MountFlag::Rw => &fs.rw,
            MountFlag::Overlay => &fs.overlay,
            MountFlag::Tmpfs => &fs.tmpfs,
            MountFlag::Hide => &fs.hide,
        }
    }
}

/// One view flag as given on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViewFlag {
    /// Which flag.
    pub kind: MountFlag,
    /// Its value as typed.
    pub value: String,
}

/// One entry of the view, merged and expanded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Where the program sees it: absolute and normalised.
    pub guest: String,
    /// What it is.
    pub kind: MountFlag,
    /// For `ro`, `rw` and `overlay`: the host path, `~` expanded, not yet resolved.
    pub host: Option<String>,
    /// Who asked, for error messages: `--ro /x` or `policy ./p.json: at $.filesystem.ro[0]`.
    pub origin: String,
}

/// The merged entries of `fs` (from the policy that `policy_label` names, e.g. "built-in
/// policy untrusted") and `flags`; `home` expands `~`. Empty when neither asks for a view.
/// The error is one line naming the entry.
pub fn requests(
    fs: &Filesystem,
    policy_label: &str,
    flags: &[ViewFlag],
    home: Option<&str>,
) -> Result<Vec<Request>, String> {
    let mut out: Vec<Request> = Vec::new();
    for kind in MountFlag::ALL {
        for (i, entry) in kind.entries(fs).iter().enumerate() {
            let origin = format!("{policy_label}: at $.filesystem.{}[{i}]", kind.key());
            let request = parse(kind, entry, origin, home)?;
            if kind == MountFlag::Hide && home.is_some_and(|h| covers(&request.guest, &normalize_guest(h))) {
                continue;
            }
            push(&mut out, request);
        }
    }
    for flag in flags {
        let origin = format!("{} {}", flag.kind.flag(), flag.value);
        push(&mut out, parse(flag.kind, &flag.value, origin, home)?);
    }
    if let Some(root) = out.iter().find(|r| r.guest == "/" && r.kind == MountFlag::Hide) {
        return Err(format!("{}: the root cannot be hidden; hide what is in it instead", root.origin));
    }
    if !out.is_empty() && !out.iter().any(|r| r.guest == "/") {
        let root = Request {
            guest: "/".into(),
            kind: MountFlag::Ro,
            host: Some("/".into()),
            origin: "the view's implicit root (--ro /)".into(),
        };
        out.insert(0, root);
    }
    Ok(out)
}

/// The guest directory the program starts in: `--cwd` if given, else the policy's `cwd`.
pub fn guest_cwd(
    fs: &Filesystem,
    policy_label: &str,
    flag: Option<&str>,
    home: Option<&str>,
) -> Result<Option<(String, String)>, String> {
    let (text, origin) = match (flag, &fs.cwd) {
        (Some(text), _) => (text, format!("--cwd {text}")),
        (None, Some(text)) => (text.as_str(), format!("{policy_label}: at $.filesystem.cwd")),
        (None, None) => return Ok(None),
    };
    let spec = PathSpec::parse(text).map_err(|e| format!("{origin}: {e}; {}", e.fix()))?;
    Ok(Some((normalize_guest(&expand(&spec, home, &origin)?), origin)))
}

/// Shows the program and its working directory where a private tmpfs would hide them: a
/// host path in `keep` (absolute) whose guest path (the same) a `tmpfs` request owns gets
/// an overlay of its top directory below the tmpfs (`/tmp/build` for `/tmp/build/a/prog`),
/// so that a program started from under the host's `/tmp` still finds itself there. Its
/// writes stay in the overlay, like any.
pub fn keep_visible(requests: &mut Vec<Request>, keep: &[&str]) {
    for path in keep {
        let owner = requests.iter().filter(|r| covers(&r.guest, path)).max_by_key(|r| r.guest.len());
        let Some(tmpfs) = owner.filter(|r| r.kind == MountFlag::Tmpfs && r.guest != *path) else { continue };
        let below = &path[tmpfs.guest.len()..].trim_start_matches('/');
        let top = below.split('/').next().unwrap_or_default();
        let guest = if tmpfs.guest == "/" { format!("/{top}") } else { format!("{}/{top}", tmpfs.guest) };
        let origin = format!(
            "{guest}, shown inside the private {} because the program or its directory is there",
            tmpfs.guest
        );
        push(requests, Request { guest: guest.clone(), kind: MountFlag::Overlay, host: Some(guest), origin });
    }
}

/// Whether guest path `outer` is `inner` or one of its ancestors.
pub fn covers(outer: &str, inner: &str) -> bool {
    outer == "/" || inner == outer || inner.strip_prefix(outer).is_some_and(|rest| rest.starts_with('/'))
}

/// Adds `request`, replacing an earlier entry for the same guest path.
fn push(out: &mut Vec<Request>, request: Request) {
    out.retain(|r| r.guest != request.guest);
    out.push(request);
}

fn parse(kind: MountFlag, text: &str, origin: String, home: Option<&str>) -> Result<Request, String> {
    if kind.has_host() {
        let bind = BindSpec::parse(text).map_err(|e| format!("{origin}: {e}; {}", e.error.fix()))?;
        let host = expand(&bind.host, home, &origin)?;
        let guest = normalize_guest(&expand(&bind.guest, home, &origin)?);
        return Ok(Request { guest, kind, host: Some(host), origin });
    }
    let spec = PathSpec::parse(text).map_err(|e| format!("{origin}: {e}; {}", e.fix()))?;
    let guest = normalize_guest(&expand(&spec, home, &origin)?);
    Ok(Request { guest, kind, host: None, origin })
}

fn expand(spec: &PathSpec, home: Option<&str>, origin: &str) -> Result<String, String> {
    if !spec.as_str().starts_with('~') {
        return Ok(spec.as_str().to_owned());
    }
    match home {
        Some(home) => Ok(spec.expand(home)),
        None => Err(format!(
            "{origin}: cannot expand ~: HOME is not set to an absolute path and the password \
             database has no home for this user; set HOME or write the full path"
        )),
    }
}

/// The home directory `~` stands for: `$HOME` when it is absolute, else the password
/// database's entry for the effective user (as a shell does).
pub fn home_dir() -> Option<String> {
    if let Some(home) = std::env::var_os("HOME").and_then(|h| h.into_string().ok()) {
        if home.starts_with('/') {
            return Some(home);
        }
    }
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: passwd is plain data that getpwuid_r fills in; an all-zero value is valid.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result = std::ptr::null_mut();
    // SAFETY: every pointer refers to live, writable memory of the given size; getpwuid_r
    // writes the strings `pwd` points at into `buf`.
    let rc = unsafe { libc::getpwuid_r(libc::geteuid(), &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
    if rc != 0 || result.is_null() || pwd.pw_dir.is_null() {
        return None;
    }
    // SAFETY: getpwuid_r succeeded, so pw_dir points at a NUL-terminated string inside `buf`.
    let dir = unsafe { std::ffi::CStr::from_ptr(pwd.pw_dir) };
    dir.to_str().ok().filter(|d| d.starts_with('/')).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flag(kind: MountFlag, value: &str) -> ViewFlag {
        ViewFlag { kind, value: value.into() }
    }

    fn summary(requests: &[Request]) -> Vec<(String, MountFlag, Option<String>)> {
        requests.iter().map(|r| (r.guest.clone(), r.kind, r.host.clone())).collect()
    }

    #[test]
    fn no_policy_section_and_no_flag_is_no_view() {
        assert_eq!(requests(&Filesystem::default(), "p", &[], Some("/home/u")), Ok(vec![]));
    }

    #[test]
    fn flags_expand_home_normalise_guests_and_get_a_read_only_root() {
        let flags = [flag(MountFlag::Rw, "~/src:/work/"), flag(MountFlag::Tmpfs, "/tmp/./x/..")];
        let got = requests(&Filesystem::default(), "p", &flags, Some("/home/u")).unwrap();
        assert_eq!(
            summary(&got),
            [
                ("/".into(), MountFlag::Ro, Some("/".into())),
                ("/work".into(), MountFlag::Rw, Some("/home/u/src".into())),
                ("/tmp".into(), MountFlag::Tmpfs, None),
            ]
        );
        assert_eq!(got[1].origin, "--rw ~/src:/work/");
    }

    #[test]
    fn later_entries_win_and_flags_win_over_the_policy() {
        let fs = Filesystem { overlay: vec!["/".into()], hide: vec!["~/.ssh".into()], ..Default::default() };
        let flags = [
            flag(MountFlag::Ro, "/srv/a:/data"),
            flag(MountFlag::Rw, "~/.ssh"),
            flag(MountFlag::Overlay, "/srv/b:/data"),
        ];
        let got = requests(&fs, "built-in policy x", &flags, Some("/home/u")).unwrap();
        assert_eq!(
            summary(&got),
            [
                ("/".into(), MountFlag::Overlay, Some("/".into())),
                ("/home/u/.ssh".into(), MountFlag::Rw, Some("/home/u/.ssh".into())),
                ("/data".into(), MountFlag::Overlay, Some("/srv/b".into())),
            ]
        );
        assert_eq!(got[0].origin, "built-in policy x: at $.filesystem.overlay[0]");
    }

    #[test]
    fn a_policy_never_hides_the_users_home_but_a_flag_does() {
        let fs =
            Filesystem { hide: vec!["/root".into(), "~/.ssh".into(), "/home".into()], ..Default::default() };
        let guests = |home: &str, flags: &[ViewFlag]| -> Vec<String> {
            let got = requests(&fs, "p", flags, Some(home)).unwrap();
            got.into_iter().filter(|r| r.kind == MountFlag::Hide).map(|r| r.guest).collect()
        };
        assert_eq!(guests("/root", &[]), ["/root/.ssh", "/home"]);
        assert_eq!(guests("/home/u", &[]), ["/root", "/home/u/.ssh"]);
        assert_eq!(guests("/root", &[flag(MountFlag::Hide, "~")]), ["/root/.ssh", "/home", "/root"]);
    }

    #[test]
    fn bad_flags_and_a_missing_home_are_one_line_errors() {
        let err = requests(&Filesystem::default(), "p", &[flag(MountFlag::Ro, "data")], None).unwrap_err();
        assert_eq!(
            err,
            r#"--ro data: the path "data" is relative (the host part); write it from the root, such as "/srv/data", or from your home, such as "~/data""#
        );
        let err =
            requests(&Filesystem::default(), "p", &[flag(MountFlag::Hide, "~/.ssh")], None).unwrap_err();
        assert!(err.starts_with("--hide ~/.ssh: cannot expand ~: HOME is not set"), "{err}");
        let err = requests(&Filesystem::default(), "p", &[flag(MountFlag::Hide, "/.")], None).unwrap_err();
        assert_eq!(err, "--hide /.: the root cannot be hidden; hide what is in it instead");
        let err = guest_cwd(&Filesystem::default(), "p", Some("src"), None).unwrap_err();
        assert!(err.starts_with(r#"--cwd src: the path "src" is relative"#), "{err}");
    }

    #[test]
    fn cwd_flag_wins_over_the_policy() {
        let fs = Filesystem { cwd: Some("~/p".into()), ..Default::default() };
        assert_eq!(
            guest_cwd(&fs, "policy x.json", None, Some("/h")).unwrap(),
            Some(("/h/p".into(), "policy x.json: at $.filesystem.cwd".into()))
        );
        assert_eq!(guest_cwd(&fs, "p", Some("/w/"), None).unwrap().unwrap().0, "/w");
        assert_eq!(guest_cwd(&Filesystem::default(), "p", None, None).unwrap(), None);
    }

    #[test]
    fn covers_is_about_whole_components() {
        assert!(covers("/", "/anything"));
        assert!(covers("/root", "/root"));
        assert!(covers("/home", "/home/u"));
        assert!(!covers("/home/u", "/home/user"));
        assert!(!covers("/home/u", "/home"));
    }
}
