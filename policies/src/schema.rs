//! The policy schema: the shape of a policy file, as serde types.
//!
//! Every object is strict (`deny_unknown_fields`), every section and every value is optional,
//! and every object may carry a `comment` saying why it is there. This module only describes
//! shapes; the limits on values (a host name's characters, how far a clock may move) are checked
//! afterwards by the `validate` module, and errors are worded by the `error` module with the
//! help of [`field_help`].

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::allow::ALLOW_FIX;
use crate::interface::ADDRESS_FIX;
use crate::limits::Limits;
use crate::network::{Network, NET_MODE_FIX};

/// A parsed, validated policy.
///
/// An empty object `{}` is a valid policy: it runs the program as it is, with only cloister's
/// runtime and security floor.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Free text: why this policy exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The host identity the program sees.
    #[serde(default, deserialize_with = "object")]
    pub identity: Identity,
    /// The clocks the program reads.
    #[serde(default, deserialize_with = "object")]
    pub time: Time,
    /// Where the program's randomness comes from.
    #[serde(default, deserialize_with = "object")]
    pub random: Random,
    /// Reproducible mode: time, randomness, ids, host name and directory order become
    /// virtual and seeded, so that two runs print the same bytes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reproducible: bool,
    /// The filesystem view; absent or empty, the program sees the host's files as they are.
    #[serde(default, deserialize_with = "object", skip_serializing_if = "Filesystem::is_empty")]
    pub filesystem: Filesystem,
    /// The network; absent, the host's (no isolation). Always shown, since it is a choice about
    /// isolation that the reader of a policy should not have to infer.
    #[serde(default, deserialize_with = "object")]
    pub network: Network,
    /// How much of the host the sandbox may use (processes, memory, CPU, file size,
    /// descriptors, wall-clock time); absent, what the launcher was given.
    #[serde(default, deserialize_with = "object", skip_serializing_if = "Limits::is_empty")]
    pub limits: Limits,
    /// A terminal of the program's own: a pseudo-terminal the launcher relays to the user's
    /// terminal (`cloister run --tty`), instead of the user's terminal itself or none.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tty: bool,
}

/// The filesystem view: which host trees the program sees, where, and how.
///
/// `ro`, `rw` and `overlay` entries are `HOST[:GUEST]` (see [`crate::BindSpec`]); `tmpfs`,
/// `hide` and `cwd` are guest paths. Every path is absolute or starts with `~`, which the
/// launcher expands to the home of the user who runs the sandbox. The launcher turns this into
/// the kernel's mount table; a view that does not say what `/` is gets the host's root
/// read-only.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Filesystem {
    /// Free text: why the view is as it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Host trees shown read-only: writes fail with `EROFS`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ro: Vec<String>,
    /// Host trees the program writes to directly.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rw: Vec<String>,
    /// Host trees seen through a private layer that takes the program's writes; what changed
    /// is reported at exit and can be kept (`cloister run --changes DIR`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub overlay: Vec<String>,
    /// Guest directories that start empty and are thrown away after the run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tmpfs: Vec<String>,
    /// Guest paths shown as an empty, read-only directory or file.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hide: Vec<String>,
    /// The guest directory the program starts in; absent, it starts where cloister was started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
}

impl Filesystem {
    /// Whether the section asks for a view at all (a `cwd` alone does not: it only moves the
    /// program's start).
    pub fn has_mounts(&self) -> bool {
        [&self.ro, &self.rw, &self.overlay, &self.tmpfs, &self.hide].iter().any(|v| !v.is_empty())
    }

    /// Whether nothing but perhaps a comment is set.
    pub fn is_empty(&self) -> bool {
        !self.has_mounts() && self.cwd.is_none() && self.comment.is_none()
    }
}

/// The host identity the program sees (`uname`, `gethostname`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Identity {
    /// Free text: why this section is set as it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The host name the program sees; `None` keeps the host's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Processors the program sees (`nproc`, `sched_getaffinity`, `/proc/cpuinfo`) in
    /// reproducible mode; 1 when not given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus: Option<u32>,
}

/// The clocks the program reads.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Time {
    /// Free text: why this section is set as it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Seconds added to every realtime clock; `None` leaves the clocks alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset_seconds: Option<i64>,
    /// Reproducible mode: the virtual clock's start, in seconds since 1970 (default
    /// 946684800, 2000-01-01T00:00:00Z).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epoch_seconds: Option<i64>,
    /// Reproducible mode: sleeps advance the virtual clock without waiting.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fast_sleep: bool,
}

/// Where the program's randomness comes from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Random {
    /// Free text: why this section is set as it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Seed of `getrandom`, `/dev/urandom` and `AT_RANDOM`; `None` leaves randomness to the host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

impl Policy {
    /// The policy as indented JSON, as `cloister policy show` prints it. Absent values are left
    /// out; parsing the text again gives the same policy.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).expect("a policy has only strings and integers")
    }

    /// Copies what the policy decides into the kernel's configuration, leaving the fields a
    /// policy does not own (runtime path, lineage, tracing) as they are.
    pub fn apply_to(&self, config: &mut kernel_host::Config) {
        config.hostname.clone_from(&self.identity.hostname);
        config.time_offset = self.time.offset_seconds;
        config.seed = self.random.seed;
        if self.reproducible {
            let defaults = kernel_host::config::Reproducible::default();
            config.reproducible = Some(kernel_host::config::Reproducible {
                epoch: self.time.epoch_seconds.unwrap_or(defaults.epoch),
                fast_sleep: self.time.fast_sleep,
                cpus: self.identity.cpus.unwrap_or(defaults.cpus),
            });
        }
    }
}

