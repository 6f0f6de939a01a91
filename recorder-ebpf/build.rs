//! Rebuilds the eBPF object when bpf-linker changes (it is not a cargo input).
fn main() {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let linker = dir.join("bpf-linker");
        if linker.is_file() {
            println!("cargo::rerun-if-changed={}", linker.display());
            break;
        }
    }
}
