//! Links `cloister-rt` as a static, libc-free executable at a fixed address, far from where
//! programs (0x400000, 0x55..., 0x7f...) and their libraries load. The redirect filter trusts
//! the code at this address; it must stay within one 4 GiB-aligned window.

/// Where the runtime's image starts.
const IMAGE_BASE: &str = "0x6f0000000000";

fn main() {
    for arg in [
        "-nostartfiles",
        "-nostdlib",
        "-static",
        "-no-pie",
        &format!("-Wl,--image-base={IMAGE_BASE}"),
        "-Wl,-e,_start",
        "-Wl,--gc-sections",
        "-Wl,--build-id=none",
        "-Wl,-z,noexecstack",
        // No dynamic relocations: nothing would make the RELRO part read-only, and as a
        // segment of its own it costs every image another page fault or two.
        "-Wl,-z,norelro",
    ] {
        println!("cargo:rustc-link-arg-bin=cloister-rt={arg}");
    }
    // The functions every exec'd image runs go first, together (bench/rt-layout says why).
    let hot = std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("hot.ld");
    println!("cargo:rustc-link-arg-bin=cloister-rt=-Wl,-T,{}", hot.display());
    // And the zero-filled data start-up touches, together (bss.ld).
    let bss = hot.with_file_name("bss.ld");
    println!("cargo:rustc-link-arg-bin=cloister-rt=-Wl,-T,{}", bss.display());
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=hot.ld");
    println!("cargo:rerun-if-changed=bss.ld");
}
