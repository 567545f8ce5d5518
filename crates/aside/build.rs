//! Links `aside` (and `aside-shim`) as position-dependent executables on Linux with glibc.
//!
//! Every command starts this program, so its start is on the path of every `aside run`.
//! A position-independent executable is relocated by the dynamic loader at each start: about
//! 30,000 relocations, which write (and so copy) 0.5 MiB of `.data.rel.ro`. Linked at a fixed
//! address, the linker resolves them once and those pages are shared from the page cache:
//! `aside --version` starts about 0.45 ms sooner (BENCHMARKS.md). The code is still compiled
//! position-independent, and shared libraries, the stack and the heap are still placed at
//! random; only the executable's own addresses are fixed.

fn main() {
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    let gnu = std::env::var("CARGO_CFG_TARGET_ENV").is_ok_and(|env| env == "gnu");
    if linux && gnu {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
