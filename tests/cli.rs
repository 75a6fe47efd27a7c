//! The command line's contract: `cloister run` exits with the program's status, 128+N for a
//! death by signal N, 125 when cloister itself fails, 126 when the program cannot be executed
//! and 127 when it is not found, each failure with exactly one line on stderr naming the
//! program or file; PROGRAM is found on PATH like a shell finds it; arguments, environment,
//! working directory and standard streams reach the program unchanged. Then the `policy`
//! subcommands and how `run` treats a bad policy.

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};

use cloister_tests::{both_modes, cloister, elf, temp_dir, write_file, Mode, PYTHON3};

/// A script in a fresh directory: `name` with `text`, mode `mode`.
fn script(label: &str, name: &str, text: &str, mode: u32) -> PathBuf {
    let path = temp_dir(label).join(name);
    write_file(&path, text, mode);
    path
}

fn s(path: &Path) -> &str {
    path.to_str().expect("scratch paths are UTF-8")
}

// ---------------------------------------------------------------------------------------------
// Programs that run

fn true_succeeds_silently(mode: Mode) {
    let out = mode.command("/bin/true").output();
    out.success();
    assert!(out.stdout.is_empty() && out.stderr.is_empty(), "cloister printed something of its own\n{out}");
}

fn echo_gets_every_argument(mode: Mode) {
    let out = mode.command("echo").args(["hello", "--hostname", "x", "--", "two  words", ""]).output();
    out.success();
    assert_eq!(out.stdout, "hello --hostname x -- two  words \n", "\n{out}");
    assert!(out.stderr.is_empty(), "\n{out}");
}

fn exit_status_is_the_programs(mode: Mode) {
    for code in [0, 1, 3, 42, 125, 126, 127, 255] {
        mode.command("sh").args(["-c", &format!("exit {code}")]).output().expect_code(code);
    }
}

fn death_by_signal_is_128_plus_n(mode: Mode) {
    for (signal, name) in [(15, "TERM"), (9, "KILL"), (10, "USR1")] {
        let out = mode.command("sh").args(["-c", &format!("kill -{name} $$; sleep 5")]).output();
        match mode {
            // A native shell sees the signal itself.
            Mode::Native => assert_eq!(out.status.signal(), Some(signal), "\n{out}"),
            // cloister exits normally, with the status a shell would have reported.
            Mode::Cloister => assert_eq!(out.status.code(), Some(128 + signal), "\n{out}"),
        }
        assert!(out.stdout.is_empty(), "\n{out}");
    }
}

fn stdin_reaches_the_program(mode: Mode) {
    let input = "first line\nsecond line\n".repeat(1000);
    let out = mode.command("cat").stdin(input.clone()).output();
    out.success();
    assert_eq!(out.stdout, input);
}

fn environment_reaches_the_program_unchanged(mode: Mode) {
    let env = |m: Mode| {
        let out =
            m.command("env").env("CLOISTER_TEST_VAR", "a value with spaces").env("EMPTY_VAR", "").output();
        out.success();
        let mut lines: Vec<String> = out.lines().iter().map(|l| (*l).to_owned()).collect();
        lines.sort();
        lines
    };
    let expected = env(Mode::Native);
    assert!(expected.contains(&"CLOISTER_TEST_VAR=a value with spaces".to_owned()));
    assert_eq!(env(mode), expected, "the program's environment differs from native");
}

fn working_directory_is_kept(mode: Mode) {
    let dir = temp_dir("cwd");
    let dir = fs::canonicalize(&dir).expect("canonicalize");
    let out = mode.command("pwd").arg("-P").current_dir(&dir).output();
    out.success();
    assert_eq!(out.stdout.trim_end(), s(&dir));
}

fn large_argv_and_environment(mode: Mode) {
    let args: Vec<String> = (0..3000).map(|i| format!("argument-{i}")).collect();
    let big = "x".repeat(100_000);
    let out = mode
        .command(PYTHON3)
        .args([
            "-c",
            "import os, sys; print(len(sys.argv) - 1, sys.argv[1], sys.argv[-1], \
             len(os.environ['BIG']))",
        ])
        .args(&args)
        .env("BIG", &big)
        .output();
    out.success();
    assert_eq!(out.stdout, "3000 argument-0 argument-2999 100000\n", "\n{out}");
}

// ---------------------------------------------------------------------------------------------
// Finding the program

fn program_found_on_path_like_a_shell(mode: Mode) {
    // The first directory on PATH has a `prog` that is not executable, the second one that is:
    // a shell skips the first.
    let not_exec = script("path-a", "prog", "#!/bin/sh\necho from-a\n", 0o644);
    let exec = script("path-b", "prog", "#!/bin/sh\necho from-b \"$@\"\n", 0o755);
    let dir_of = |p: &Path| s(p.parent().expect("parent")).to_owned();
    let path = format!("{}:{}:{}", dir_of(&not_exec), dir_of(&exec), cloister_tests::SYSTEM_PATH);
    let out = mode.command("prog").arg("x").env("PATH", &path).output();
    out.success();
    assert_eq!(out.stdout, "from-b x\n", "\n{out}");

    // Found only without execute permission: 126, like a shell.
    let path = format!("{}:{}", dir_of(&not_exec), cloister_tests::SYSTEM_PATH);
    mode.command("prog").env("PATH", &path).output().expect_failure_line(126, "prog");
}

