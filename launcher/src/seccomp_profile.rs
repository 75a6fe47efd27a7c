//! `--seccomp-profile FILE`: a Docker or OCI seccomp profile (the JSON `docker run
//! --security-opt seccomp=FILE` and an OCI runtime's `linux.seccomp` take) as one more layer of
//! the floor, installed with it before the runtime starts.
//!
//! The profile says an action for every system call: the action of the rules that name it and
//! whose argument conditions hold, else `defaultAction`. A seccomp program returns one action,
//! so the profile becomes one program per action, stacked: the *default* program allows every
//! call a rule of any action would take (under that rule's conditions) and answers the rest
//! with `defaultAction`; each other action's program answers its rules' calls with that action
//! and allows the rest. The kernel keeps the strictest answer of the stacked programs, so a
//! call a rule denies is denied even where another rule allows it, as libseccomp decides.
//!
//! What is read: `defaultAction`, `defaultErrnoRet`, and `syscalls` entries (`names` or `name`,
//! `action`, `errnoRet`, `args` with `index`, `value`, `valueTwo` and `op`). An entry whose
//! `includes` asks for capabilities or for an architecture other than x86_64 is left out (the
//! sandbox is granted no capabilities by a profile); `excludes`, `architectures`, `flags` and
//! `listenerPath` are ignored. `SCMP_ACT_TRACE` and `SCMP_ACT_NOTIFY` have no tracer or
//! listener here and are refused with a clear error.
//!
//! The layer applies to the runtime too, which runs in the program's process: a profile that
//! denies what cloister-rt needs (`openat2`, `statx`, `memfd_create`, ...) makes the program's
//! calls fail where the view serves them.

use crate::failure::Failure;
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
    TargetArch,
};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    default_action: String,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    syscalls: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    #[serde(default)]
    names: Vec<String>,
    #[serde(default)]
    name: Option<String>,
    action: String,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Vec<Arg>,
    #[serde(default)]
    includes: Option<Filter>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Arg {
    index: u8,
    value: u64,
    #[serde(default)]
    value_two: u64,
    op: String,
}

#[derive(Deserialize, Default)]
struct Filter {
    #[serde(default)]
    caps: Vec<String>,
    #[serde(default)]
    arches: Vec<String>,
}

/// The errno an `SCMP_ACT_ERRNO` without `errnoRet` returns, as runc does.
const EPERM: u32 = libc::EPERM as u32;

/// Reads `file` and compiles it into the programs to install (see the module's notes).
pub fn load(file: &Path) -> Result<Vec<BpfProgram>, Failure> {
    let shown = file.display();
    let text = std::fs::read_to_string(file)
        .map_err(|e| Failure::Setup(format!("--seccomp-profile {shown}: cannot read it: {e}")))?;
    let mut de = serde_json::Deserializer::from_str(&text);
    let profile: Profile = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        Failure::Setup(format!(
            "--seccomp-profile {shown}: at $.{}: {}; write a Docker or OCI seccomp profile (defaultAction, syscalls)",
            e.path(),
            e.inner()
        ))
    })?;
    compile(&profile).map_err(|e| Failure::Setup(format!("--seccomp-profile {shown}: {e}")))
}

/// The action a profile names, `errno` for `SCMP_ACT_ERRNO`.
fn action(name: &str, errno: Option<u32>) -> Result<SeccompAction, String> {
    Ok(match name {
        "SCMP_ACT_ALLOW" => SeccompAction::Allow,
        "SCMP_ACT_ERRNO" => SeccompAction::Errno(errno.unwrap_or(EPERM)),
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => SeccompAction::KillThread,
        "SCMP_ACT_KILL_PROCESS" => SeccompAction::KillProcess,
        "SCMP_ACT_TRAP" => SeccompAction::Trap,
        "SCMP_ACT_LOG" => SeccompAction::Log,
        "SCMP_ACT_TRACE" | "SCMP_ACT_NOTIFY" => {
            return Err(format!("the action {name} needs a tracer or a listener, which cloister does not run; use SCMP_ACT_ERRNO or SCMP_ACT_KILL_PROCESS"))
        }
        other => return Err(format!("unknown action {other:?}; use SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, SCMP_ACT_KILL_PROCESS, SCMP_ACT_TRAP or SCMP_ACT_LOG")),
    })
}

/// A profile's argument condition.
fn condition(arg: &Arg) -> Result<SeccompCondition, String> {
    let op = match arg.op.as_str() {
        "SCMP_CMP_EQ" => SeccompCmpOp::Eq,
        "SCMP_CMP_NE" => SeccompCmpOp::Ne,
        "SCMP_CMP_LT" => SeccompCmpOp::Lt,
        "SCMP_CMP_LE" => SeccompCmpOp::Le,
        "SCMP_CMP_GT" => SeccompCmpOp::Gt,
        "SCMP_CMP_GE" => SeccompCmpOp::Ge,
        // libseccomp's masked equality: (arg & value) == valueTwo.
        "SCMP_CMP_MASKED_EQ" => return cond(arg.index, SeccompCmpOp::MaskedEq(arg.value), arg.value_two),
        other => return Err(format!("unknown argument comparison {other:?}")),
    };
    cond(arg.index, op, arg.value)
}

