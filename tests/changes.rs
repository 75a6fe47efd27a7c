//! The filesystem view's launcher side: `cloister run`'s view flags (errors, `--cwd`, the
//! summary line, the state directory made and removed, `--changes DIR` kept with a manifest),
//! and `cloister changes show|apply` on a changes directory built by hand in the manifest's
//! documented format (docs/filesystem.md), over a host tree that is a scratch directory.
//!
//! The kernel side of the view (which makes the program's writes land in the upper tree) is
//! tested with the kernel; here no run writes anything, so every run reports no change. How an
//! upper tree with whiteouts and opaque directories is classified is tested in the launcher's
//! own unit tests (`launcher/src/changes/tests.rs`).

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use cloister_tests::{cloister, temp_dir, write_file, Mode};
use sha2::{Digest, Sha256};

fn s(path: &Path) -> &str {
    path.to_str().expect("scratch paths are UTF-8")
}

// ---------------------------------------------------------------------------------------------
// A changes directory made by hand

/// A kept run: `dir` is what `--changes DIR` leaves, `lower` the host tree behind guest `/w`.
struct Kept {
    dir: PathBuf,
    lower: PathBuf,
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The manifest's record of the host entry at `path`, as it is now.
fn host_record(path: &Path) -> serde_json::Value {
    let meta = fs::symlink_metadata(path).unwrap();
    let mode = format!("{:04o}", meta.mode() & 0o7777);
    let mtime_ns = meta.mtime() * 1_000_000_000 + meta.mtime_nsec();
    if meta.is_dir() {
        serde_json::json!({"type": "dir", "size": 0, "mode": mode, "mtime_ns": mtime_ns})
    } else {
        let sha = sha256(&fs::read(path).unwrap());
        serde_json::json!({"type": "file", "size": meta.len(), "mode": mode, "mtime_ns": mtime_ns, "sha256": sha})
    }
}

fn kept() -> Kept {
    let root = temp_dir("changes");
    let lower = root.join("lower");
    fs::create_dir_all(lower.join("olddir")).unwrap();
    write_file(&lower.join("edit.txt"), "one\ntwo\n", 0o644);
    write_file(&lower.join("old.txt"), "old\n", 0o644);
    write_file(&lower.join("olddir/inner"), "i", 0o644);
    fs::set_permissions(lower.join("olddir"), fs::Permissions::from_mode(0o755)).unwrap();

    let dir = root.join("kept");
    let upper = dir.join("upper/w");
    fs::create_dir_all(upper.join("newdir")).unwrap();
    write_file(&upper.join("edit.txt"), "one\n2\n", 0o644);
    write_file(&upper.join("new.txt"), "hello\n", 0o600);
    write_file(&upper.join("newdir/deep.txt"), "deep", 0o644);
    std::os::unix::fs::symlink("new.txt", upper.join("link")).unwrap();
    let manifest = serde_json::json!({
        "version": 1,
        "upper": "upper",
        "mounts": [{"guest": "/w", "lower": s(&lower)}],
        "changes": [
            {"path": "/w/edit.txt", "kind": "modified", "type": "file", "size": 6, "mode": "0644",
             "host": host_record(&lower.join("edit.txt"))},
            {"path": "/w/link", "kind": "created", "type": "symlink", "size": 7, "mode": "0777",
             "target": "new.txt"},
            {"path": "/w/new.txt", "kind": "created", "type": "file", "size": 6, "mode": "0600"},
            {"path": "/w/newdir", "kind": "created", "type": "dir", "size": 0, "mode": "0755"},
            {"path": "/w/newdir/deep.txt", "kind": "created", "type": "file", "size": 4, "mode": "0644"},
            {"path": "/w/old.txt", "kind": "deleted", "type": "file", "size": 4, "mode": "0644",
             "host": host_record(&lower.join("old.txt"))},
            {"path": "/w/olddir", "kind": "deleted", "type": "dir", "size": 0, "mode": "0755",
             "host": host_record(&lower.join("olddir"))},
            {"path": "/w/olddir/inner", "kind": "deleted", "type": "file", "size": 1, "mode": "0644",
             "host": host_record(&lower.join("olddir/inner"))},
        ]
    });
    fs::write(dir.join("manifest.json"), serde_json::to_string_pretty(&manifest).unwrap()).unwrap();
    Kept { dir, lower }
}

/// Every path under `root` with its content (files), target (symlinks) and mode.
fn snapshot(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let what = if meta.is_dir() {
                stack.push(path.clone());
                "dir".to_owned()
            } else if meta.is_symlink() {
                format!("-> {}", fs::read_link(&path).unwrap().display())
            } else {
                format!("{:?}", fs::read_to_string(&path).unwrap())
            };
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            out.push(format!("{rel} {:o} {what}", meta.mode() & 0o7777));
        }
    }
    out.sort();
    out
}

