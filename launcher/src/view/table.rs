//! The kernel's mount table, laid out in the state directory: host paths resolved
//! (`canonicalize`), overlay upper layers, tmpfs directories, hidden paths and the state
//! directory itself hidden from the program; and the host directory the program starts in.

pub use super::request::covers;
use super::request::{MountFlag, Request};
use super::state::State;
use crate::failure::Failure;
use kernel_host::config::{Mount, MountKind};
use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The filesystem view of one run.
#[derive(Debug)]
pub struct View {
    /// The kernel's mount table, sorted by guest path (a mount before those below it).
    pub mounts: Vec<Mount>,
    /// Where the program starts, on the host; `None` to start where cloister was started.
    pub host_cwd: Option<PathBuf>,
    /// The state directory behind the mounts.
    pub state: State,
}

/// Lays `requests` out in `state` and finds the host directory for the guest `cwd`
/// (with the origin of the request, for errors).
pub fn build(requests: &[Request], state: State, cwd: Option<(String, String)>) -> Result<View, Failure> {
    let mut mounts: Vec<Mount> = Vec::new();
    let mut hides: Vec<&Request> = Vec::new();
    let mut tmpfs = 0;
    for request in requests {
        let kind = match request.kind {
            MountFlag::Ro => MountKind::ReadOnly { host: resolve_host(request, &state)? },
            MountFlag::Rw => MountKind::ReadWrite { host: resolve_host(request, &state)? },
            MountFlag::Overlay => {
                let lower = resolve_host(request, &state)?;
                let upper = upper_for(&state, &request.guest);
                MountKind::Overlay { lower, upper: path_string(&upper)? }
            }
            MountFlag::Tmpfs => {
                let dir = state.tmp(tmpfs);
                tmpfs += 1;
                // What a fresh tmpfs looks like (mode=1777 is tmpfs's default).
                fs::DirBuilder::new().mode(0o1777).create(&dir).map_err(|e| io_fail(&dir, &e))?;
                fs::set_permissions(&dir, fs::Permissions::from_mode(0o1777))
                    .map_err(|e| io_fail(&dir, &e))?;
                MountKind::Tmpfs { host: path_string(&dir)? }
            }
            MountFlag::Hide => {
                hides.push(request);
                continue;
            }
        };
        mounts.push(Mount { guest: request.guest.clone(), kind });
    }
    sort(&mut mounts);
    make_uppers(&mounts, &state.upper())?;
    make_mount_points(&mounts)?;
    // Hidden paths are looked up in the view without them: what would the program find there?
    // Each gets a stand-in of its own, so that the host path of a descriptor or working
    // directory in one maps back to that one guest path. One that is not there yet becomes a
    // private place that starts missing: the host's, made during the run, never shows, and
    // what the program makes there (`~/.aws` of a tool it runs) stays in the sandbox.
    let mut hidden = Vec::new();
    for request in hides {
        if let Some(host) = host_path(&mounts, &request.guest) {
            let kind = match fs::metadata(&host) {
                Ok(meta) => hidden_at(&state.stand_in(hidden.len(), meta.is_dir())?)?,
                Err(_) => MountKind::Tmpfs { host: path_string(&state.absent_stand_in(hidden.len()))? },
            };
            hidden.push(Mount { guest: request.guest.clone(), kind });
        }
    }
    let state_hidden = hide_state(&mounts, &state, hidden.len())?;
    mounts.extend(hidden);
    for mount in state_hidden {
        if !mounts.iter().any(|m| m.guest == mount.guest) {
            mounts.push(mount);
        }
    }
    sort(&mut mounts);
    let host_cwd = match cwd {
        Some((guest, origin)) => Some(cwd_on_host(&mounts, &guest, &origin)?),
        None => None,
    };
    Ok(View { mounts, host_cwd, state })
}

/// The host path the program finds at `guest`, through the longest mount above it; `None`
/// inside a hidden mount. Overlays give their lower layer (what is there at the start).
pub fn host_path(mounts: &[Mount], guest: &str) -> Option<PathBuf> {
    let mount = mounts.iter().filter(|m| covers(&m.guest, guest)).max_by_key(|m| m.guest.len())?;
    let base = match &mount.kind {
        MountKind::ReadOnly { host } | MountKind::ReadWrite { host } | MountKind::Tmpfs { host } => host,
        MountKind::Overlay { lower, .. } => lower,
        MountKind::Hidden { .. } => return None,
    };
    Some(join_guest(Path::new(base), suffix(&mount.guest, guest)))
}