fn cond(index: u8, op: SeccompCmpOp, value: u64) -> Result<SeccompCondition, String> {
    SeccompCondition::new(index, SeccompCmpArgLen::Qword, op, value).map_err(|e| e.to_string())
}

/// Whether `entry` applies here: no capabilities asked, and x86_64 if arches are named.
fn applies(entry: &Entry) -> bool {
    let Some(inc) = &entry.includes else { return true };
    inc.caps.is_empty() && (inc.arches.is_empty() || inc.arches.iter().any(|a| a == "amd64" || a == "x86_64"))
}

/// The numbers of `entry`'s system calls; names this architecture has not are skipped, as
/// libseccomp skips them.
fn numbers(entry: &Entry) -> Vec<i64> {
    entry
        .names
        .iter()
        .chain(entry.name.iter())
        .filter_map(|n| syscalls::Sysno::from_str(n).ok())
        .map(|s| i64::from(s.id()))
        .collect()
}

/// A key per action (and errno), so that each gets one program.
fn key(a: &SeccompAction) -> String {
    format!("{a:?}")
}

fn compile(profile: &Profile) -> Result<Vec<BpfProgram>, String> {
    let default = action(&profile.default_action, profile.default_errno_ret)
        .map_err(|e| format!("at $.defaultAction: {e}"))?;
    // Every call some rule takes, under its conditions: allowed by the default program.
    let mut taken: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    // Per action other than allow: the calls it answers.
    let mut by_action: BTreeMap<String, (SeccompAction, BTreeMap<i64, Vec<SeccompRule>>)> = BTreeMap::new();
    for (i, entry) in profile.syscalls.iter().enumerate() {
        if !applies(entry) {
            continue;
        }
        let act =
            action(&entry.action, entry.errno_ret).map_err(|e| format!("at $.syscalls[{i}].action: {e}"))?;
        let conds = entry
            .args
            .iter()
            .map(condition)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("at $.syscalls[{i}].args: {e}"))?;
        for nr in numbers(entry) {
            let rules = |conds: &Vec<SeccompCondition>| -> Result<Vec<SeccompRule>, String> {
                if conds.is_empty() {
                    Ok(Vec::new())
                } else {
                    Ok(vec![SeccompRule::new(conds.clone()).map_err(|e| e.to_string())?])
                }
            };
            merge(&mut taken, nr, rules(&conds)?);
            if act != SeccompAction::Allow {
                let slot = by_action.entry(key(&act)).or_insert_with(|| (act.clone(), BTreeMap::new()));
                merge(&mut slot.1, nr, rules(&conds)?);
            }
        }
    }
    let mut programs = Vec::new();
    if default != SeccompAction::Allow {
        programs.push(program(taken, default, SeccompAction::Allow)?);
    }
    // Also an action equal to the default: the default program lets its calls through.
    for (_, (act, rules)) in by_action {
        programs.push(program(rules, SeccompAction::Allow, act)?);
    }
    Ok(programs)
}

/// Adds `rules` for `nr`: an empty list means "always", which absorbs any conditions.
fn merge(map: &mut BTreeMap<i64, Vec<SeccompRule>>, nr: i64, rules: Vec<SeccompRule>) {
    match map.get_mut(&nr) {
        Some(existing) if existing.is_empty() => {}
        Some(_) if rules.is_empty() => {
            map.insert(nr, Vec::new());
        }
        Some(existing) => existing.extend(rules),
        None => {
            map.insert(nr, rules);
        }
    }
}

fn program(
    rules: BTreeMap<i64, Vec<SeccompRule>>,
    mismatch: SeccompAction,
    matched: SeccompAction,
) -> Result<BpfProgram, String> {
    let filter =
        SeccompFilter::new(rules, mismatch, matched, TargetArch::x86_64).map_err(|e| e.to_string())?;
    filter.try_into().map_err(|e: seccompiler::BackendError| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<BpfProgram>, String> {
        compile(&serde_json::from_str(text).unwrap())
    }

    #[test]
    fn a_profile_becomes_one_program_per_action() {
        let programs = parse(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 0, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]},
                {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["no_such_call"], "action": "SCMP_ACT_ALLOW"}
            ]}"#,
        )
        .unwrap();
        // The default's, and mkdir's errno 13.
        assert_eq!(programs.len(), 2);
        assert_eq!(parse(r#"{"defaultAction": "SCMP_ACT_ALLOW"}"#).unwrap().len(), 0);
    }

    #[test]
    fn what_cannot_be_run_here_is_an_error_naming_its_place() {
        let err = parse(r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]}"#)
            .unwrap_err();
        assert!(
            err.starts_with("at $.syscalls[0].action: the action SCMP_ACT_NOTIFY needs a tracer"),
            "{err}"
        );
        let err = parse(r#"{"defaultAction": "SCMP_ACT_NOPE"}"#).unwrap_err();
        assert!(err.starts_with("at $.defaultAction: unknown action"), "{err}");
    }
}
