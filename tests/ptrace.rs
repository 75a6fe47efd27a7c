//! The strict backend (`--backend ptrace`) against the in-process one: each scenario runs the
//! same program under both and expects the same exit status and output. The in-process backend
//! is the reference here, as the host is for it elsewhere.
//!
//! The rest of the suite can run under the ptrace backend with `CLOISTER_TEST_BACKEND=ptrace
//! ./tests/run` (see docs/architecture.md, Backends).

use cloister_tests::{compile_c, temp_dir, Mode, Outcome, PYTHON3, VIRTUAL_HOSTNAME};

/// Runs `program args` with `options` under both backends; returns (inproc, ptrace) after
/// checking that they agree.
fn differential(options: &[&str], program: &str, args: &[&str]) -> (Outcome, Outcome) {
    let run = |backend: &str| {
        let mut inv = Mode::Cloister.command(program).backend(backend).args(args);
        for o in options {
            inv = inv.cloister_arg(o);
        }
        inv.output()
    };
    let (inproc, ptrace) = (run("inproc"), run("ptrace"));
    assert_eq!(inproc.code(), ptrace.code(), "exit statuses differ:\n{inproc:?}\n{ptrace:?}");
    assert_eq!(inproc.stdout, ptrace.stdout, "outputs differ:\n{inproc:?}\n{ptrace:?}");
    (inproc, ptrace)
}

#[test]
fn echo() {
    let (_, p) = differential(&[], "echo", &["hello", "world"]);
    assert_eq!(p.stdout, "hello world\n");
}

#[test]
fn shell_pipelines_and_exit_status() {
    let (_, p) = differential(&[], "sh", &["-c", "printf 'b\\na\\n' | sort | tr a-z A-Z; exit 7"]);
    assert_eq!(p.code(), 7);
    assert_eq!(p.stdout, "A\nB\n");
}

#[test]
fn death_by_signal_is_128_plus_n() {
    let (_, p) = differential(&[], "sh", &["-c", "kill -TERM $$"]);
    assert_eq!(p.code(), 128 + 15);
}

#[test]
fn python_stat_listdir_open() {
    let script = "import os\n\
                  st = os.stat('/etc/passwd'); print(st.st_size, st.st_mode, st.st_ino)\n\
                  print(sorted(os.listdir('/etc'))[:20])\n\
                  print(len(open('/etc/passwd').read()))\n\
                  print(os.path.exists('/no/such/file'))";
    let (_, p) = differential(&["--overlay", "/"], PYTHON3, &["-c", script]);
    assert!(p.stdout.ends_with("False\n"), "{p:?}");
}

#[test]
fn uname_and_hostname_under_hostname() {
    let (_, p) = differential(&["--hostname", VIRTUAL_HOSTNAME], "sh", &["-c", "uname -n; hostname"]);
    assert_eq!(p.stdout, format!("{VIRTUAL_HOSTNAME}\n{VIRTUAL_HOSTNAME}\n"));
}

#[test]
fn c_program_forks_and_execs() {
    let exe = compile_c("forks", &[]);
    let exe = exe.to_str().unwrap();
    let (_, p) = differential(&["--hostname", VIRTUAL_HOSTNAME], exe, &[VIRTUAL_HOSTNAME]);
    assert!(p.stdout.contains("fork=ok"), "{p:?}");
    assert!(!p.stdout.contains("=fail"), "{p:?}");
}

#[test]
fn threads_see_the_virtual_hostname() {
    let exe = compile_c("threads", &["-pthread"]);
    let (_, p) = differential(&["--hostname", VIRTUAL_HOSTNAME], exe.to_str().unwrap(), &[VIRTUAL_HOSTNAME]);
    assert!(p.success().code() == 0);
}

#[test]
fn overlay_write_and_change_report() {
    let script =
        "echo changed > /etc/cloister-ptrace-test; cat /etc/cloister-ptrace-test; rm -f /etc/hostname; \
                  ls /etc/hostname 2>/dev/null || echo gone";
    let (i, p) = differential(&["--overlay", "/"], "sh", &["-c", script]);
    assert_eq!(p.stdout, "changed\ngone\n");
    assert!(p.stderr.contains("1 created, 0 modified, 1 deleted"), "{p:?}");
    assert_eq!(i.stderr, p.stderr);
    assert!(!std::path::Path::new("/etc/cloister-ptrace-test").exists());
}