/// `guest` below `mount_guest`, without the leading `/` ("" for the mount point itself).
pub fn suffix<'a>(mount_guest: &str, guest: &'a str) -> &'a str {
    let rest = if mount_guest == "/" { guest } else { &guest[mount_guest.len().min(guest.len())..] };
    rest.trim_start_matches('/')
}

/// `base` joined with a guest suffix ("" gives `base`).
pub fn join_guest(base: &Path, suffix: impl AsRef<Path>) -> PathBuf {
    let suffix = suffix.as_ref();
    if suffix.as_os_str().is_empty() {
        base.to_path_buf()
    } else {
        base.join(suffix)
    }
}

/// The upper layer of an overlay at `guest`: `STATE/upper` + `guest`.
pub fn upper_for(state: &State, guest: &str) -> PathBuf {
    join_guest(&state.upper(), guest.trim_start_matches('/'))
}

/// Orders mounts by guest path, component by component, so that a mount comes before the
/// ones below it.
fn sort(mounts: &mut [Mount]) {
    mounts.sort_by(|a, b| a.guest.split('/').cmp(b.guest.split('/')));
}

/// Canonicalises a request's host path; a missing path is the user's error.
fn resolve_host(request: &Request, state: &State) -> Result<String, Failure> {
    let host = request.host.as_deref().unwrap_or("/");
    let resolved = fs::canonicalize(host).map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::NotFound => "does not exist; create it or remove the entry".to_owned(),
            _ => format!("cannot be resolved: {e}"),
        };
        Failure::Setup(format!("{}: the host path {host} {why}", request.origin))
    })?;
    if resolved.starts_with(state.dir()) {
        return Err(Failure::Setup(format!(
            "{}: the host path {host} lies in the sandbox's state directory {}; show another path",
            request.origin,
            state.dir().display()
        )));
    }
    path_string(&resolved)
}

/// Creates each overlay's upper directory. Directories on the way that the view shows (an
/// overlay at `/work` under an overlay at `/` puts `work/` in the upper tree of `/`) take the
/// mode of what the view has there, since overlayfs shows an upper directory's attributes, not
/// the lower one's. Modes are set last: a read-only directory must not stop its children.
fn make_uppers(mounts: &[Mount], upper_root: &Path) -> Result<(), Failure> {
    let mut modes: Vec<(PathBuf, u32)> = Vec::new();
    for mount in mounts {
        let MountKind::Overlay { lower, .. } = &mount.kind else { continue };
        let parts: Vec<&str> = mount.guest.split('/').filter(|c| !c.is_empty()).collect();
        if parts.is_empty() {
            modes.push((upper_root.to_path_buf(), dir_mode(Path::new(lower))));
            continue;
        }
        // A file overlay gets its copy from the kernel; only the parents are ours.
        let depth = if fs::metadata(lower).is_ok_and(|m| m.is_dir()) { parts.len() } else { parts.len() - 1 };
        let mut guest = String::new();
        let mut path = upper_root.to_path_buf();
        for (i, part) in parts[..depth].iter().enumerate() {
            guest.push('/');
            guest.push_str(part);
            path.push(part);
            if path.exists() {
                continue;
            }
            fs::DirBuilder::new().mode(0o700).create(&path).map_err(|e| io_fail(&path, &e))?;
            let like =
                if i + 1 == parts.len() { Some(PathBuf::from(lower)) } else { host_path(mounts, &guest) };
            modes.push((path.clone(), like.as_deref().map_or(0o755, dir_mode)));
        }
    }
    for (path, mode) in modes {
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).map_err(|e| io_fail(&path, &e))?;
    }
    Ok(())
}

/// Makes the directories on the way to each mount inside a private tree: a mount at
/// `/tmp/build/out` under a tmpfs `/tmp` needs `build/out` in the tmpfs for a walk to reach it,
/// as a mount point needs its directory. In an overlay whose lower tree lacks them, they go in
/// the upper layer.
fn make_mount_points(mounts: &[Mount]) -> Result<(), Failure> {
    for mount in mounts.iter().filter(|m| m.guest != "/") {
        let Some(parent) = mounts
            .iter()
            .filter(|p| p.guest != mount.guest && covers(&p.guest, &mount.guest))
            .max_by_key(|p| p.guest.len())
        else {
            continue;
        };
        let rest = suffix(&parent.guest, &mount.guest);
        let base = match &parent.kind {
            MountKind::Tmpfs { host } => PathBuf::from(host),
            MountKind::Overlay { lower, upper } if !join_guest(Path::new(lower), rest).exists() => {
                PathBuf::from(upper)
            }
            _ => continue,
        };
        let shown = match &mount.kind {
            MountKind::ReadOnly { host } | MountKind::ReadWrite { host } | MountKind::Hidden { host } => host,
            MountKind::Overlay { lower, .. } => lower,
            MountKind::Tmpfs { host } => host,
        };
        let mut dir = join_guest(&base, rest);
        // A file mount needs only the directories above it.
        if !Path::new(shown).is_dir() && !dir.pop() {
            continue;
        }
        fs::DirBuilder::new().recursive(true).mode(0o755).create(&dir).map_err(|e| io_fail(&dir, &e))?;
    }
    Ok(())
}

