//! What a program reads from the processor without a system call, in reproducible mode:
//! `rdtsc`/`rdtscp` answered from the virtual clock (in threads, forked children and after
//! exec), `cpuid` without RDRAND/RDSEED where the host can make `cpuid` fault; a program that
//! makes `rdtsc` fault itself outside reproducible mode; and `cloister doctor`.
//!
//! Natively the same programs run and print the host's counter and CPU bits, so each scenario
//! is checked against what Linux itself does.

use cloister_tests::{both_modes, cloister, compile_c, Mode, Outcome};

/// What monotonic clocks (and the virtual TSC, a 1 GHz counter) read when a sandbox starts.
const VIRTUAL_TSC_BASE: u64 = 100_000_000_000;

/// The TSC readings `cpu.c` prints, in the order the program takes them.
const TSC_FIELDS: [&str; 7] =
    ["tsc1", "tsc2", "rdtscp", "thread_tsc", "child_tsc", "exec_tsc", "after_child_tsc"];

fn u64_field(out: &Outcome, key: &str) -> u64 {
    let value = out.field(key);
    value.parse().unwrap_or_else(|e| panic!("`{key}={value}` is not a counter ({e})\n{out}"))
}

/// The `cloister doctor` line for `name`, and whether it says yes.
fn doctor_says(name: &str) -> bool {
    let out = cloister(&["doctor"]);
    out.success();
    let line = out
        .lines()
        .into_iter()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("`cloister doctor` has no {name} line\n{out}"));
    line[name.len()..].trim_start().starts_with("yes")
}

/// Runs `cpu.c` (linked with `flags`), under cloister with `--reproducible`.
fn run_cpu(mode: Mode, flags: &[&str]) -> Outcome {
    let exe = compile_c("cpu", flags);
    let out = mode.command(&exe).cloister_arg("--reproducible").output();
    out.success();
    out
}

fn reproducible_cpu(mode: Mode, flags: &[&str]) {
    let out = run_cpu(mode, flags);
    let tsc: Vec<u64> = TSC_FIELDS.iter().map(|k| u64_field(&out, k)).collect();
    let cpu_bit = |key: &str| {
        let bit = out.int_field(key);
        assert!(bit == 0 || bit == 1, "`{key}` is not a bit\n{out}");
        bit
    };
    let (rdrand, rdseed) = (cpu_bit("rdrand"), cpu_bit("rdseed"));
    if !mode.is_cloister() {
        return;
    }

    // A virtual 1 GHz counter that only moves when read, through threads, fork and exec.
    assert!(tsc[0] > VIRTUAL_TSC_BASE && tsc[0] < VIRTUAL_TSC_BASE + 1_000_000_000, "not virtual\n{out}");
    assert!(tsc.windows(2).all(|w| w[0] < w[1]), "the virtual counter went back\n{out}");
    assert_eq!(out.int_field("tsc_aux_cpu"), 0, "rdtscp says CPU 0\n{out}");
    let again = run_cpu(mode, flags);
    assert_eq!(out.stdout, again.stdout, "two runs read different counters or CPU bits\n{out}\n{again}");

    // RDRAND/RDSEED are hidden where cpuid can fault, and the host's otherwise.
    let native = Mode::Native.command(compile_c("cpu", flags)).output();
    native.success();
    if doctor_says("CPUID faulting") {
        assert_eq!((rdrand, rdseed), (0, 0), "cpuid still shows RDRAND/RDSEED\n{out}");
    } else {
        assert_eq!(rdrand, native.int_field("rdrand"), "\n{out}\n{native}");
        assert_eq!(rdseed, native.int_field("rdseed"), "\n{out}\n{native}");
    }
}

fn reproducible_cpu_dynamic(mode: Mode) {
    reproducible_cpu(mode, &[]);
}

fn reproducible_cpu_static(mode: Mode) {
    reproducible_cpu(mode, &["-static"]);
}

/// Outside reproducible mode the TSC is the host's, and a program that makes `rdtsc` fault
/// itself gets its SIGSEGV (`si_code` `SI_KERNEL`) in its own handler.
fn program_makes_rdtsc_fault(mode: Mode) {
    let exe = compile_c("cpu", &[]);
    let out = mode.command(&exe).arg("own").output();
    out.success();
    assert_eq!(out.int_field("own_tsc"), 7, "its handler did not answer\n{out}");
    assert_eq!(out.int_field("own_faults"), 1, "\n{out}");
    assert_eq!(out.int_field("own_si_code"), 0x80, "\n{out}");
    assert_eq!(out.int_field("own_mode"), 2, "PR_GET_TSC does not say PR_TSC_SIGSEGV\n{out}");
}

both_modes!(reproducible_cpu_dynamic, reproducible_cpu_static, program_makes_rdtsc_fault);

/// `cloister doctor` exits 0 and says yes or no for each protection, seccomp included.
#[test]
fn doctor_reports() {
    let out = cloister(&["doctor"]);
    out.success();
    assert!(out.stdout.contains("seccomp"), "\n{out}");
    assert!(out.stderr.is_empty(), "\n{out}");
    for name in ["no_new_privs", "SECCOMP_RET_TRAP", "Landlock", "TSC faulting", "CPUID faulting", "vDSO"] {
        assert!(out.lines().iter().any(|l| l.starts_with(name)), "no {name} line\n{out}");
    }
    for line in out.lines() {
        let status = line.split("  ").map(str::trim).filter(|s| !s.is_empty()).nth(1).unwrap_or("");
        assert!(status.starts_with("yes") || status.starts_with("no"), "no yes/no in {line:?}\n{out}");
    }
    // What every sandbox needs, and what this test suite already relies on.
    for name in ["no_new_privs", "seccomp filter", "SECCOMP_RET_TRAP"] {
        assert!(doctor_says(name), "{name}\n{out}");
    }
}
