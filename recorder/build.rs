//! Builds the eBPF programs (recorder-ebpf/) for bpfel-unknown-none with aya-build; the object
//! lands in OUT_DIR and src/kernel.rs embeds it.
//!
//! Toolchain: the workspace's (rust-toolchain.toml, exported by rustup as RUSTUP_TOOLCHAIN),
//! or EBPF_TOOLCHAIN. It must share bpf-linker's LLVM major version. On a stable toolchain,
//! `-Z build-std=core` needs RUSTC_BOOTSTRAP=1, which this script sets for the nested build.
//! Set AYA_BUILD_SKIP=1 to skip (the recorder then cannot load its programs).

use std::env;

fn main() -> anyhow::Result<()> {
    println!("cargo::rerun-if-env-changed=EBPF_TOOLCHAIN");
    println!("cargo::rerun-if-env-changed=RUSTUP_TOOLCHAIN");
    println!("cargo::rerun-if-changed=../recorder-ebpf/src");
    println!("cargo::rerun-if-changed=../common/src");
    let toolchain = env::var("EBPF_TOOLCHAIN")
        .or_else(|_| env::var("RUSTUP_TOOLCHAIN"))
        .unwrap_or_else(|_| "1.95.0".to_owned());
    if which_bpf_linker().is_none() {
        anyhow::bail!(
            "bpf-linker not found in PATH: run scripts/setup.sh (it builds bpf-linker against LLVM 22)"
        );
    }
    if !toolchain.starts_with("nightly") && env::var_os("RUSTC_BOOTSTRAP").is_none() {
        set_bootstrap();
    }
    let root_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../recorder-ebpf");
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "juno-record-ebpf",
            root_dir,
            ..Default::default()
        }],
        aya_build::Toolchain::Custom(&toolchain),
    )
}

#[expect(unsafe_code, reason = "env::set_var is unsafe in edition 2024")]
fn set_bootstrap() {
    // SAFETY: build scripts run single-threaded here.
    unsafe { env::set_var("RUSTC_BOOTSTRAP", "1") };
}

fn which_bpf_linker() -> Option<std::path::PathBuf> {
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|d| d.join("bpf-linker"))
        .find(|p| p.is_file())
}
