//! The supervisor of one running task (see the `aside-shim` crate); the daemon starts it.

fn main() {
    std::process::exit(aside_shim::main());
}
