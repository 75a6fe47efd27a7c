//! The floor under the filesystem view: what stops a program that does not go through the
//! view at all. `gate_escape` jumps into the runtime's own `syscall` (which the redirect filter
//! lets through) to open files directly; under the default `untrusted` policy the host
//! kernel's Landlock rules must refuse it a host file to write and a hidden file to read.
//! Cloister-only: natively there is no runtime to jump into.
//!
//! Under `--backend ptrace` there is no runtime in the process and so no gate (the programs say
//! `gate=none`, [`assert_gate`]): they make the same calls with their own `syscall`, which the
//! tracer stops wherever it is. The files' calls are then served by the view (a hidden file is
//! not there, a write lands in the private overlay, checked absent from the host), and the
//! floor's calls meet the same floor, which the tracer passes them on to.

use cloister_tests::{assert_gate, compile_c, inproc, scratch_dir, temp_dir, Mode};
use std::fs;
use std::path::PathBuf;

/// `cloister-rt` beside the `cloister` the tests run.
fn runtime() -> PathBuf {
    cloister_tests::cloister_bin().with_file_name("cloister-rt")
}

#[test]
fn jumping_into_the_runtime_reaches_neither_host_files_nor_hidden_ones() {
    let exe = compile_c("gate_escape", &[]);
    let home = temp_dir("home");
    fs::create_dir_all(home.join(".ssh")).unwrap();
    fs::write(home.join(".ssh/id_ed25519"), "secret\n").unwrap();
    let target = scratch_dir().join("gate-escape-written");
    let _ = fs::remove_file(&target);
    let out = Mode::Cloister
        .command(&exe)
        .args([runtime(), target.clone(), home.join(".ssh/id_ed25519")])
        .env("HOME", &home)
        .output();
    out.success();
    assert_gate(&out);
    // Landlock says EACCES; where the sandbox has its own mount namespace (tests/mountns.rs),
    // the read-only host tree answers the write first, and the hidden file is not there at all.
    // Under ptrace the tracer serves both through the view: the write opens a file of the
    // private overlay, the hidden file is not there.
    let write = out.field("write");
    let writes: &[&str] = if inproc() { &["EACCES", "Read-only file system"] } else { &["opened"] };
    assert!(writes.contains(&write), "not the view's or the floor's answer to the write\n{out}");
    let reads: &[&str] = if inproc() { &["EACCES", "ENOENT"] } else { &["ENOENT"] };
    assert!(reads.contains(&out.field("read")), "a hidden file was opened\n{out}");
    assert!(!target.exists(), "the file reached the host\n{out}");
}

#[test]
fn the_default_policy_has_no_floor_to_stop_it() {
    // The control: without a view the same jump succeeds, so the test above tests the floor
    // (under ptrace: the view of `default` hides nothing and writes to the host).
    let exe = compile_c("gate_escape", &[]);
    let target = scratch_dir().join("gate-escape-default");
    let _ = fs::remove_file(&target);
    let readable = temp_dir("readable").join("file");
    fs::write(&readable, "x").unwrap();
    let out =
        Mode::Cloister.command(&exe).args([runtime(), target.clone(), readable]).policy("default").output();
    out.success();
    assert_gate(&out);
    assert_eq!((out.field("write"), out.field("read")), ("opened", "opened"), "\n{out}");
    assert!(target.exists(), "\n{out}");
    fs::remove_file(&target).unwrap();
}

#[test]
fn a_hidden_directory_that_holds_the_state_directory_stays_unreadable_through_the_gate() {
    // `--hide` of the state directory's parent gets no stand-in in the mount namespace (it
    // would hide the overlay from the runtime): Landlock must then still refuse reading it.
    // Under ptrace the raw call cannot skip the view, which hides the file (ENOENT).
    let exe = compile_c("gate_escape", &[]);
    let outer = temp_dir("hidden-outer");
    fs::write(outer.join("secret"), "secret\n").unwrap();
    let tmpdir = outer.join("tmp");
    fs::create_dir_all(&tmpdir).unwrap();
    let target = scratch_dir().join("gate-escape-hidden-outer");
    let _ = fs::remove_file(&target);
    let out = Mode::Cloister
        .command(&exe)
        .cloister_arg("--hide")
        .cloister_arg(&outer)
        .env("TMPDIR", &tmpdir)
        .args([runtime(), target.clone(), outer.join("secret")])
        .output();
    out.success();
    assert_gate(&out);
    let refused = if inproc() { "EACCES" } else { "ENOENT" };
    assert_eq!(out.field("read"), refused, "the hidden file was opened through the gate\n{out}");
    assert!(!target.exists(), "the file reached the host\n{out}");
}

