//! Checks on values that parse but are not allowed.
//!
//! serde has already enforced every type (a seed is a `u64`, an offset an `i64`); this module
//! adds the limits that types cannot say:
//! - `identity.hostname`: 1 to [`MAX_HOSTNAME_LEN`] bytes of `A-Z a-z 0-9 . -`, not starting
//!   with `-` or `.` (see hostname(7); Linux's limit is `HOST_NAME_MAX`, 64);
//! - `time.offset_seconds`: at most [`MAX_OFFSET_SECONDS`] (100 years) either way;
//! - `time.epoch_seconds`: from 0 to [`MAX_EPOCH_SECONDS`] (the year 9999);
//! - `identity.cpus`: 1 to [`MAX_CPUS`];
//! - `network.address`: given with `wire:PATH` or `tap:IFNAME` and only with them;
//! - `network.allow`: only with `nat`;
//! - `filesystem.*`: every path absolute or under `~` (see [`crate::PathSpec`]), and no guest
//!   path named twice, which in a file is always a slip: which entry should win?
//! - `limits.*`: at least 1 (and the floors of [`crate::limits::check_limit`]): a limit of 0
//!   would stop every program before `main`, and leaving the key out is how to say "none".

use crate::error::PolicyError;
use crate::limits::check_limit;
use crate::path_spec::{normalize_guest, BindSpec, PathSpec};
use crate::schema::{Filesystem, Policy};

/// Longest host name a policy may set, in bytes (Linux's `HOST_NAME_MAX`).
pub const MAX_HOSTNAME_LEN: usize = 64;

/// Largest clock offset a policy may set, either way: 100 years of 365.25 days, in seconds.
pub const MAX_OFFSET_SECONDS: u64 = 3_155_760_000;

/// Latest virtual epoch a policy may set: 9999-12-31T23:59:59Z.
pub const MAX_EPOCH_SECONDS: i64 = 253_402_300_799;

/// Most processors a policy may show the program.
pub const MAX_CPUS: u32 = 1024;

/// Checks every value of `policy`; `origin` names the policy in the error.
pub(crate) fn validate(policy: &Policy, origin: &str) -> Result<(), PolicyError> {
    let invalid = |json_path: &str, message: String, fix: String| PolicyError::Invalid {
        origin: origin.to_owned(),
        json_path: json_path.to_owned(),
        message,
        fix,
    };
    if let Some(name) = &policy.identity.hostname {
        if let Err((message, fix)) = check_hostname(name) {
            return Err(invalid("$.identity.hostname", message, fix));
        }
    }
    if let Some(offset) = policy.time.offset_seconds {
        if offset.unsigned_abs() > MAX_OFFSET_SECONDS {
            return Err(invalid(
                "$.time.offset_seconds",
                format!("the offset {offset} seconds is more than 100 years"),
                format!("write a number between -{MAX_OFFSET_SECONDS} and {MAX_OFFSET_SECONDS}"),
            ));
        }
    }
    for (name, value) in policy.limits.keys() {
        if let Some(Err((message, fix))) = value.map(|v| check_limit(name, v)) {
            return Err(invalid(&format!("$.limits.{name}"), message, fix));
        }
    }
    let network = &policy.network;
    match (network.mode.takes_address(), network.address) {
        (true, None) => {
            return Err(invalid(
                "$.network",
                format!("the network mode \"{}\" needs the sandbox's address", network.mode),
                r#"add "address" with the sandbox's IPv4 address and prefix length, such as "10.9.0.2/24""#
                    .into(),
            ))
        }
        (false, Some(address)) => {
            return Err(invalid(
                "$.network.address",
                format!("the network mode \"{}\" has no address to set ({address})", network.mode),
                r#"remove "address", or write the mode "wire:PATH" or "tap:IFNAME""#.into(),
            ))
        }
        _ => {}
    }
    if !network.allow.is_empty() && !network.mode.takes_allow_list() {
        return Err(invalid(
            "$.network.allow",
            format!(
                "the network mode \"{}\" has no allow-list (only \"nat\" lets anything out)",
                network.mode
            ),
            r#"remove "allow", or write the mode "nat""#.into(),
        ));
    }
    validate_filesystem(&policy.filesystem)
        .map_err(|(json_path, message, fix)| invalid(&json_path, message, fix))
}

/// A filesystem error: the JSON path, what is wrong, and the fix.
type FsError = (String, String, String);

/// Checks the shape of every path of the `filesystem` section, and that no guest path appears
/// twice.
fn validate_filesystem(fs: &Filesystem) -> Result<(), FsError> {
    // (guest path as written, normalised; JSON path of its entry)
    let mut guests: Vec<(String, String)> = Vec::new();
    let mut note = |guest: &PathSpec, json_path: String| -> Result<(), FsError> {
        let key = guest_key(guest);
        if let Some((_, first)) = guests.iter().find(|(g, _)| *g == key) {
            let message = format!("the guest path {:?} is already given at {first}", guest.as_str());
            return Err((json_path, message, "keep one of the two entries".into()));
        }
        guests.push((key, json_path));
        Ok(())
    };
    for (key, entries) in [("ro", &fs.ro), ("rw", &fs.rw), ("overlay", &fs.overlay)] {
        for (i, entry) in entries.iter().enumerate() {
            let json_path = format!("$.filesystem.{key}[{i}]");
            let bind = BindSpec::parse(entry).map_err(|e| {
                let message = format!("in {entry:?}: {} (the {} part)", e.error, e.part);
                (json_path.clone(), message, e.error.fix().to_owned())
            })?;
            note(&bind.guest, json_path)?;
        }
    }
    for (key, entries) in [("tmpfs", &fs.tmpfs), ("hide", &fs.hide)] {
        for (i, entry) in entries.iter().enumerate() {
            let json_path = format!("$.filesystem.{key}[{i}]");
            let guest =
                PathSpec::parse(entry).map_err(|e| (json_path.clone(), e.to_string(), e.fix().to_owned()))?;
            note(&guest, json_path)?;
        }
    }
    if let Some(cwd) = &fs.cwd {
        PathSpec::parse(cwd).map_err(|e| ("$.filesystem.cwd".into(), e.to_string(), e.fix().to_owned()))?;
    }
    Ok(())
}

/// A guest path as written, normalised, so that `/a/` and `/a` (or `~/x/` and `~/x`) compare
/// equal; `~` stays unexpanded, the home being unknown here.
fn guest_key(guest: &PathSpec) -> String {
    match guest.as_str().strip_prefix('~') {
        Some(rest) => format!("~{}", normalize_guest(rest)),
        None => normalize_guest(guest.as_str()),
    }
}

/// What is wrong with a host name and how to fix it, or `Ok` when nothing is.
fn check_hostname(name: &str) -> Result<(), (String, String)> {
    let chars = || "use only letters, digits, '.' and '-', such as \"cloister\"".to_owned();
    if name.is_empty() {
        return Err(("the host name is empty".into(), chars()));
    }
    if name.len() > MAX_HOSTNAME_LEN {
        let message = format!("the host name is {} bytes long", name.len());
        return Err((message, format!("shorten it to at most {MAX_HOSTNAME_LEN} bytes")));
    }
    if let Some(bad) = name.chars().find(|&c| !(c.is_ascii_alphanumeric() || c == '.' || c == '-')) {
        return Err((format!("the host name {name:?} contains {bad:?}"), chars()));
    }
    if let Some(first @ ('-' | '.')) = name.chars().next() {
        let message = format!("the host name {name:?} starts with {first:?}");
        return Err((message, "start it with a letter or a digit".into()));
    }
    Ok(())
}
