//! Tests of the crate's public behaviour: built-ins, error wording, loading.

use crate::{
    builtin_names, builtin_summary, builtin_text, load, parse, Filesystem, NetMode, NetModeError, Policy,
    PolicyError, MAX_OFFSET_SECONDS,
};

/// Parses `text` as `./bad.json`, expecting an error, and returns it with its message.
fn fail(text: &str) -> (PolicyError, String) {
    let err = parse(text, "./bad.json").expect_err("the policy should be rejected");
    let line = err.to_string();
    assert!(!line.contains('\n'), "one line: {line}");
    (err, line)
}

#[test]
fn every_builtin_parses_validates_and_has_a_summary() {
    let names = builtin_names();
    assert!(names.windows(2).all(|w| w[0] < w[1]), "sorted: {names:?}");
    assert_eq!(names, ["default", "fixed-identity", "reproducible", "untrusted"]);
    for name in names {
        let text = builtin_text(name).expect("listed names have text");
        let policy = parse(text, &format!("built-in policy {name}")).unwrap();
        assert_eq!(load(name).unwrap(), policy);
        let summary = builtin_summary(name).unwrap();
        assert!(!summary.is_empty() && !summary.contains('\n'), "{name}: {summary:?}");
        // What `cloister policy show` prints reads back as the same policy.
        assert_eq!(parse(&policy.to_json_pretty(), name).unwrap(), policy);
    }
    assert_eq!(builtin_text("nope"), None);
    assert_eq!(builtin_summary("nope"), None);
}

#[test]
fn default_changes_nothing_and_fixed_identity_fixes_name_and_seed() {
    assert_eq!(Policy { comment: None, ..load("default").unwrap() }, Policy::default());
    let fixed = load("fixed-identity").unwrap();
    assert_eq!(fixed.identity.hostname.as_deref(), Some("cloister"));
    assert_eq!(fixed.time.offset_seconds, None);
    assert_eq!(fixed.random.seed, Some(1));

    let mut config = kernel_host::Config { lineage: 3, ..Default::default() };
    fixed.apply_to(&mut config);
    assert_eq!(config.hostname.as_deref(), Some("cloister"));
    assert_eq!((config.time_offset, config.seed, config.lineage), (None, Some(1), 3));
}

