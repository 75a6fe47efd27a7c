//! Checks on values that parse but are not allowed.
//!
//! serde has already enforced every type (a seed is a `u64`, an offset an `i64`); this module
//! adds the limits that types cannot say:
//! - `identity.hostname`: 1 to [`MAX_HOSTNAME_LEN`] bytes of `A-Z a-z 0-9 . -`, not starting
//!   with `-` or `.` (see hostname(7); Linux's limit is `HOST_NAME_MAX`, 64);
//! - `time.offset_seconds`: at most [`MAX_OFFSET_SECONDS`] (100 years) either way;
//! - `time.epoch_seconds`: from 0 to [`MAX_EPOCH_SECONDS`] (the year 9999);
//! - `identity.cpus`: 1 to [`MAX_CPUS`].

use crate::error::PolicyError;
use crate::schema::Policy;

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
    Ok(())
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
