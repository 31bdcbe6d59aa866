//! Test helpers shared by the unit tests.

/// Unit tests that create namespaces, raw sockets or run scripts as other
/// users need root. Without it (a plain `cargo test` as a user) each says so
/// in one line and returns; `cargo xtask test`, which CI runs, needs root.
macro_rules! require_root {
    () => {
        if !nix::unistd::geteuid().is_root() {
            $crate::testing::say_skipped();
            return;
        }
    };
}

pub(crate) use require_root;

/// Written to the stderr handle, not through `eprintln!`, so the test
/// harness's capture does not swallow it.
pub(crate) fn say_skipped() {
    use std::io::Write;
    let name = std::thread::current()
        .name()
        .unwrap_or("a unit test")
        .to_owned();
    let _ = writeln!(
        std::io::stderr(),
        "skipped {name}: needs root (namespaces, raw sockets, setuid); run `cargo xtask test`"
    );
}
