//! The kinds of executables cloister must run unmodified — C programs linked dynamic,
//! `-static`, `-static-pie` and `-no-pie`, a program without libc that makes raw `syscall`
//! instructions, `#!` scripts and nested interpreters — and what a program can learn about its
//! own image: `/proc/self/exe` (readlink, stat and open), `AT_EXECFN`, `argv[0]`,
//! `/proc/self/cmdline` and a program break that starts after its own image (cloister-rt is what
//! the host kernel actually executed).

use std::fs;
use std::path::{Path, PathBuf};

use cloister_tests::{
    assert_clock, both_modes, cloister_bin, compile_c, gcc_build, inproc, inproc_only, is_hex, now_unix,
    programs_dir, temp_dir, write_file, Mode, C_FLAG_SETS, C_PROGRAMS, PYTHON3, RAW_C_FLAGS,
    VIRTUAL_HOSTNAME,
};

const HOST: &str = VIRTUAL_HOSTNAME;

fn s(path: &Path) -> &str {
    path.to_str().expect("scratch paths are UTF-8")
}

fn link_flags(link: &str) -> &'static [&'static str] {
    C_FLAG_SETS
        .iter()
        .find(|(name, _)| *name == link)
        .map(|(_, flags)| *flags)
        .unwrap_or_else(|| panic!("no link mode {link}"))
}