fn relative_program_path(mode: Mode) {
    let prog = script("relative", "prog.sh", "#!/bin/sh\necho relative \"$0\"\n", 0o755);
    let out = mode.command("./prog.sh").current_dir(prog.parent().expect("parent")).output();
    out.success();
    assert_eq!(out.stdout, "relative ./prog.sh\n", "\n{out}");
}

fn not_found_is_127(mode: Mode) {
    mode.command("cloister-no-such-program").output().expect_failure_line(127, "cloister-no-such-program");
    mode.command("/nonexistent/dir/program").output().expect_failure_line(127, "/nonexistent/dir/program");
}

// ---------------------------------------------------------------------------------------------
// Programs that cannot be executed: 126

fn text_without_shebang_is_126(mode: Mode) {
    let path = script("noshebang", "notes.txt", "echo this is not a script\n", 0o755);
    mode.command(&path).output().expect_failure_line(126, s(&path));
}

fn i386_elf_is_126(mode: Mode) {
    let path = temp_dir("i386").join("exit42-i386");
    write_file(&path, elf::i386_exit42(), 0o755);
    let out = mode.command(&path).output();
    if mode == Mode::Native && out.code() == 42 {
        // This host has IA-32 emulation: the image is a real 32-bit program.
        return;
    }
    out.expect_failure_line(126, s(&path));
}

fn aarch64_elf_is_126(mode: Mode) {
    let path = temp_dir("aarch64").join("exit42-aarch64");
    write_file(&path, elf::aarch64_exit42(), 0o755);
    let out = mode.command(&path).output();
    if mode == Mode::Native && out.code() == 42 {
        // binfmt_misc with an emulator: the image is a real AArch64 program.
        return;
    }
    out.expect_failure_line(126, s(&path));
}

fn corrupt_elf_is_126(mode: Mode) {
    let dir = temp_dir("corrupt");
    let garbage = dir.join("garbage-elf");
    write_file(&garbage, elf::magic_and_garbage(), 0o755);
    mode.command(&garbage).output().expect_failure_line(126, s(&garbage));

    let truncated = dir.join("truncated-true");
    write_file(&truncated, elf::truncated(Path::new("/bin/true"), 200), 0o755);
    mode.command(&truncated).output().expect_failure_line(126, s(&truncated));
}

fn no_execute_permission_is_126(mode: Mode) {
    let path = temp_dir("noexec").join("true-copy");
    write_file(&path, fs::read("/bin/true").expect("read /bin/true"), 0o644);
    mode.command(&path).output().expect_failure_line(126, s(&path));
}

fn directory_is_126(mode: Mode) {
    let dir = temp_dir("a-directory");
    mode.command(&dir).output().expect_failure_line(126, s(&dir));
}

fn missing_interpreter_is_126(mode: Mode) {
    // The program exists; its interpreter does not (bash says "bad interpreter", status 126).
    let path = script("badinterp", "script", "#!/nonexistent/interpreter\necho hi\n", 0o755);
    mode.command(&path).output().expect_failure_line(126, s(&path));
}

both_modes!(
    true_succeeds_silently,
    echo_gets_every_argument,
    exit_status_is_the_programs,
    death_by_signal_is_128_plus_n,
    stdin_reaches_the_program,
    environment_reaches_the_program_unchanged,
    working_directory_is_kept,
    large_argv_and_environment,
    program_found_on_path_like_a_shell,
    relative_program_path,
    not_found_is_127,
    text_without_shebang_is_126,
    i386_elf_is_126,
    aarch64_elf_is_126,
    corrupt_elf_is_126,
    no_execute_permission_is_126,
    directory_is_126,
    missing_interpreter_is_126,
);

// ---------------------------------------------------------------------------------------------
// Policies (cloister only)

/// Writes a policy file and returns its path.
fn policy_file(name: &str, json: &str) -> PathBuf {
    let path = temp_dir("policy").join(name);
    write_file(&path, json, 0o644);
    path
}

/// Checks that `cloister policy check FILE` rejects `json`, naming the file and `mentions`.
#[track_caller]
fn check_rejects(json: &str, mentions: &[&str]) {
    let path = policy_file("bad-policy.json", json);
    let out = cloister(&["policy", "check", s(&path)]);
    assert_ne!(out.code(), 0, "a bad policy passed the check\n{out}");
    assert!(out.stderr.contains(s(&path)), "the message does not name the file\n{out}");
    for mention in mentions {
        assert!(out.stderr.contains(mention), "the message does not mention {mention:?}\n{out}");
    }
}