#[test]
fn hidden_file_stays_hidden() {
    let dir = temp_dir("ptrace-hidden");
    let secret = dir.join("secret");
    std::fs::write(&secret, "s3cret").unwrap();
    let hide = format!("--hide={}", secret.display());
    // The view shows a hidden file as an empty one.
    let script = format!("cat {0}; wc -c < {0}", secret.display());
    let (_, p) = differential(&["--overlay", "/", &hide], "sh", &["-c", &script]);
    assert_eq!(p.stdout, "0\n");
}

#[test]
fn reproducible_time_and_pids_agree() {
    let script = "date; echo $$; python3 -c 'import os, time; print(int(time.time()), os.getpid())'";
    let (_, p) = differential(&["--reproducible"], "sh", &["-c", script]);
    assert!(p.stdout.starts_with("Sat Jan  1 00:00:00 UTC 2000\n"), "{p:?}");
}

#[test]
fn seeded_randomness_agrees() {
    let (_, p) = differential(&["--seed", "7"], PYTHON3, &["-c", "import os; print(os.urandom(8).hex())"]);
    assert_eq!(p.stdout.len(), 17);
}

/// Each process's random stream follows its place in the tree of forks, vforks and execs, as
/// the in-process kernel numbers them.
#[test]
fn seeded_randomness_agrees_across_forks_and_execs() {
    let py = "python3 -c 'import os; print(os.urandom(4).hex())'";
    let script = format!("{py}; {py}; ({py}); exec {py}");
    let (_, p) = differential(&["--seed", "7"], "sh", &["-c", &script]);
    assert_eq!(p.stdout.lines().count(), 4);
}

/// The `/proc` files the kernel serves (as a memfd the tracee makes and the supervisor fills).
#[test]
fn served_proc_files() {
    let script = "cat /proc/sys/kernel/hostname; cat /proc/sys/kernel/osrelease; readlink /proc/self/exe";
    let (_, p) = differential(&["--reproducible"], "sh", &["-c", script]);
    assert!(p.stdout.starts_with("cloister\n"), "{p:?}");
}

/// What the kernel makes itself (an overlay's directories) gets the program's umask, and the
/// program's working directory follows its `cd`, though the kernel runs in the supervisor.
#[test]
fn umask_and_working_directory_are_the_programs() {
    let script = "umask 002; mkdir -p /etc/cl-a/b; stat -c %a /etc/cl-a /etc/cl-a/b; umask 077; \
                  cd /etc/cl-a && touch f && stat -c %a f && pwd && ls";
    let (_, p) = differential(&["--overlay", "/"], "sh", &["-c", script]);
    assert_eq!(p.stdout, "775\n775\n600\n/etc/cl-a\nb\nf\n");
}

/// A program the sandbox built in the overlay runs (the host would not find it in the
/// sandbox's mount namespace by itself), and `readlink /proc/self` is the sandbox's pid.
#[test]
fn a_program_made_in_the_overlay_runs() {
    let script = "cp /bin/true /etc/cl-true && /etc/cl-true && echo ran; \
                  printf '#!/bin/sh\\necho script\\n' > /etc/cl-s && chmod +x /etc/cl-s && /etc/cl-s; \
                  cd /etc && ./cl-true && ./cl-s";
    let (_, p) = differential(&["--overlay", "/", "--reproducible"], "sh", &["-c", script]);
    assert_eq!(p.stdout, "ran\nscript\nscript\n");
    let (_, p) =
        differential(&["--reproducible"], PYTHON3, &["-c", "import os; print(os.readlink('/proc/self'))"]);
    assert_eq!(p.stdout, "2\n");
}

/// `--trace` under ptrace: the supervisor writes the records the runtime would.
#[test]
fn trace_records_redirected_calls() {
    let file = temp_dir("ptrace-trace").join("trace.json");
    let trace = format!("--trace={}", file.display());
    let (_, p) = differential(&["--hostname", VIRTUAL_HOSTNAME, &trace], "uname", &["-n"]);
    assert_eq!(p.stdout, format!("{VIRTUAL_HOSTNAME}\n"));
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.lines().any(|l| l.contains("\"syscall\":\"uname\"") && l.contains("\"result\":0")),
        "{text}"
    );
}