fn squeeze(line: &str) -> String {
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn show_prints_the_changes_as_a_tree() {
    let k = kept();
    let out = cloister(&["changes", "show", s(&k.dir)]);
    out.success();
    let lines: Vec<String> = out.stdout.lines().map(squeeze).collect();
    assert_eq!(
        lines,
        [
            "/",
            "w/",
            "edit.txt modified file 6 B",
            "link created symlink -> new.txt",
            "new.txt created file 6 B",
            "newdir/ created dir",
            "deep.txt created file 4 B",
            "old.txt deleted file 4 B",
            "olddir/ deleted dir",
            "inner deleted file 1 B",
            "4 created, 1 modified, 3 deleted",
        ],
        "\n{out}"
    );
    let deep = out.stdout.lines().find(|l| l.contains("deep.txt")).unwrap();
    assert!(deep.starts_with("      deep.txt "), "entries are indented by depth\n{out}");
    assert!(out.stderr.is_empty(), "\n{out}");
}

#[test]
fn show_diff_adds_unified_diffs_of_text_files() {
    let k = kept();
    let out = cloister(&["changes", "show", "--diff", s(&k.dir)]);
    out.success();
    for hunk in [
        "--- a/w/edit.txt\n+++ b/w/edit.txt\n@@ -1,2 +1,2 @@\n one\n-two\n+2\n",
        "--- /dev/null\n+++ b/w/new.txt\n@@ -0,0 +1 @@\n+hello\n",
        "--- a/w/old.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-old\n",
    ] {
        assert!(out.stdout.contains(hunk), "missing:\n{hunk}\n{out}");
    }
}

#[test]
fn apply_dry_run_says_what_it_would_do_and_changes_nothing() {
    let k = kept();
    let before = snapshot(&k.lower);
    let out = cloister(&["changes", "apply", "--dry-run", s(&k.dir)]);
    out.success();
    assert_eq!(snapshot(&k.lower), before, "a dry run changed the host\n{out}");
    let l = s(&k.lower);
    let expected: Vec<String> = [
        format!("would delete file {l}/olddir/inner"),
        format!("would delete dir {l}/olddir"),
        format!("would delete file {l}/old.txt"),
        format!("would modify file {l}/edit.txt"),
        format!("would create symlink {l}/link"),
        format!("would create file {l}/new.txt"),
        format!("would create dir {l}/newdir"),
        format!("would create file {l}/newdir/deep.txt"),
    ]
    .into();
    assert_eq!(out.lines(), expected, "deletions children first, then the rest parents first\n{out}");
}

#[test]
fn apply_writes_the_changes_to_the_host() {
    let k = kept();
    let out = cloister(&["changes", "apply", s(&k.dir)]);
    out.success();
    assert_eq!(
        snapshot(&k.lower),
        [
            "edit.txt 644 \"one\\n2\\n\"",
            "link 777 -> new.txt",
            "new.txt 600 \"hello\\n\"",
            "newdir 755 dir",
            "newdir/deep.txt 644 \"deep\"",
        ],
        "\n{out}"
    );
    assert!(out.stdout.contains(&format!("deleted dir {}/olddir\n", s(&k.lower))), "\n{out}");
}

#[test]
fn apply_refuses_paths_that_changed_on_the_host_unless_forced() {
    let k = kept();
    write_file(&k.lower.join("edit.txt"), "one\nTWO\n", 0o644);
    write_file(&k.lower.join("new.txt"), "mine\n", 0o644);
    let before = snapshot(&k.lower);
    let out = cloister(&["changes", "apply", s(&k.dir)]);
    out.expect_code(1);
    assert_eq!(snapshot(&k.lower), before, "something was applied after a refusal\n{out}");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 3, "one line per refused path, then one that says nothing was done\n{out}");
    assert!(
        lines[0].starts_with("cloister: refused /w/edit.txt: ")
            && lines[0].ends_with("changed on the host since the run")
    );
    assert!(
        lines[1].starts_with("cloister: refused /w/new.txt: ")
            && lines[1].ends_with("now exists on the host (a file)")
    );
    assert!(lines[2].contains("nothing applied") && lines[2].contains("--force"), "\n{out}");

    cloister(&["changes", "apply", "--force", s(&k.dir)]).success();
    assert_eq!(fs::read_to_string(k.lower.join("edit.txt")).unwrap(), "one\n2\n");
    assert_eq!(fs::read_to_string(k.lower.join("new.txt")).unwrap(), "hello\n");
    assert!(!k.lower.join("old.txt").exists());
}