/// A whole policy document: a [`Policy`] that must be written as a JSON object.
pub(crate) struct Document(pub Policy);

impl<'de> Deserialize<'de> for Document {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        object(deserializer).map(Document)
    }
}

/// Deserializes a `T` from a JSON object only. serde's derived structs also accept an array of
/// their values in field order (`["why", "cloister"]`), which would let a policy set fields
/// without naming them; here an array is an error like any other wrong type.
fn object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<T, D::Error> {
    struct ObjectVisitor<T>(PhantomData<T>);

    impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
        type Value = T;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object")
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            T::deserialize(MapAccessDeserializer::new(map))
        }
    }

    deserializer.deserialize_map(ObjectVisitor(PhantomData))
}

/// What a value at a JSON path should be, and how to write one: the words of schema errors.
pub(crate) struct FieldHelp {
    /// What the value should be, e.g. "an integer number of seconds".
    pub expected: &'static str,
    /// How to write one, e.g. "write a whole number such as 3600".
    pub fix: &'static str,
}

/// The [`FieldHelp`] for a path rendered as `$.a.b`, or `None` for a path the schema lacks.
pub(crate) fn field_help(json_path: &str) -> Option<FieldHelp> {
    let (expected, fix) = match json_path {
        "$" => (
            "a JSON object",
            r#"write the policy as an object such as {"identity": {"hostname": "cloister"}}"#,
        ),
        "$.identity" => ("an object", r#"write an object such as {"hostname": "cloister"}"#),
        "$.identity.hostname" => (
            "a host name in double quotes",
            r#"write a name such as "cloister", or leave the key out to keep the host's name"#,
        ),
        "$.time" => ("an object", r#"write an object such as {"offset_seconds": 3600}"#),
        "$.time.offset_seconds" => ("an integer number of seconds", "write a whole number such as 3600"),
        "$.time.epoch_seconds" => {
            ("an integer number of seconds since 1970", "write a whole number such as 946684800")
        }
        "$.time.fast_sleep" => ("true or false", "write true to make sleeps return at once"),
        "$.identity.cpus" => ("a whole number of processors from 1 to 1024", "write a number such as 1"),
        "$.reproducible" => ("true or false", "write true to make the run reproducible"),
        "$.tty" => {
            ("true or false", "write true to give the program a terminal of its own, relayed by cloister")
        }
        "$.random" => ("an object", r#"write an object such as {"seed": 1}"#),
        "$.random.seed" => {
            ("a whole number from 0 to 18446744073709551615", "write a whole number such as 1")
        }
        "$.filesystem" => ("an object", r#"write an object such as {"overlay": ["/"], "tmpfs": ["/tmp"]}"#),
        "$.filesystem.ro" | "$.filesystem.rw" | "$.filesystem.overlay" => {
            ("an array of HOST[:GUEST] paths", r#"write an array such as ["/usr", "~/src:/src"]"#)
        }
        "$.filesystem.tmpfs" | "$.filesystem.hide" => {
            ("an array of paths", r#"write an array such as ["/tmp", "~/.cache"]"#)
        }
        "$.filesystem.cwd" => ("a path in double quotes", r#"write a directory such as "/src""#),
        "$.network" => ("an object", r#"write an object such as {"mode": "none"}"#),
        "$.network.mode" => (
            r#"a network mode in double quotes, "none", "host", "nat", "wire:PATH" or "tap:IFNAME""#,
            NET_MODE_FIX,
        ),
        "$.network.address" => ("an IPv4 address with its prefix length in double quotes", ADDRESS_FIX),
        "$.network.allow" => (
            "an array of allow-list entries",
            r#"write an array such as ["10.0.2.2:8000", "example.com:443"]"#,
        ),
        p if p.starts_with("$.network.allow[") => {
            ("an allow-list entry HOST:PORT in double quotes", ALLOW_FIX)
        }
        "$.limits" => ("an object", r#"write an object such as {"processes": 4096, "wall_seconds": 600}"#),
        "$.limits.processes" => {
            ("a whole number of processes", "write a number such as 4096, or leave the key out for no limit")
        }
        "$.limits.memory_bytes" => (
            "a whole number of bytes",
            "write a number such as 4294967296 (4 GiB), or leave the key out for no limit",
        ),
        "$.limits.cpu_seconds" | "$.limits.wall_seconds" => {
            ("a whole number of seconds", "write a number such as 600, or leave the key out for no limit")
        }
        "$.limits.file_size_bytes" | "$.limits.overlay_bytes" => (
            "a whole number of bytes",
            "write a number such as 1073741824 (1 GiB), or leave the key out for no limit",
        ),
        "$.limits.open_files" => (
            "a whole number of descriptors",
            "write a number such as 1024, or leave the key out for no limit",
        ),
        p if p.starts_with("$.filesystem.") && p.ends_with(']') => {
            ("a path in double quotes", r#"write a path such as "/srv/data" or "~/data""#)
        }
        p if p.ends_with(".comment") => {
            ("a string", r#"write the comment as text in double quotes, such as "why this is here""#)
        }
        _ => return None,
    };
    Some(FieldHelp { expected, fix })
}
