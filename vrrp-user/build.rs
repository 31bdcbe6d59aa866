//! Embeds the XDP object built by `cargo xtask build-ebpf`, if it exists.
//!
//! Without it the daemon still builds (so the pure modules can be developed
//! and tested anywhere) but refuses to start, naming the command that fixes it.
use std::{env, path::PathBuf};

fn main() {
    println!("cargo::rustc-check-cfg=cfg(xvrrpd_ebpf)");
    println!("cargo:rerun-if-env-changed=XVRRPD_EBPF_OBJECT");
    let object = env::var_os("XVRRPD_EBPF_OBJECT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
            manifest.join("../target/ebpf/bpfel-unknown-none/release/vrrp-ebpf")
        });
    // The libxdp dispatcher, built beside it (vrrp-ebpf/src/bin/xdp-dispatcher.rs).
    let dispatcher = object.with_file_name("xdp-dispatcher");
    println!("cargo:rerun-if-changed={}", object.display());
    println!("cargo:rerun-if-changed={}", dispatcher.display());
    if object.is_file() && dispatcher.is_file() {
        println!("cargo:rustc-cfg=xvrrpd_ebpf");
        println!("cargo:rustc-env=XVRRPD_EBPF_OBJECT={}", object.display());
        println!(
            "cargo:rustc-env=XVRRPD_DISPATCHER_OBJECT={}",
            dispatcher.display()
        );
    } else {
        println!(
            "cargo:warning=XDP object {} not found: run `cargo xtask build-ebpf` (the daemon will refuse to start without it)",
            object.display()
        );
    }
}