#[test]
fn a_directory_that_is_not_a_changes_directory_is_125() {
    let empty = temp_dir("not-changes");
    cloister(&["changes", "show", s(&empty)]).expect_failure_line(125, "not a changes directory");
    cloister(&["changes", "apply", s(&empty)]).expect_failure_line(125, s(&empty));
    cloister(&["changes", "show", "/nonexistent-cloister-changes"])
        .expect_failure_line(125, "/nonexistent-cloister-changes");
    fs::write(empty.join("manifest.json"), "{\"version\": 1}").unwrap();
    cloister(&["changes", "show", s(&empty)]).expect_failure_line(125, "not a cloister manifest");

    let k = kept();
    let text = fs::read_to_string(k.dir.join("manifest.json")).unwrap();
    fs::write(k.dir.join("manifest.json"), text.replace("/w/new.txt", "/w/../../escape")).unwrap();
    cloister(&["changes", "apply", s(&k.dir)]).expect_failure_line(125, "damaged");
    assert!(!k.lower.parent().unwrap().join("escape").exists());
}

// ---------------------------------------------------------------------------------------------
// cloister run with a view

/// A run of `sh -c script` with `flags`, its state directory in a scratch `$TMPDIR`; returns
/// the outcome and that directory.
fn run_in_view(flags: &[&str], script: &str) -> (cloister_tests::Outcome, PathBuf) {
    let tmpdir = temp_dir("tmpdir");
    // The view is the flags' alone: the `default` policy has none of its own.
    let mut command =
        Mode::Cloister.command("sh").args(["-c", script]).env("TMPDIR", &tmpdir).policy("default");
    for flag in flags {
        command = command.cloister_arg(flag);
    }
    (command.output(), tmpdir)
}

#[test]
fn a_view_keeps_the_exit_status_prints_one_line_and_cleans_up() {
    let lower = temp_dir("lower");
    let overlay = format!("{}:/g", s(&lower));
    let (out, tmpdir) = run_in_view(
        &["--overlay", &overlay, "--tmpfs", "/scratch"],
        "echo x > /g/new; echo y > /scratch/y; exit 7",
    );
    out.expect_code(7);
    assert_eq!(out.stderr, "cloister: 1 created, 0 modified, 0 deleted \u{2014} discarded\n", "\n{out}");
    assert!(!lower.join("new").exists(), "the write reached the host\n{out}");
    let (out, _) = run_in_view(&["--overlay", &overlay], "true");
    out.success();
    assert!(out.stderr.is_empty(), "a run that changed nothing printed a summary\n{out}");
    assert_eq!(fs::read_dir(&tmpdir).unwrap().count(), 0, "the state directory was left behind\n{out}");

    let (out, _) = run_in_view(&["--overlay", &overlay, "--quiet"], "echo x > /g/new");
    out.success();
    assert!(out.stderr.is_empty(), "--quiet printed something\n{out}");
}