/// The seccomp floor, the pid namespace and Landlock's scopes, each met with a raw system call
/// made through the runtime's own gate (past everything the in-process kernel does): every
/// attempt below must be refused under the default `untrusted` policy, and the host process the
/// program tries to trace, write into and kill must live on. Each entry names what stops it,
/// under both backends: under ptrace the raw calls are the program's own, and the floor is the
/// same one.
#[test]
fn the_floor_refuses_each_way_out_through_the_gate() {
    const REFUSED: &[(&str, &[&str], &str)] = &[
        ("io_uring_setup", &["ENOSYS"], "seccomp floor (io_uring absent)"),
        ("bpf", &["EPERM"], "seccomp floor"),
        ("perf_event_open", &["EPERM"], "seccomp floor"),
        ("keyctl", &["EPERM"], "seccomp floor"),
        ("add_key", &["EPERM"], "seccomp floor"),
        ("userfaultfd", &["EPERM"], "seccomp floor"),
        ("kexec_load", &["EPERM"], "seccomp floor"),
        ("init_module", &["EPERM"], "seccomp floor"),
        ("reboot", &["EPERM"], "seccomp floor"),
        ("swapon", &["EPERM"], "seccomp floor"),
        ("acct", &["EPERM"], "seccomp floor"),
        ("clock_settime", &["EPERM"], "seccomp floor"),
        ("mount", &["EPERM"], "seccomp floor"),
        ("umount2", &["EPERM"], "seccomp floor"),
        ("setns", &["EPERM"], "seccomp floor"),
        ("personality", &["EPERM"], "seccomp floor (ADDR_NO_RANDOMIZE)"),
        ("ptrace_attach", &["EPERM", "ESRCH"], "seccomp floor (ptrace)"),
        ("process_vm_writev", &["ESRCH", "EPERM"], "pid namespace (or Landlock's ptrace scope)"),
        ("kill_host", &["ESRCH", "EPERM"], "pid namespace (or Landlock's signal scope)"),
        ("socket_packet", &["EAFNOSUPPORT", "EPERM"], "network floor (--net none)"),
        ("socket_raw", &["EPERM", "EAFNOSUPPORT"], "network floor (--net none)"),
    ];
    let exe = compile_c("gate_floor", &[]);
    let scratch = temp_dir("gate-floor-scratch");
    let mut host = std::process::Command::new("sleep").arg("300").spawn().unwrap();
    let out = Mode::Cloister
        .command(&exe)
        .args([runtime(), PathBuf::from(host.id().to_string()), scratch.clone()])
        .output();
    let alive = host.try_wait().unwrap().is_none();
    let _ = host.kill();
    let _ = host.wait();
    out.success();
    assert_gate(&out);
    for (name, errnos, by) in REFUSED {
        let got = out.field(name);
        assert!(errnos.contains(&got), "{name} was not refused ({got}); {by} should stop it\n{out}");
    }
    assert!(alive, "the host process died\n{out}");
    assert_eq!(
        fs::read_dir(&scratch).unwrap().count(),
        0,
        "something was mounted or made in the scratch dir"
    );
}

/// `--seccomp-profile FILE` adds a Docker/OCI profile to the floor: its errno and kill rules
/// hold for the program (through its libc as through the gate), other calls go on, and a bad
/// profile is exit 125 naming the file and the JSON path.
#[test]
fn a_seccomp_profile_adds_its_rules_to_the_floor() {
    let dir = temp_dir("seccomp-profile");
    let profile = dir.join("profile.json");
    fs::write(
        &profile,
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["setpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
            {"names": ["sethostname"], "action": "SCMP_ACT_KILL_PROCESS"}
        ]}"#,
    )
    .unwrap();
    let out = Mode::Cloister
        .command("python3")
        .args([
            "-c",
            "import os\ntry:\n    os.setpriority(os.PRIO_PROCESS, 0, 5)\n    print('nice=done')\nexcept OSError as e:\n    print('nice=%d' % e.errno)\nprint('still=running')",
        ])
        .cloister_arg("--seccomp-profile")
        .cloister_arg(&profile)
        .output();
    out.success();
    assert_eq!((out.field("nice"), out.field("still")), ("13", "running"), "\n{out}");
    let out = Mode::Cloister
        .command("hostname")
        .arg("x")
        .cloister_arg("--seccomp-profile")
        .cloister_arg(&profile)
        .output();
    out.expect_code(128 + libc::SIGSYS);
    fs::write(&profile, r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_TRACE"}]}"#)
        .unwrap();
    let out =
        Mode::Cloister.command("true").cloister_arg("--seccomp-profile").cloister_arg(&profile).output();
    out.expect_code(125);
    assert!(out.stderr.contains("at $.syscalls[0].action: the action SCMP_ACT_TRACE"), "\n{out}");
    assert!(out.stderr.contains(&profile.display().to_string()), "\n{out}");
}