#[test]
fn unknown_key_at_top_level_names_the_allowed_keys() {
    let (err, line) = fail(r#"{"identiy": {}}"#);
    assert!(matches!(&err, PolicyError::UnknownKey { json_path, key, .. }
        if json_path == "$" && key == "identiy"));
    assert_eq!(
        line,
        r#"policy ./bad.json: at $: unknown key "identiy"; the keys allowed here are comment, identity, time, random, reproducible, filesystem, network, limits, tty"#
    );
}

#[test]
fn unknown_nested_key_names_its_object() {
    let (_, line) = fail(r#"{"identity": {"hostnme": "x"}}"#);
    assert_eq!(
        line,
        r#"policy ./bad.json: at $.identity: unknown key "hostnme"; the keys allowed here are comment, hostname, cpus"#
    );
}

#[test]
fn wrong_type_says_expected_and_found() {
    let (err, line) = fail(r#"{"time": {"offset_seconds": "soon"}}"#);
    assert!(matches!(&err, PolicyError::Schema { found, .. } if found == r#"the string "soon""#));
    assert_eq!(
        line,
        r#"policy ./bad.json: at $.time.offset_seconds: expected an integer number of seconds, found the string "soon"; write a whole number such as 3600"#
    );
    let (_, line) = fail(r#"{"random": {"seed": -1}}"#);
    assert!(line.contains("at $.random.seed: expected a whole number from 0 to"), "{line}");
    assert!(line.contains("found the integer -1, which is out of range"), "{line}");
    let (_, line) = fail(r#"{"identity": ["x"]}"#);
    assert!(line.contains("at $.identity: expected an object, found an array"), "{line}");
    let (_, line) = fail(r#"{"comment": 1.5}"#);
    assert!(line.contains("at $.comment: expected a string, found the number 1.5"), "{line}");
    let (_, line) = fail("[]");
    assert!(line.contains("at $: expected a JSON object, found an array"), "{line}");
}

#[test]
fn bad_hostnames_are_rejected_with_a_fix() {
    let cases = [
        ("", "the host name is empty"),
        ("my_host", r#"the host name "my_host" contains '_'"#),
        ("-x", r#"the host name "-x" starts with '-'"#),
        (".x", r#"the host name ".x" starts with '.'"#),
    ];
    for (name, message) in cases {
        let (err, line) = fail(&format!(r#"{{"identity": {{"hostname": "{name}"}}}}"#));
        assert!(matches!(err, PolicyError::Invalid { .. }), "{line}");
        assert!(line.starts_with("policy ./bad.json: at $.identity.hostname: "), "{line}");
        assert!(line.contains(message), "{line}");
    }
    let (_, line) = fail(r#"{"identity": {"hostname": "a b"}}"#);
    assert!(line.ends_with(r#"; use only letters, digits, '.' and '-', such as "cloister""#));
    let long = "a".repeat(65);
    let (_, line) = fail(&format!(r#"{{"identity": {{"hostname": "{long}"}}}}"#));
    assert!(line.contains("65 bytes long; shorten it to at most 64 bytes"), "{line}");
    let ok = format!(r#"{{"identity": {{"hostname": "{}"}}}}"#, "a".repeat(64));
    parse(&ok, "ok").unwrap();
    parse(r#"{"identity": {"hostname": "Build-01.example"}}"#, "ok").unwrap();
}

#[test]
fn offsets_beyond_a_hundred_years_are_rejected() {
    let max = MAX_OFFSET_SECONDS;
    parse(&format!(r#"{{"time": {{"offset_seconds": -{max}}}}}"#), "ok").unwrap();
    let (_, line) = fail(&format!(r#"{{"time": {{"offset_seconds": {}}}}}"#, max + 1));
    assert!(line.starts_with("policy ./bad.json: at $.time.offset_seconds: "), "{line}");
    assert!(line.contains("more than 100 years"), "{line}");
    let (_, line) = fail(&format!(r#"{{"time": {{"offset_seconds": {}}}}}"#, i64::MIN));
    assert!(line.contains("more than 100 years"), "{line}");
}

#[test]
fn syntax_errors_give_line_and_column() {
    let (err, line) = fail("{\n  \"time\": {\n    \"offset_seconds\": 1,\n  }\n}");
    assert!(matches!(err, PolicyError::Syntax { line: 4, column: 3, .. }), "{err:?}");
    assert_eq!(line, "policy ./bad.json: line 4 column 3: invalid JSON: trailing comma");
    let (_, line) = fail("{} {}");
    assert_eq!(line, "policy ./bad.json: line 1 column 4: invalid JSON: trailing characters");
    let (err, _) = fail("");
    assert!(matches!(err, PolicyError::Syntax { .. }), "{err:?}");
}

#[test]
fn duplicate_keys_are_rejected() {
    let (_, line) = fail(r#"{"comment": "a", "comment": "b"}"#);
    assert_eq!(line, r#"policy ./bad.json: at $: the key "comment" appears twice; keep only one"#);
}

#[test]
fn builtin_errors_name_the_builtin() {
    let err = parse("{", "built-in policy broken").unwrap_err();
    assert!(err.to_string().starts_with("built-in policy broken: line 1"), "{err}");
}

#[test]
fn missing_file_is_a_read_error_naming_the_path() {
    let path = "/nonexistent-cloister-dir/policy.json";
    let err = load(path).unwrap_err();
    assert!(matches!(&err, PolicyError::Read { path: p, .. } if p == path), "{err:?}");
    assert!(std::error::Error::source(&err).is_some());
    let line = err.to_string();
    assert!(line.starts_with(&format!("policy {path}: cannot read the file: ")), "{line}");
    assert!(line.ends_with(
        "; check the path, or name a built-in policy (default, fixed-identity, reproducible, untrusted)"
    ));
    // A name ending in .json is a file even without a '/'.
    assert!(matches!(load("no-such-policy.json"), Err(PolicyError::Read { .. })));
}

#[test]
fn existing_file_is_loaded_and_errors_name_it() {
    let dir = std::env::temp_dir().join(format!("cloister-policies-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.json");
    std::fs::write(&good, r#"{"random": {"seed": 7}}"#).unwrap();
    let bad = dir.join("bad.json");
    std::fs::write(&bad, r#"{"random": {"seed": "x"}}"#).unwrap();
    let loaded = load(good.to_str().unwrap());
    let failed = load(bad.to_str().unwrap());
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(loaded.unwrap().random.seed, Some(7));
    let line = failed.unwrap_err().to_string();
    assert!(line.starts_with(&format!("policy {}: at $.random.seed: ", bad.display())), "{line}");
}

#[test]
fn unknown_builtin_lists_the_names() {
    let err = load("nope").unwrap_err();
    assert!(matches!(&err, PolicyError::UnknownBuiltin { name, available }
        if name == "nope" && available == &["default", "fixed-identity", "reproducible", "untrusted"]));
    assert_eq!(
        err.to_string(),
        "policy nope: no built-in policy has this name; choose one of default, fixed-identity, reproducible, \
         untrusted, or give a file path such as ./nope.json"
    );
}

#[test]
fn untrusted_overlays_the_root_and_hides_secrets() {
    let fs = load("untrusted").unwrap().filesystem;
    assert_eq!(fs.overlay, ["/"]);
    assert!(fs.tmpfs.contains(&"/tmp".to_owned()), "{fs:?}");
    for secret in ["~/.ssh", "~/.gnupg", "~/.aws", "~/.netrc", "/root", "/etc/shadow", "/etc/sudoers"] {
        assert!(fs.hide.contains(&secret.to_owned()), "{secret} is not hidden: {fs:?}");
    }
    assert!(fs.has_mounts() && fs.cwd.is_none());
    // The launcher's own default stays without a view until the kernel side is ready.
    assert!(!load("default").unwrap().filesystem.has_mounts());
}

#[test]
fn every_filesystem_key_is_accepted_and_shown_back() {
    let text = r#"{"filesystem": {"comment": "why", "ro": ["/usr", "~/src:/src"], "rw": ["/srv/out"],
        "overlay": ["/"], "tmpfs": ["/tmp"], "hide": ["~/.ssh"], "cwd": "/src"}}"#;
    let policy = parse(text, "ok").unwrap();
    assert_eq!(policy.filesystem.ro, ["/usr", "~/src:/src"]);
    assert_eq!(policy.filesystem.cwd.as_deref(), Some("/src"));
    assert_eq!(parse(&policy.to_json_pretty(), "ok").unwrap(), policy);
    // An empty section is no view, and is not printed back.
    let empty = parse(r#"{"filesystem": {}}"#, "ok").unwrap();
    assert_eq!(empty.filesystem, Filesystem::default());
    assert!(!empty.to_json_pretty().contains("filesystem"));
}

#[test]
fn relative_filesystem_paths_name_the_entry_and_the_fix() {
    let (err, line) = fail(r#"{"filesystem": {"ro": ["/usr", "/opt", "data"]}}"#);
    assert!(matches!(&err, PolicyError::Invalid { json_path, .. } if json_path == "$.filesystem.ro[2]"));
    assert_eq!(
        line,
        r#"policy ./bad.json: at $.filesystem.ro[2]: in "data": the path "data" is relative (the host part); write it from the root, such as "/srv/data", or from your home, such as "~/data""#
    );
    let (_, line) = fail(r#"{"filesystem": {"overlay": ["/src:src"]}}"#);
    assert!(line.contains("at $.filesystem.overlay[0]: "), "{line}");
    assert!(line.contains(r#"the path "src" is relative (the guest part)"#), "{line}");
    let (_, line) = fail(r#"{"filesystem": {"hide": ["~alice/.ssh"]}}"#);
    assert!(line.contains(r#"at $.filesystem.hide[0]: the path "~alice/.ssh" names another user's home"#));
    let (_, line) = fail(r#"{"filesystem": {"tmpfs": [""]}}"#);
    assert!(line.contains("at $.filesystem.tmpfs[0]: the path is empty; write it from the root"), "{line}");
    let (_, line) = fail(r#"{"filesystem": {"cwd": "src"}}"#);
    assert!(line.contains(r#"at $.filesystem.cwd: the path "src" is relative"#), "{line}");
}

#[test]
fn a_guest_path_given_twice_is_an_error() {
    let (_, line) = fail(r#"{"filesystem": {"ro": ["/data"], "rw": ["/srv:/data/"]}}"#);
    assert_eq!(
        line,
        r#"policy ./bad.json: at $.filesystem.rw[0]: the guest path "/data/" is already given at $.filesystem.ro[0]; keep one of the two entries"#
    );
    let (_, line) = fail(r#"{"filesystem": {"hide": ["~/.ssh"], "tmpfs": ["~/.ssh/"]}}"#);
    assert!(line.contains("at $.filesystem.hide[0]: ") && line.contains("$.filesystem.tmpfs[0]"), "{line}");
    // Different guests for one host are fine.
    parse(r#"{"filesystem": {"ro": ["/data", "/data:/d2"]}}"#, "ok").unwrap();
}

#[test]
fn filesystem_type_errors_say_what_belongs_there() {
    let (_, line) = fail(r#"{"filesystem": {"ro": "/usr"}}"#);
    assert_eq!(
        line,
        r#"policy ./bad.json: at $.filesystem.ro: expected an array of HOST[:GUEST] paths, found the string "/usr"; write an array such as ["/usr", "~/src:/src"]"#
    );
    let (_, line) = fail(r#"{"filesystem": {"hide": [1]}}"#);
    assert!(line.contains("at $.filesystem.hide[0]: expected a path in double quotes, found the integer 1"));
    let (_, line) = fail(r#"{"filesystem": ["/"]}"#);
    assert!(line.contains("at $.filesystem: expected an object, found an array"), "{line}");
    let (_, line) = fail(r#"{"filesystem": {"readonly": []}}"#);
    assert_eq!(
        line,
        r#"policy ./bad.json: at $.filesystem: unknown key "readonly"; the keys allowed here are comment, ro, rw, overlay, tmpfs, hide, cwd"#
    );
}

#[test]
fn untrusted_has_only_its_loopback_and_the_others_keep_the_hosts_network() {
    assert_eq!(load("untrusted").unwrap().network.mode, NetMode::None);
    for name in ["default", "fixed-identity", "reproducible"] {
        assert_eq!(load(name).unwrap().network.mode, NetMode::Host, "{name}");
    }
    // A policy written before the section existed keeps the host's network.
    assert_eq!(parse("{}", "ok").unwrap().network.mode, NetMode::Host);
}

#[test]
fn network_modes_read_and_show_back() {
    for (text, mode) in [("none", NetMode::None), ("host", NetMode::Host), ("nat", NetMode::Nat)] {
        let policy =
            parse(&format!(r#"{{"network": {{"comment": "why", "mode": "{text}"}}}}"#), "ok").unwrap();
        assert_eq!(policy.network.mode, mode);
        assert_eq!(policy.network.comment.as_deref(), Some("why"));
        let shown = policy.to_json_pretty();
        assert!(shown.contains(&format!(r#""mode": "{text}""#)), "{shown}");
        assert_eq!(parse(&shown, "ok").unwrap(), policy);
        assert_eq!(text.parse::<NetMode>(), Ok(mode.clone()));
        assert_eq!(mode.to_string(), text);
    }
    // The mode is always shown, even when the policy did not write it.
    assert!(parse("{}", "ok").unwrap().to_json_pretty().contains(r#""mode": "host""#));
}

#[test]
fn a_host_tap_reads_with_its_address_and_bad_names_are_refused() {
    let text = r#"{"network": {"mode": "tap:tap0", "address": "10.77.0.2/24"}}"#;
    let policy = parse(text, "ok").unwrap();
    assert_eq!(policy.network.mode, NetMode::Tap("tap0".into()));
    assert_eq!(policy.network.mode.to_string(), "tap:tap0");
    assert_eq!(parse(&policy.to_json_pretty(), "ok").unwrap(), policy);
    let (_, line) = fail(r#"{"network": {"mode": "tap:tap0"}}"#);
    assert!(
        line.contains(r#"at $.network: the network mode "tap:tap0" needs the sandbox's address"#),
        "{line}"
    );
    for bad in ["tap", "tap:", "tap:a/b", "tap:a:b", "tap:a b", "tap:..", "tap:sixteen-bytes-xy"] {
        let err = bad.parse::<NetMode>().unwrap_err();
        assert_eq!(err, NetModeError::BadInterfaceName(bad.to_owned()));
        let (policy_err, line) = fail(&format!(r#"{{"network": {{"mode": "{bad}"}}}}"#));
        assert!(
            matches!(&policy_err, PolicyError::Invalid { json_path, .. } if json_path == "$.network.mode"),
            "{line}"
        );
        assert!(line.contains("names no TAP device Linux could have"), "{line}");
        assert!(line.ends_with(r#"write "none" (only the sandbox's own loopback), "host" (the host's network, no isolation), "nat" (a NAT gateway to what --allow names), "wire:PATH" (a port on the switch `cloister hub PATH` runs) or "tap:IFNAME" (an existing TAP device of the host)"#), "{line}");
    }
    assert_eq!("tap:fifteen-bytes15".parse::<NetMode>(), Ok(NetMode::Tap("fifteen-bytes15".into())));
}

#[test]
fn bad_network_modes_name_the_path_and_the_fix() {
    let (_, line) = fail(r#"{"network": {"mode": "bridge"}}"#);
    assert_eq!(
        line,
        r#"policy ./bad.json: at $.network.mode: there is no network mode "bridge" (there are none, host, nat, wire:PATH and tap:IFNAME); write "none" (only the sandbox's own loopback), "host" (the host's network, no isolation), "nat" (a NAT gateway to what --allow names), "wire:PATH" (a port on the switch `cloister hub PATH` runs) or "tap:IFNAME" (an existing TAP device of the host)"#
    );
    // Near misses are not guessed at.
    for near in ["None", "host:", "none:x", "", "wire", "wire:", "nat:x"] {
        assert!(near.parse::<NetMode>().is_err(), "{near:?}");
    }
    let (_, line) = fail(r#"{"network": {"mode": 0}}"#);
    assert!(line.contains(r#"at $.network.mode: expected a network mode in double quotes, "none", "host", "nat", "wire:PATH" or "tap:IFNAME", found the integer 0"#), "{line}");
    let (_, line) = fail(r#"{"network": "none"}"#);
    assert!(line.contains(r#"at $.network: expected an object, found the string "none"; write an object such as {"mode": "none"}"#), "{line}");
    let (_, line) = fail(r#"{"network": {"allow": ["*:443"]}}"#);
    assert!(
        line.contains(
            r#"at $.network.allow: the network mode "host" has no allow-list (only "nat" lets anything out); remove "allow", or write the mode "nat""#
        ),
        "{line}"
    );
    let (_, line) = fail(r#"{"network": {"mode": "nat", "allow": ["10.0.2.2:80", "10.0.2.2"]}}"#);
    assert!(
        line.contains(
            r#"at $.network.allow[1]: the allow-list entry "10.0.2.2" has no port (:PORT); write HOST:PORT"#
        ),
        "{line}"
    );
    let (_, line) = fail(r#"{"network": {"mode": "nat", "allow": "*:80"}}"#);
    assert!(
        line.contains(
            r#"at $.network.allow: expected an array of allow-list entries, found the string "*:80""#
        ),
        "{line}"
    );
    let (_, line) = fail(r#"{"network": {"mode": "nat", "allw": []}}"#);
    assert!(line.contains("the keys allowed here are comment, mode, address, allow"), "{line}");
}

#[test]
fn a_nat_policy_keeps_its_allow_list() {
    let policy =
        parse(r#"{"network": {"mode": "nat", "allow": ["10.0.2.2:8000", "localhost:80", "*:443"]}}"#, "ok")
            .unwrap();
    assert_eq!(policy.network.mode, NetMode::Nat);
    let shown: Vec<String> = policy.network.allow.iter().map(ToString::to_string).collect();
    assert_eq!(shown, ["10.0.2.2:8000", "localhost:80", "*:443"]);
    assert!(policy.to_json_pretty().contains(r#""allow": ["#));
}

#[test]
fn limits_read_show_back_and_default_to_none() {
    assert_eq!(parse("{}", "ok").unwrap().limits, crate::Limits::default());
    let text = r#"{"limits": {"comment": "why", "processes": 64, "memory_bytes": 1073741824,
        "cpu_seconds": 10, "file_size_bytes": 1048576, "open_files": 256, "wall_seconds": 30}}"#;
    let policy = parse(text, "ok").unwrap();
    let limits = &policy.limits;
    assert_eq!(limits.processes, Some(64));
    assert_eq!((limits.memory_bytes, limits.cpu_seconds), (Some(1 << 30), Some(10)));
    assert_eq!(
        (limits.file_size_bytes, limits.open_files, limits.wall_seconds),
        (Some(1 << 20), Some(256), Some(30))
    );
    assert_eq!(parse(&policy.to_json_pretty(), "again").unwrap(), policy);
    assert!(!default_json_mentions_limits(), "an empty section is not shown");
}

fn default_json_mentions_limits() -> bool {
    load("default").unwrap().to_json_pretty().contains("limits")
}

#[test]
fn limit_errors_name_the_path_and_the_fix() {
    let (_, line) = fail(r#"{"limits": {"processes": 0}}"#);
    assert_eq!(
        line,
        "policy ./bad.json: at $.limits.processes: processes 0 is below 1, which no program can run in; \
         write at least 1, or leave the key out for no limit"
    );
    let (_, line) = fail(r#"{"limits": {"open_files": 3}}"#);
    assert!(line.contains("at $.limits.open_files: open_files 3 is below 16"), "{line}");
    let (_, line) = fail(r#"{"limits": {"memory_bytes": "4G"}}"#);
    assert!(
        line.contains("at $.limits.memory_bytes: expected a whole number of bytes, found the string \"4G\""),
        "{line}"
    );
    assert!(line.contains("write a number such as 4294967296"), "{line}");
    let (_, line) = fail(r#"{"limits": {"wall_seconds": -1}}"#);
    assert!(line.contains("at $.limits.wall_seconds: expected a whole number of seconds"), "{line}");
    let (_, line) = fail(r#"{"limits": {"wall_seconds": 99999999999}}"#);
    assert!(line.contains("at $.limits.wall_seconds: wall_seconds 99999999999 is more than"), "{line}");
    let (_, line) = fail(r#"{"limits": {"memory": 1}}"#);
    assert!(
        line.contains(
            "at $.limits: unknown key \"memory\"; the keys allowed here are comment, processes, memory_bytes"
        ),
        "{line}"
    );
}

#[test]
fn untrusted_caps_processes_and_nothing_that_breaks_real_programs() {
    let limits = load("untrusted").unwrap().limits;
    assert!(limits.processes.is_some_and(|n| n >= 1024), "room for make -j: {limits:?}");
    assert_eq!((limits.memory_bytes, limits.cpu_seconds, limits.wall_seconds), (None, None, None));
    assert!(limits.comment.is_some());
}

#[test]
fn a_wire_reads_with_its_address_and_shows_back() {
    let text = r#"{"network": {"mode": "wire:/run/hub.sock", "address": "10.9.0.2/24"}}"#;
    let policy = parse(text, "ok").unwrap();
    assert_eq!(policy.network.mode, NetMode::Wire("/run/hub.sock".into()));
    let address = policy.network.address.unwrap();
    assert_eq!((address.ip, address.prefix_len), ("10.9.0.2".parse().unwrap(), 24));
    assert_eq!(address.netmask(), std::net::Ipv4Addr::new(255, 255, 255, 0));
    let shown = policy.to_json_pretty();
    assert!(
        shown.contains(r#""mode": "wire:/run/hub.sock""#) && shown.contains(r#""address": "10.9.0.2/24""#),
        "{shown}"
    );
    assert_eq!(parse(&shown, "ok").unwrap(), policy);
    assert_eq!("wire:hub".parse::<NetMode>(), Ok(NetMode::Wire("hub".into())));
}

#[test]
fn a_wire_needs_an_address_and_only_a_wire_takes_one() {
    let (_, line) = fail(r#"{"network": {"mode": "wire:/run/hub.sock"}}"#);
    assert!(line.contains(r#"at $.network: the network mode "wire:/run/hub.sock" needs the sandbox's address; add "address""#), "{line}");
    let (_, line) = fail(r#"{"network": {"mode": "none", "address": "10.9.0.2/24"}}"#);
    assert!(line.contains(r#"at $.network.address: the network mode "none" has no address to set (10.9.0.2/24); remove "address""#), "{line}");
    for (bad, problem) in [
        ("10.9.0.2", "has no prefix length"),
        ("10.9.0/24", "is not an IPv4 address"),
        ("10.9.0.2/31", "has a prefix length that is not 1 to 30"),
        ("10.9.0.2/0", "has a prefix length that is not 1 to 30"),
        ("127.0.0.2/8", "is not a host's address"),
        ("10.9.0.0/24", "is its subnet's network or broadcast"),
        ("10.9.0.255/24", "is its subnet's network or broadcast"),
    ] {
        let (_, line) = fail(&format!(r#"{{"network": {{"mode": "wire:/h", "address": "{bad}"}}}}"#));
        assert!(
            line.contains(&format!("at $.network.address: the interface address {bad:?} {problem}")),
            "{line}"
        );
        assert!(line.ends_with(r#"such as "10.9.0.2/24""#), "{line}");
    }
}

#[test]
fn tty_is_a_boolean_shown_only_when_set() {
    let policy = parse(r#"{"comment": "a shell", "tty": true}"#, "ok").unwrap();
    assert!(policy.tty);
    assert!(policy.to_json_pretty().contains(r#""tty": true"#), "{}", policy.to_json_pretty());
    assert!(!parse("{}", "ok").unwrap().to_json_pretty().contains("tty"));
    let (err, line) = fail(r#"{"tty": "yes"}"#);
    assert!(matches!(err, PolicyError::Schema { .. }), "{line}");
    assert_eq!(
        line,
        r#"policy ./bad.json: at $.tty: expected true or false, found the string "yes"; write true to give the program a terminal of its own, relayed by cloister"#
    );
    let (_, line) = fail(r#"{"tty": 1}"#);
    assert!(
        line.starts_with("policy ./bad.json: at $.tty: expected true or false, found the integer 1"),
        "{line}"
    );
}