#[test]
fn changes_dir_is_kept_with_a_manifest() {
    let lower = temp_dir("lower");
    let dir = temp_dir("kept").join("run");
    let overlay = format!("{}:/g", s(&lower));
    let (out, tmpdir) = run_in_view(&["--overlay", &overlay, "--changes", s(&dir)], "true");
    out.success();
    let canonical = fs::canonicalize(&dir).unwrap();
    assert_eq!(
        out.stderr,
        format!("cloister: 0 created, 0 modified, 0 deleted \u{2014} kept in {}\n", canonical.display()),
        "\n{out}"
    );
    assert_eq!(fs::read_dir(&tmpdir).unwrap().count(), 0, "a kept run used $TMPDIR\n{out}");
    let mut names: Vec<String> =
        fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["manifest.json", "upper"], "\n{out}");
    assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700, "the kept directory is private");
    let manifest: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["version"], 2);
    assert_eq!(manifest["upper"], "upper");
    let lower = fs::canonicalize(&lower).unwrap();
    assert_eq!(manifest["mounts"], serde_json::json!([{"guest": "/g", "lower": s(&lower)}]));
    assert_eq!(manifest["changes"], serde_json::json!([]));
    assert!(dir.join("upper/g").is_dir(), "the overlay's upper layer is keyed by its guest path");
    cloister(&["changes", "show", s(&dir)]).success();
}

/// With `overlay_bytes` the private layer lives in a tmpfs; `--changes` copies it out after
/// the run, and the kept changes report and apply like any others: contents, a deletion, a
/// symlink, a hard link, modes, and a sparse file that stays sparse on the host's disk.
#[test]
fn a_size_limited_layer_is_kept_and_applies() {
    let lower = temp_dir("limited-lower");
    write_file(&lower.join("edit.txt"), "one\n", 0o644);
    write_file(&lower.join("old.txt"), "old\n", 0o644);
    let dir = temp_dir("limited-kept").join("run");
    let overlay = format!("{}:/g", s(&lower));
    let script = "echo two >> /g/edit.txt && rm /g/old.txt && echo new > /g/new.txt && \
                  chmod 600 /g/new.txt && ln -s new.txt /g/link && ln /g/new.txt /g/hard && \
                  truncate -s 256M /g/sparse && echo end >> /g/sparse";
    let (out, _) =
        run_in_view(&["--overlay", &overlay, "--limit", "overlay_bytes=32M", "--changes", s(&dir)], script);
    out.success();
    assert!(out.stderr.contains("4 created, 1 modified, 1 deleted"), "\n{out}");
    let kept = dir.join("upper/g");
    let (new, hard) = (fs::metadata(kept.join("new.txt")).unwrap(), fs::metadata(kept.join("hard")).unwrap());
    assert_eq!((new.ino(), new.mode() & 0o777), (hard.ino(), 0o600), "the hard link or the mode was lost");
    let sparse = fs::metadata(kept.join("sparse")).unwrap();
    assert_eq!(sparse.len(), (256 << 20) + 4);
    assert!(sparse.blocks() * 512 < 8 << 20, "the sparse file was filled in: {} blocks", sparse.blocks());

    let applied = cloister(&["changes", "apply", s(&dir)]);
    applied.success();
    let mut shown = snapshot(&lower);
    shown.retain(|line| !line.starts_with("sparse "));
    assert_eq!(
        shown,
        [
            "edit.txt 644 \"one\\ntwo\\n\"",
            "hard 600 \"new\\n\"",
            "link 777 -> new.txt",
            "new.txt 600 \"new\\n\"",
        ],
        "\n{applied}"
    );
    assert_eq!(fs::metadata(lower.join("sparse")).unwrap().len(), (256 << 20) + 4);
}