/// The permission bits of the directory at `like`, or 0755 when it is none.
fn dir_mode(like: &Path) -> u32 {
    fs::metadata(like).ok().filter(|m| m.is_dir()).map_or(0o755, |m| m.permissions().mode() & 0o7777)
}

/// Hidden mounts for the state directory, at each guest path where a host-backed mount would
/// show it, unless a deeper mount already decides what is there (a tmpfs `/tmp` over a state
/// directory in `/tmp`).
fn hide_state(mounts: &[Mount], state: &State, first_stand_in: usize) -> Result<Vec<Mount>, Failure> {
    let mut out = Vec::new();
    for mount in mounts {
        let host = match &mount.kind {
            MountKind::ReadOnly { host } | MountKind::ReadWrite { host } => host,
            MountKind::Overlay { lower, .. } => lower,
            MountKind::Tmpfs { .. } | MountKind::Hidden { .. } => continue,
        };
        let Ok(rest) = state.dir().strip_prefix(host) else { continue };
        let Some(rest) = rest.to_str() else { continue };
        let guest = policies::normalize_guest(&format!("{}/{rest}", mount.guest));
        let owner = mounts.iter().filter(|m| covers(&m.guest, &guest)).max_by_key(|m| m.guest.len());
        if owner.is_some_and(|o| o.guest == mount.guest) {
            let stand_in = state.stand_in(first_stand_in + out.len(), true)?;
            out.push(Mount { guest, kind: hidden_at(&stand_in)? });
        }
    }
    Ok(out)
}

/// The host directory of the guest `cwd` (`origin` names who asked): it must exist and be a
/// directory in the view; without mounts, the guest path is the host path.
pub fn cwd_on_host(mounts: &[Mount], guest: &str, origin: &str) -> Result<PathBuf, Failure> {
    if mounts.is_empty() {
        return check_dir(PathBuf::from(guest), guest, origin);
    }
    match host_path(mounts, guest) {
        Some(host) => check_dir(host, guest, origin),
        None => Err(Failure::Setup(format!("{origin}: {guest} is hidden in the view; start somewhere else"))),
    }
}

fn check_dir(host: PathBuf, guest: &str, origin: &str) -> Result<PathBuf, Failure> {
    if fs::metadata(&host).is_ok_and(|m| m.is_dir()) {
        return Ok(host);
    }
    let where_ =
        if host.as_os_str() == guest { String::new() } else { format!(" (on the host {})", host.display()) };
    Err(Failure::Setup(format!("{origin}: {guest}{where_} is not a directory; give a directory that exists")))
}

fn hidden_at(stand_in: &Path) -> Result<MountKind, Failure> {
    Ok(MountKind::Hidden { host: path_string(stand_in)? })
}

fn path_string(path: &Path) -> Result<String, Failure> {
    path.to_str()
        .map(str::to_owned)
        .ok_or_else(|| Failure::Setup(format!("{}: the view takes only UTF-8 paths", path.display())))
}