/// Every C program in `tests/programs` builds in every link mode (no cloister involved): a
/// broken toolchain shows up here rather than as a mysterious failure elsewhere.
#[test]
fn every_c_program_builds() {
    let mut listed: Vec<&str> = C_PROGRAMS.iter().map(|(name, _)| *name).collect();
    listed.sort_unstable();
    let mut found: Vec<String> = fs::read_dir(programs_dir())
        .expect("read tests/programs")
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            Some(name.strip_suffix(".c")?.to_owned())
        })
        .collect();
    found.sort_unstable();
    assert_eq!(found, listed, "C_PROGRAMS must list every tests/programs/*.c");
    for (name, flags) in C_PROGRAMS {
        if *flags == RAW_C_FLAGS {
            compile_c(name, flags);
            continue;
        }
        for (_, link) in C_FLAG_SETS {
            let mut all = flags.to_vec();
            all.extend_from_slice(link);
            compile_c(name, &all);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// C programs in every link mode

fn c_hello(mode: Mode, link: &str) {
    let exe = compile_c("hello", link_flags(link));
    let out = mode.command(&exe).args(["a", "b c"]).hostname(HOST).output();
    out.success();
    let host = mode.hostname(HOST);
    assert_eq!(
        out.stdout,
        format!(
            "hello\narg1=a\narg2=b c\nuname={host}\ngethostname={host}\nsysname=Linux\n\
             machine=x86_64\n"
        ),
        "\n{out}"
    );
}

fn c_hello_dynamic(mode: Mode) {
    c_hello(mode, "dynamic");
}

fn c_hello_static(mode: Mode) {
    c_hello(mode, "static");
}

fn c_hello_static_pie(mode: Mode) {
    c_hello(mode, "static-pie");
}

fn c_hello_no_pie(mode: Mode) {
    c_hello(mode, "no-pie");
}

/// A thread with a small signal stack of its own (8 KiB, as Rust's threads have) still gets
/// every redirected call served: the runtime's handler runs on that stack and must fit.
fn small_signal_stack(mode: Mode) {
    let exe = compile_c("smallstack", &[]);
    let dir = temp_dir("smallstack");
    let trace = dir.join("trace.json");
    let out = mode.command(&exe).hostname(HOST).seed(3).time_offset(3600).trace(&trace).output();
    out.success();
    assert_eq!(out.field("uname"), mode.hostname(HOST), "\n{out}");
    for key in ["exe", "spawn"] {
        assert_eq!(out.field(key), "1", "{key}\n{out}");
    }
    assert!(out.stdout.contains("spawned=yes\n") && out.stdout.ends_with("exec=yes\n"), "\n{out}");
}

/// `fexecve` of a close-on-exec descriptor runs the program the descriptor named.
fn fexecve_of_a_cloexec_descriptor(mode: Mode) {
    let exe = compile_c("fexecve", &[]);
    let out = mode.command(&exe).output();
    out.success();
    assert_eq!(out.stdout, "fexecve=ok\n", "\n{out}");
}

/// An `execve` the host refuses returns its errno, and the descriptors the runtime opened to
/// hand the program to the next image are closed again: none reaches the caller or its next
/// image.
fn failed_exec_leaves_no_descriptor(mode: Mode) {
    let exe = compile_c("execfail", &[]);
    let out = mode.command(&exe).output();
    out.success();
    for round in 0..3 {
        assert_eq!(out.field(&format!("round{round}_errno")), "E2BIG", "\n{out}");
    }
    let before = out.field("fds_before");
    assert_eq!(out.field("fds_after_failures"), before, "\n{out}");
    assert_eq!(out.field("fds_in_next_image"), before, "\n{out}");
}

/// `execve` from a vfork child on a small stack in its parent's frame (musl's `posix_spawn`),
/// from a `CLONE_VM` child and from a handler on an alternate stack runs the program and
/// leaves the caller's memory alone; a loader that is a FIFO fails with `EACCES` at once.
fn exec_from_borrowed_stacks(mode: Mode) {
    let exe = compile_c("execstacks", &[]);
    let out = mode.command(&exe).output();
    out.success();
    assert_eq!(out.field("vfork_frame_ok"), "1", "\n{out}");
    for key in ["vfork_status", "clonevm_status", "altstack_status"] {
        assert_eq!(out.field(key), "0", "{key}\n{out}");
    }
    assert_eq!(out.field("fifo_interp"), "EACCES", "\n{out}");
}

/// A raw `syscall` keeps its argument registers, even when the runtime rewrote the call.
fn argument_registers_survive_rewritten_calls(mode: Mode) {
    let exe = compile_c("regs", &[]);
    let out = mode.command(&exe).output();
    out.success();
    for key in ["openat_ok", "openat_regs_kept", "sigaction_ok", "sigaction_regs_kept"] {
        assert_eq!(out.field(key), "1", "{key}\n{out}");
    }
}

/// A hot call site in libc's shape (`mov eax, NR; syscall`) is patched to enter the runtime
/// without a trap, and keeps every register a system call keeps: under threads racing the
/// patch, signal handlers calling it (on the thread's stack and on an alternate one) and after
/// a fork. A patched `rt_sigprocmask` delivers the signal it unblocks before it returns.
fn hot_call_sites_are_patched_and_keep_registers(mode: Mode) {
    let exe = compile_c("patched", &["-pthread"]);
    // Without a view the filter traps `newfstatat` only when it follows a path: the patched
    // site must still send a descriptor's calls to the host and serve /proc/self/exe.
    let plain = mode.command(&exe).policy("default").output();
    plain.success();
    for key in ["at_fd_ok", "at_exe_ok", "results_ok", "regs_kept"] {
        assert_eq!(plain.field(key), "1", "{key} (--policy default)\n{plain}");
    }
    let out = mode.command(&exe).output();
    out.success();
    // Only cloister-rt patches call sites: under ptrace they stay `syscall` instructions that
    // stop the program, and must keep its registers all the same.
    let patched = if mode.is_cloister() && inproc() { "1" } else { "0" };
    assert_eq!(out.field("patched"), patched, "\n{out}");
    assert_eq!(out.field("mask_patched"), patched, "\n{out}");
    assert_eq!(out.field("cross_patched"), patched, "\n{out}");
    assert_eq!(out.field("at_patched"), patched, "\n{out}");
    assert_eq!(out.field("exec_patched"), patched, "\n{out}");
    // wait4 is trapped in reproducible mode only (for the virtual clock's timers).
    assert_eq!(out.field("wait_patched"), "0", "\n{out}");
    for key in [
        "results_ok",
        "regs_kept",
        "threads_ok",
        "signals_ok",
        "fork_ok",
        "mask_ok",
        "cross_ok",
        "at_fd_ok",
        "at_exe_ok",
        "exec_ok",
        "wait_ok",
    ] {
        assert_eq!(out.field(key), "1", "{key}\n{out}");
    }
    if mode.is_cloister() {
        let repro = mode.command(&exe).arg("spawns").cloister_arg("--reproducible").output();
        repro.success();
        for key in ["exec_patched", "wait_patched"] {
            assert_eq!(repro.field(key), patched, "{key} (--reproducible)\n{repro}");
        }
        for key in ["exec_ok", "wait_ok"] {
            assert_eq!(repro.field(key), "1", "{key} (--reproducible)\n{repro}");
        }
    }
}

/// The runtime's heap takes back what it frees: 300,000 `stat` calls through the view, each
/// allocating and freeing in the runtime, leave the program's resident memory where the first
/// 20,000 left it; so do 30,000 calls with a 319-byte path, which the runtime reads into a
/// `PATH_MAX` buffer and shrinks. (Freed blocks once went on a smaller class's list than the one
/// they were taken from, so every call's blocks were new memory: about 96 MiB more for the
/// short path, 120 MiB for the long one.)
#[test]
fn the_runtimes_heap_takes_back_what_it_frees() {
    let script = "import os\n\
                  def rss():\n\
                  \x20   return int(next(l for l in open('/proc/self/status') if l.startswith('VmRSS:')).split()[1])\n\
                  def grown(path, warm, calls):\n\
                  \x20   for _ in range(warm): os.stat(path)\n\
                  \x20   before = rss()\n\
                  \x20   for _ in range(calls): os.stat(path)\n\
                  \x20   return rss() - before\n\
                  long = '/usr/lib/' + './' * 150 + 'os-release'\n\
                  assert len(long) >= 256\n\
                  print(grown('/usr/lib/os-release', 20000, 300000), grown(long, 2000, 30000))\n";
    let out = Mode::Cloister.command(PYTHON3).args(["-c", script]).output();
    out.success();
    let grown: Vec<i64> = out.stdout.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    assert_eq!(grown.len(), 2, "no figures\n{out}");
    for (what, kib) in ["a short path", "a 319-byte path"].iter().zip(&grown) {
        assert!(*kib < 8 * 1024, "the resident memory grew by {kib} KiB over the calls with {what}\n{out}");
    }
}

/// No libc, no vDSO: raw `syscall` instructions for uname, getrandom and clock_gettime must
/// still be served by the policy.
fn raw_syscalls_without_libc(mode: Mode) {
    const OFFSET: i64 = 2 * 86_400;
    let exe = compile_c("rawsys", RAW_C_FLAGS);
    let run = |seed: u64| {
        let before = now_unix();
        let out = mode.command(&exe).hostname(HOST).time_offset(OFFSET).seed(seed).output();
        let after = now_unix();
        out.success();
        (out, before, after)
    };
    let (first, before, after) = run(11);
    assert_eq!(first.field("uname"), mode.hostname(HOST), "\n{first}");
    assert!(is_hex(first.field("random"), 16), "\n{first}");
    assert_clock(
        "raw clock_gettime(CLOCK_REALTIME)",
        first.int_field("time"),
        before,
        after,
        mode.offset(OFFSET),
    );
    let (second, _, _) = run(11);
    if mode.is_cloister() {
        assert_eq!(
            first.field("random"),
            second.field("random"),
            "the same seed gave different getrandom bytes"
        );
    } else {
        assert_ne!(first.field("random"), second.field("random"));
    }
}

/// A few everyday programs print exactly what they print natively.
fn everyday_programs_match_native(mode: Mode) {
    let cases: &[(&str, &[&str])] = &[
        (PYTHON3, &["-c", "print(42)"]),
        ("python3", &["-c", "import json, email, asyncio, http.client; print('imported')"]),
        ("bash", &["-c", "echo \"$((6 * 7)) ${BASH_VERSINFO[0]}\""]),
        ("sha256sum", &["/bin/true"]),
        ("ls", &["-l", "/usr/bin/env"]),
        ("sh", &["-c", "printf '%s\\n' c b a | sort | tr -d '\\n'"]),
    ];
    for (program, args) in cases {
        let native = Mode::Native.command(program).args(*args).output();
        native.success();
        let out = mode.command(program).args(*args).output();
        out.success();
        assert_eq!(out.stdout, native.stdout, "\n{out}");
        assert_eq!(out.stderr, native.stderr, "\n{out}");
    }
}

// ---------------------------------------------------------------------------------------------
// Scripts and interpreters

/// Writes an executable script in a fresh directory.
fn script(label: &str, name: &str, text: &str) -> PathBuf {
    let path = temp_dir(label).join(name);
    write_file(&path, text, 0o755);
    path
}

const PY_SCRIPT: &str = "#!/usr/bin/env python3\nimport socket, sys\n\
                         print(sys.argv[1:], socket.gethostname())\n";

fn shell_script(mode: Mode) {
    let path = script("sh-script", "script.sh", "#!/bin/sh -eu\necho \"script $# $1 $2\"\nuname -n\n");
    let out = mode.command(&path).args(["x", "y z"]).hostname(HOST).output();
    out.success();
    assert_eq!(out.stdout, format!("script 2 x y z\n{}\n", mode.hostname(HOST)), "\n{out}");
}

fn env_python_script(mode: Mode) {
    let path = script("py-script", "script.py", PY_SCRIPT);
    let out = mode.command(&path).arg("x").hostname(HOST).output();
    out.success();
    assert_eq!(out.stdout, format!("['x'] {}\n", mode.hostname(HOST)), "\n{out}");
}

/// Nested interpreters: a `#!/bin/sh` script runs another `#!/bin/sh` script, which runs a
/// `#!/usr/bin/env python3` script.
fn script_running_scripts(mode: Mode) {
    let py = script("nested", "inner.py", PY_SCRIPT);
    let middle = script("nested", "middle.sh", &format!("#!/bin/sh\necho middle\n{} from-middle\n", s(&py)));
    let outer = script("nested", "outer.sh", &format!("#!/bin/sh\necho outer\n{}\n", s(&middle)));
    let out = mode.command(&outer).hostname(HOST).output();
    out.success();
    assert_eq!(out.stdout, format!("outer\nmiddle\n['from-middle'] {}\n", mode.hostname(HOST)), "\n{out}");
}

fn script_found_on_path(mode: Mode) {
    let py = script("on-path", "cloister-test-script", PY_SCRIPT);
    let dir = py.parent().expect("parent");
    let out = mode
        .command("cloister-test-script")
        .arg("y")
        .env("PATH", format!("{}:{}", s(dir), cloister_tests::SYSTEM_PATH))
        .hostname(HOST)
        .output();
    out.success();
    assert_eq!(out.stdout, format!("['y'] {}\n", mode.hostname(HOST)), "\n{out}");
}

// ---------------------------------------------------------------------------------------------
// What a program learns about its own image

fn proc_self_exe_python(mode: Mode) {
    let code = "import os, sys; print(os.readlink('/proc/self/exe'), sys.executable)";
    let real = fs::canonicalize(PYTHON3).expect("canonicalize python3");
    for program in [PYTHON3, "python3"] {
        let native = Mode::Native.command(program).args(["-c", code]).output();
        native.success();
        assert_eq!(native.stdout, format!("{} {PYTHON3}\n", s(&real)));
        let out = mode.command(program).args(["-c", code]).output();
        out.success();
        assert_eq!(out.stdout, native.stdout, "\n{out}");
    }
}

fn self_exe(mode: Mode, link: &str) {
    let mut flags = link_flags(link).to_vec();
    if link == "static-pie" {
        flags.push("-DSTATIC_PIE");
    }
    let exe = compile_c("selfexe", &flags);
    let out = mode.command(&exe).args(["x", "y"]).output();
    out.success();
    let real = fs::canonicalize(&exe).expect("canonicalize");
    assert_eq!(out.field("exe"), s(&real), "readlink(/proc/self/exe)\n{out}");
    for check in
        ["exe_is_argv0", "stat_same_file", "open_same_file", "open_same_size", "open_is_elf", "brk_grows"]
    {
        assert_eq!(out.field(check), "1", "{check}\n{out}");
    }
    if link != "static-pie" {
        assert_eq!(out.field("brk_after_image"), "1", "\n{out}");
    }
    assert_eq!(out.field("execfn"), s(&exe), "AT_EXECFN\n{out}");
    assert_eq!(out.field("argv0"), s(&exe), "argv[0]\n{out}");
}

fn proc_self_exe_c_dynamic(mode: Mode) {
    self_exe(mode, "dynamic");
}

fn proc_self_exe_c_static(mode: Mode) {
    self_exe(mode, "static");
}

fn proc_self_exe_c_static_pie(mode: Mode) {
    self_exe(mode, "static-pie");
}

fn proc_self_exe_c_no_pie(mode: Mode) {
    self_exe(mode, "no-pie");
}

/// `/proc/self/cmdline` (what `ps` shows) names the program and its arguments, not cloister-rt.
fn proc_self_cmdline(mode: Mode) {
    let exe = compile_c("selfexe", &[]);
    let out = mode.command(&exe).args(["x", "y z"]).output();
    out.success();
    assert_eq!(out.field("cmdline"), format!("{} x y z", s(&exe)), "\n{out}");
}

/// The break starts a random number of pages above the program's image, as the
/// host kernel places it on x86_64 (up to 1 GiB): eight runs do not all put it at the same
/// distance.
fn brk_start_is_randomised(mode: Mode) {
    let exe = compile_c("selfexe", &[]);
    let gaps: Vec<i64> = (0..8)
        .map(|_| {
            let out = mode.command(&exe).output();
            out.success();
            out.field("brk_gap").parse().expect("brk_gap is a number")
        })
        .collect();
    assert!(gaps.iter().all(|g| (0..(1 << 30) + 4096).contains(g)), "{gaps:?}");
    assert!(gaps.iter().any(|g| *g != gaps[0]), "the break started at the same place in every run: {gaps:?}");
}

/// Every dynamic program's start runs the same few sites of `ld.so` once each. Once an image
/// has trapped at them, the next ones load a copy of `ld.so` from the sandbox's state
/// directory with those sites patched, and the page of stubs they jump to right after it;
/// under `--trace`, which records trapped calls, nothing is patched and `ld.so` is mapped
/// itself. Either way the page after `ld.so`'s image is kept, so that the mappings after it
/// land at the same places.
#[test]
fn interpreter_sites_are_patched_once_per_sandbox() {
    if inproc_only("cloister-rt patches call sites; the ptrace backend has none") {
        return;
    }
    let script = "set -e; for i in 1 2 3; do /bin/true; done; cat /proc/self/maps";
    let maps = |trace: Option<&Path>| {
        let invocation = Mode::Cloister.command("/bin/sh").args(["-c", script]);
        let out = match trace {
            Some(file) => invocation.trace(file),
            None => invocation,
        }
        .output();
        out.success();
        out.stdout.clone()
    };
    // The lines of the file `ld.so` is mapped from: (range, permissions, path).
    let interpreter = |maps: &str| -> Vec<(u64, u64, String, String)> {
        maps.lines()
            .filter(|l| l.contains("/ld-"))
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let (lo, hi) = f[0].split_once('-').expect("a range");
                let hex = |x: &str| u64::from_str_radix(x, 16).expect("hex");
                (hex(lo), hex(hi), f[1].to_owned(), f.last().expect("a path").to_string())
            })
            .collect()
    };
    let patched = maps(None);
    let lines = interpreter(&patched);
    let name =
        lines.first().map(|l| l.3.rsplit('/').next().unwrap_or_default().to_owned()).unwrap_or_default();
    assert!(
        name.strip_prefix("ld-").is_some_and(|h| is_hex(h, 8)),
        "ld.so is not mapped from a patched copy:\n{patched}"
    );
    let (_, end, perms, _) = lines.last().expect("a mapping").clone();
    assert_eq!(perms, "r-xp", "the stubs' page is the copy's last mapping:\n{patched}");
    assert!(lines.iter().all(|l| l.3 == lines[0].3 && l.0 < end), "\n{patched}");

    let trace = temp_dir("interp-trace").join("trace");
    let traced = maps(Some(&trace));
    let lines = interpreter(&traced);
    assert!(
        lines.iter().all(|l| l.3.ends_with("/ld-linux-x86-64.so.2")),
        "ld.so is patched under --trace:\n{traced}"
    );
}