/// Names and symlink targets that are not UTF-8 (a Latin-1 `café`), and a name with a
/// backslash, go through the report and `apply` byte for byte; a host entry with such a name
/// that the program deleted is deleted.
#[test]
fn names_that_are_not_utf8_are_kept_and_applied() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let lower = temp_dir("latin1-lower");
    let old = lower.join(OsStr::from_bytes(b"old-\xe9t\xe9"));
    write_file(&old, "gone\n", 0o644);
    let dir = temp_dir("latin1-kept").join("run");
    let overlay = format!("{}:/g", s(&lower));
    let script = "n=$(printf 'caf\\351'); echo latin > \"/g/$n\" && ln -s \"$n\" \"/g/to-$n\" && \
                  echo slash > '/g/back\\slash' && rm /g/old-*";
    let (out, _) = run_in_view(&["--overlay", &overlay, "--changes", s(&dir)], script);
    out.success();
    assert!(out.stderr.contains("3 created, 0 modified, 1 deleted"), "\n{out}");
    let manifest = fs::read_to_string(dir.join("manifest.json")).unwrap();
    assert!(manifest.contains(r#""/g/caf\\xe9""#), "{manifest}");
    assert!(manifest.contains(r#""/g/back\\\\slash""#), "{manifest}");
    let shown = cloister(&["changes", "show", s(&dir)]);
    shown.success();
    assert!(shown.stdout.contains("caf\\xe9"), "\n{shown}");

    let applied = cloister(&["changes", "apply", s(&dir)]);
    applied.success();
    let cafe = lower.join(OsStr::from_bytes(b"caf\xe9"));
    assert_eq!(fs::read_to_string(&cafe).unwrap(), "latin\n", "\n{applied}");
    let link = fs::read_link(lower.join(OsStr::from_bytes(b"to-caf\xe9"))).unwrap();
    assert_eq!(link.as_os_str().as_bytes(), b"caf\xe9", "\n{applied}");
    assert_eq!(fs::read_to_string(lower.join("back\\slash")).unwrap(), "slash\n");
    assert!(!old.exists(), "the deleted Latin-1 name is still on the host\n{applied}");
}

#[test]
fn bad_view_requests_are_125_with_one_line() {
    let lower = temp_dir("lower");
    let full = temp_dir("full");
    fs::write(full.join("x"), "").unwrap();
    let overlay = format!("{}:/g", s(&lower));
    let cases: [(Vec<&str>, &str); 5] = [
        (vec!["--ro", "/nonexistent-cloister-host"], "--ro /nonexistent-cloister-host: the host path"),
        (vec!["--rw", "relative/dir"], "--rw relative/dir: the path \"relative/dir\" is relative"),
        (vec!["--hide", "~nobody/x"], "names another user's home"),
        (vec!["--overlay", &overlay, "--changes", s(&full)], "the directory is not empty"),
        (vec!["--changes", s(&lower)], "this run has no filesystem view"),
    ];
    for (flags, mention) in cases {
        let (out, tmpdir) = run_in_view(&flags, "echo ran");
        out.expect_failure_line(125, mention);
        assert_eq!(fs::read_dir(&tmpdir).unwrap().count(), 0, "a failed start left its state\n{out}");
    }
    assert_eq!(fs::read_dir(&full).unwrap().count(), 1, "a refused --changes DIR was touched");
}

#[test]
fn cwd_starts_the_program_there() {
    let dir = fs::canonicalize(temp_dir("cwd")).unwrap();
    write_file(&dir.join("hello.sh"), "#!/bin/sh\necho hello from \"$PWD\"\n", 0o755);
    // Without a view the guest path is the host path; with `--ro /` too.
    for flags in [vec!["--cwd", s(&dir)], vec!["--ro", "/", "--quiet", "--cwd", s(&dir)]] {
        let mut command = Mode::Cloister.command("./hello.sh").env("TMPDIR", temp_dir("tmpdir"));
        for flag in &flags {
            command = command.cloister_arg(flag);
        }
        let out = command.output();
        out.success();
        assert_eq!(out.stdout, format!("hello from {}\n", dir.display()), "{flags:?}\n{out}");
    }
    let (out, _) = run_in_view(&["--cwd", "/nonexistent-cloister-cwd"], "pwd");
    out.expect_failure_line(125, "--cwd /nonexistent-cloister-cwd");
}

// ---------------------------------------------------------------------------------------------
// Policies

#[test]
fn untrusted_is_listed_and_shows_its_view() {
    let list = cloister(&["policy", "list"]);
    list.success();
    assert!(list.stdout.lines().any(|l| l.starts_with("untrusted ")), "\n{list}");
    let shown = cloister(&["policy", "show", "untrusted"]);
    shown.success();
    let policy: serde_json::Value = serde_json::from_str(&shown.stdout).unwrap();
    assert_eq!(policy["filesystem"]["overlay"], serde_json::json!(["/"]), "\n{shown}");
    assert!(policy["filesystem"]["hide"].as_array().unwrap().contains(&"~/.ssh".into()));
}

#[test]
fn policy_check_names_the_filesystem_entry_at_fault() {
    let path = temp_dir("policy").join("view.json");
    write_file(&path, r#"{"filesystem": {"ro": ["/usr", "lib"]}}"#, 0o644);
    let out = cloister(&["policy", "check", s(&path)]);
    out.expect_code(1);
    assert!(out.stderr.contains(&format!("policy {}: at $.filesystem.ro[1]: ", s(&path))), "\n{out}");
    assert!(out.stderr.contains("is relative"), "\n{out}");
    write_file(
        &path,
        r#"{"filesystem": {"overlay": ["/"], "tmpfs": ["/tmp"], "hide": ["~/.ssh"], "cwd": "~"}}"#,
        0o644,
    );
    cloister(&["policy", "check", s(&path)]).success();
}

#[test]
fn a_large_discarded_tree_is_removed_after_the_run_returns() {
    let lower = temp_dir("lower");
    let overlay = format!("{}:/g", s(&lower));
    // More entries than the launcher removes before returning (REMOVE_LATER).
    let script = "mkdir /g/many && cd /g/many && i=0; while [ $i -lt 60 ]; do mkdir d$i; \
                  (cd d$i && touch $(seq -f f%g 100)); i=$((i+1)); done";
    let (out, tmpdir) = run_in_view(&["--overlay", &overlay], script);
    out.success();
    assert_eq!(out.stderr, "cloister: 6061 created, 0 modified, 0 deleted \u{2014} discarded\n", "\n{out}");
    assert!(!lower.join("many").exists(), "the write reached the host\n{out}");
    // Renamed aside at once, then removed by the detached remover.
    let left = |dir: &PathBuf| -> Vec<String> {
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect()
    };
    for name in left(&tmpdir) {
        assert!(name.starts_with("cloister-") && name.ends_with(".discarded"), "{name} was left\n{out}");
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !left(&tmpdir).is_empty() {
        assert!(std::time::Instant::now() < deadline, "not removed in 60 s: {:?}", left(&tmpdir));
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn discard_refuses_what_is_not_a_discarded_state_directory() {
    let dir = temp_dir("not-state");
    fs::write(dir.join("keep"), "x").unwrap();
    let out = cloister_tests::cloister(&["__discard", s(&dir)]);
    out.expect_code(2);
    assert!(dir.join("keep").exists(), "__discard removed a directory it does not own\n{out}");
}