fn io_fail(path: &Path, e: &std::io::Error) -> Failure {
    Failure::Setup(format!("cannot create {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cloister-table-test-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::canonicalize(dir).unwrap()
    }

    fn request(kind: MountFlag, guest: &str, host: Option<&Path>) -> Request {
        let host = host.map(|h| h.to_str().unwrap().to_owned());
        Request { guest: guest.into(), kind, host, origin: format!("--{} {guest}", kind.key()) }
    }

    fn kinds(view: &View) -> Vec<(&str, &str)> {
        view.mounts
            .iter()
            .map(|m| {
                let kind = match m.kind {
                    MountKind::ReadOnly { .. } => "ro",
                    MountKind::ReadWrite { .. } => "rw",
                    MountKind::Overlay { .. } => "overlay",
                    MountKind::Tmpfs { .. } => "tmpfs",
                    MountKind::Hidden { .. } => "hidden",
                };
                (m.guest.as_str(), kind)
            })
            .collect()
    }

    #[test]
    fn mounts_are_laid_out_in_the_state_directory() {
        let t = scratch("layout");
        let lower = t.join("lower");
        fs::create_dir_all(lower.join("d")).unwrap();
        fs::set_permissions(lower.join("d"), fs::Permissions::from_mode(0o750)).unwrap();
        fs::write(lower.join("a"), "a").unwrap();
        let state = State::create(Some(&t.join("state"))).unwrap();
        let requests = [
            request(MountFlag::Overlay, "/", Some(&lower)),
            request(MountFlag::Tmpfs, "/tmp", None),
            request(MountFlag::Hide, "/d", None),
            request(MountFlag::Hide, "/a", None),
            request(MountFlag::Hide, "/missing", None),
            request(MountFlag::Ro, "/file", Some(&lower.join("a"))),
            request(MountFlag::Overlay, "/work/d", Some(&lower.join("d"))),
        ];
        let view = build(&requests, state, Some(("/work/d".into(), "--cwd /work/d".into()))).unwrap();
        let s = view.state.dir().to_path_buf();
        assert_eq!(
            kinds(&view),
            [
                ("/", "overlay"),
                ("/a", "hidden"),
                ("/d", "hidden"),
                ("/file", "ro"),
                ("/missing", "tmpfs"),
                ("/tmp", "tmpfs"),
                ("/work/d", "overlay")
            ]
        );
        let host = |i: usize| match &view.mounts[i].kind {
            MountKind::Overlay { upper, .. } => PathBuf::from(upper),
            MountKind::ReadOnly { host } | MountKind::Tmpfs { host } | MountKind::Hidden { host } => {
                PathBuf::from(host)
            }
            MountKind::ReadWrite { .. } => unreachable!(),
        };
        assert_eq!(host(0), s.join("upper"));
        // Hidden paths: each its own stand-in, of its own type.
        assert!(host(1).starts_with(s.join("hidden")) && host(1).is_file(), "{:?}", host(1));
        assert!(host(2).starts_with(s.join("hidden")) && host(2).is_dir(), "{:?}", host(2));
        assert_eq!(host(3), lower.join("a"));
        // A hidden path missing at the start: a private place, made only by the program.
        assert_eq!(host(4), s.join("hidden/2-absent"));
        assert!(!host(4).exists());
        assert_eq!(host(5), s.join("tmp/0"));
        assert_eq!(host(6), s.join("upper/work/d"));
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!((mode(&s.join("upper/work")), mode(&s.join("upper/work/d"))), (0o755, 0o750));
        assert_eq!(mode(&s.join("tmp/0")), 0o1777);
        assert_eq!(view.host_cwd.as_deref(), Some(lower.join("d").as_path()));

        let cwd = |guest: &str| cwd_on_host(&view.mounts, guest, "--cwd x").map_err(|e| e.to_string());
        assert_eq!(cwd("/tmp").unwrap(), s.join("tmp/0"));
        assert_eq!(cwd("/d").unwrap_err(), "--cwd x: /d is hidden in the view; start somewhere else");
        let err = cwd("/nope").unwrap_err();
        assert!(err.ends_with("/lower/nope) is not a directory; give a directory that exists"), "{err}");
        drop(view);
        fs::remove_dir_all(&t).unwrap();
    }

    #[test]
    fn the_state_directory_is_hidden_where_the_view_shows_it() {
        let t = scratch("hidden-state");
        fs::create_dir(t.join("sub")).unwrap();
        let state = State::create(Some(&t.join("state"))).unwrap();
        let requests = [
            request(MountFlag::Overlay, "/", Some(&t)),
            request(MountFlag::Ro, "/again", Some(&t)),
            // A tmpfs over where the state directory would show: nothing to hide there.
            request(MountFlag::Ro, "/t2", Some(&t)),
            request(MountFlag::Tmpfs, "/t2/state", None),
        ];
        let view = build(&requests, state, None).unwrap();
        assert_eq!(
            kinds(&view),
            [
                ("/", "overlay"),
                ("/again", "ro"),
                ("/again/state", "hidden"),
                ("/state", "hidden"),
                ("/t2", "ro"),
                ("/t2/state", "tmpfs")
            ]
        );
        drop(view);
        fs::remove_dir_all(&t).unwrap();
    }

    #[test]
    fn a_missing_host_path_names_its_flag_and_leaves_nothing() {
        let t = scratch("missing");
        let state = State::create(Some(&t.join("state"))).unwrap();
        let requests = [request(MountFlag::Ro, "/x", Some(&t.join("nope")))];
        let err = build(&requests, state, None).unwrap_err().to_string();
        let left = t.join("state").exists();
        fs::remove_dir_all(&t).unwrap();
        assert!(err.starts_with("--ro /x: the host path "), "{err}");
        assert!(err.ends_with("/nope does not exist; create it or remove the entry"), "{err}");
        assert!(!left, "the state directory was left behind");
    }
}