/// A site patched in an interpreter's copy means what it meant: an interpreter of the test's
/// own (`tests/programs/interp/own_interp.c`) sets `eax` to `brk`'s number, then copies `rax` into `r8` before its
/// `syscall`, and checks `r8`; it execs its program again three times, so that the later images
/// run its patched copy.
#[test]
fn a_patched_interpreter_site_keeps_its_meaning() {
    let dir = temp_dir("own-interp");
    let interp = dir.join("interp");
    gcc_build(
        &programs_dir().join("interp").join("own_interp.c"),
        &interp,
        &["-nostdlib", "-static-pie", "-fno-stack-protector"],
    );
    let source = dir.join("prog.c");
    fs::write(&source, "void _start(void) {}\n").expect("write prog.c");
    let prog = dir.join("prog");
    let linker = format!("-Wl,--dynamic-linker={}", s(&interp));
    gcc_build(&source, &prog, &["-nostdlib", "-fno-stack-protector", &linker]);
    for mode in [Mode::Native, Mode::Cloister] {
        let out = mode.command(&prog).output();
        assert_eq!(out.code(), 0, "{mode:?}: 64 + what r8 held, or 3 for a failed exec\n{out}");
    }
}

/// A state directory on a `noexec` mount cannot hold a copy of `ld.so` the host will map
/// executable: programs still run, with `ld.so` itself mapped and nothing left of the copy in
/// their memory. (`/tmp` is `noexec` on many hosts.)
#[test]
fn interpreter_copies_on_a_noexec_mount_fall_back_to_the_interpreter() {
    if inproc_only("cloister-rt patches call sites; the ptrace backend has none") {
        return;
    }
    let dir = temp_dir("interp-noexec");
    let script = "set -e; for i in 1 2 3; do /bin/true; done; grep ld- /proc/self/maps; echo done";
    // A private mount namespace of the test's own, so that the mount goes with it.
    let out = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(format!(
            "mount -t tmpfs -o noexec tmpfs {dir} && TMPDIR={dir} {cloister} run -- /bin/sh -c '{script}'",
            dir = s(&dir),
            cloister = s(&cloister_bin()),
        ))
        .output()
        .expect("cannot start unshare");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{:?}\n{stdout}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.ends_with("done\n") && out.stderr.is_empty(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let maps: Vec<&str> = stdout.lines().filter(|l| l.contains("ld-")).collect();
    assert!(!maps.is_empty(), "{stdout}");
    assert!(maps.iter().all(|l| l.ends_with("/ld-linux-x86-64.so.2")), "{stdout}");
}

both_modes!(
    argument_registers_survive_rewritten_calls,
    hot_call_sites_are_patched_and_keep_registers,
    small_signal_stack,
    fexecve_of_a_cloexec_descriptor,
    failed_exec_leaves_no_descriptor,
    exec_from_borrowed_stacks,
    c_hello_dynamic,
    c_hello_static,
    c_hello_static_pie,
    c_hello_no_pie,
    raw_syscalls_without_libc,
    everyday_programs_match_native,
    shell_script,
    env_python_script,
    script_running_scripts,
    script_found_on_path,
    proc_self_exe_python,
    proc_self_exe_c_dynamic,
    proc_self_exe_c_static,
    proc_self_exe_c_static_pie,
    proc_self_exe_c_no_pie,
    proc_self_cmdline,
    brk_start_is_randomised,
);