#[test]
fn policy_list_names_default() {
    let out = cloister(&["policy", "list"]);
    out.success();
    assert!(
        out.stdout.split(|c: char| c.is_whitespace() || c == ':' || c == ',').any(|word| word == "default"),
        "`policy list` does not list `default`\n{out}"
    );
}

#[test]
fn policy_show_default_is_json() {
    let out = cloister(&["policy", "show", "default"]);
    out.success();
    let value: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("`policy show default` is not JSON: {e}\n{out}"));
    assert!(value.is_object(), "a policy is a JSON object\n{out}");
}

#[test]
fn policy_show_output_passes_check() {
    let shown = cloister(&["policy", "show", "default"]);
    shown.success();
    let path = policy_file("default.json", &shown.stdout);
    cloister(&["policy", "check", s(&path)]).success();
}

#[test]
fn policy_show_unknown_name_fails() {
    let out = cloister(&["policy", "show", "no-such-policy"]);
    assert_ne!(out.code(), 0, "\n{out}");
    assert!(out.stderr.contains("no-such-policy"), "\n{out}");
}

#[test]
fn policy_check_accepts_every_key() {
    let path = policy_file(
        "good.json",
        r#"{
            "comment": "every key of issue 2",
            "identity": { "hostname": "policy-host" },
            "time": { "offset_seconds": -3600 },
            "random": { "seed": 7 }
        }"#,
    );
    cloister(&["policy", "check", s(&path)]).success();
    let empty = policy_file("empty.json", "{}");
    cloister(&["policy", "check", s(&empty)]).success();
}

#[test]
fn policy_check_names_file_and_json_path() {
    check_rejects(r#"{ "time": { "offset_seconds": "soon" } }"#, &["$.time.offset_seconds"]);
    check_rejects(r#"{ "random": { "seed": -1 } }"#, &["$.random.seed"]);
    check_rejects(r#"{ "identity": { "hostname": 5 } }"#, &["$.identity.hostname"]);
    check_rejects(
        &format!(r#"{{ "identity": {{ "hostname": "{}" }} }}"#, "h".repeat(80)),
        &["$.identity.hostname"],
    );
}

#[test]
fn policy_check_rejects_unknown_keys() {
    check_rejects(r#"{ "identity": { "hostnme": "typo" } }"#, &["hostnme"]);
    check_rejects(r#"{ "tme": {} }"#, &["tme"]);
}

#[test]
fn policy_check_rejects_malformed_json() {
    check_rejects(r#"{ "identity": "#, &[]);
    check_rejects("[]", &[]);
}

#[test]
fn policy_check_missing_file_fails() {
    let out = cloister(&["policy", "check", "/nonexistent/policy.json"]);
    assert_ne!(out.code(), 0, "\n{out}");
    assert!(out.stderr.contains("/nonexistent/policy.json"), "\n{out}");
}

#[test]
fn run_with_default_policy() {
    let out = Mode::Cloister.command("echo").arg("ok").policy("default").output();
    out.success();
    assert_eq!(out.stdout, "ok\n");
}

#[test]
fn run_with_bad_policy_is_125() {
    let bad = policy_file("bad.json", r#"{ "time": { "offset_seconds": "soon" } }"#);
    Mode::Cloister
        .command("echo")
        .arg("the program ran")
        .policy(&bad)
        .output()
        .expect_failure_line(125, s(&bad));

    let unknown = policy_file("unknown.json", r#"{ "identity": { "hostnme": "x" } }"#);
    Mode::Cloister.command("true").policy(&unknown).output().expect_failure_line(125, s(&unknown));

    Mode::Cloister
        .command("true")
        .policy("/nonexistent/policy.json")
        .output()
        .expect_failure_line(125, "/nonexistent/policy.json");

    Mode::Cloister
        .command("true")
        .policy("no-such-builtin-policy")
        .output()
        .expect_failure_line(125, "no-such-builtin-policy");
}

#[test]
fn bad_option_values_are_125() {
    // The flags have policy keys; a value the policy would reject is cloister's failure too.
    for (flag, value) in
        [("--time-offset", "soon"), ("--seed", "-1"), ("--seed", "many"), ("--hostname", &"h".repeat(80))]
    {
        let out = Mode::Cloister
            .command("echo")
            .arg("the program ran")
            .cloister_arg(flag)
            .cloister_arg(value)
            .output();
        out.expect_code(125);
        assert!(!out.stderr.is_empty(), "no message\n{out}");
        assert!(out.stdout.is_empty(), "the program ran\n{out}");
    }
}

#[test]
fn syscalls_doc_is_printed_from_the_table() {
    let out = cloister(&["syscalls", "--markdown"]);
    out.success();
    let doc_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/syscalls.md");
    let doc = std::fs::read_to_string(&doc_path).expect("docs/syscalls.md");
    assert_eq!(
        out.stdout, doc,
        "docs/syscalls.md is stale: regenerate it with `cloister syscalls --markdown > docs/syscalls.md`"
    );
    assert!(out.stdout.contains("| `uname` |"), "{out}");
}
