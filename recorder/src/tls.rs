//! The TLS libraries on the node, where the TLS plaintext uprobes go.
//!
//! A uprobe is placed on a file (an inode), not on a process: once a library file is probed,
//! every process that maps it — running or started later — is covered. So the recorder
//! needs each distinct library file once. It finds them in the memory maps of the node's
//! processes (`/proc/PID/maps`, the path read inside the process's own root,
//! `/proc/PID/root/...`, so a container's library is its own file), and among the usual
//! places of the host's libssl (under `/proc/1/root`: the host's, when the recorder runs in
//! a container with the host's process namespace; and under its own root, for a recorder on
//! the host where init's root is out of reach). [`TlsLibs::scan`] is called again every
//! few seconds: it reads the maps only of processes it has not seen yet (a new pid, or a
//! pid that has executed another program since), so a library that arrives with a new
//! container is probed within one scan; the calls its processes made before that are not
//! recorded.
//!
//! Go programs carry their TLS in their own binary ([`crate::gotls`]): a process whose
//! program is a Go binary with `crypto/tls` has that file probed once, and the address that
//! tells its connections' sockets (`*net.TCPConn`'s itab) handed out per process when the
//! binary is position-independent.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::gotls::{self, GoTls, NotProbed};

/// What a scan found that was not handed out before.
#[derive(Debug, Default)]
pub struct Scan {
    /// TLS library files (OpenSSL's libssl and its forks).
    pub libs: Vec<PathBuf>,
    /// Go program files with `crypto/tls`, and what their probes need.
    pub go: Vec<(PathBuf, Arc<GoTls>)>,
    /// Addresses of `*net.TCPConn` itabs in Go processes.
    pub go_itabs: Vec<u64>,
    /// Go programs not probed, and why (each file once).
    pub skipped: Vec<(PathBuf, NotProbed)>,
}

/// Where the host's libssl usually is (Debian/Ubuntu, Fedora/RHEL, Alpine, Arch).
const HOST_CANDIDATES: [&str; 8] = [
    "usr/lib/x86_64-linux-gnu/libssl.so.3",
    "lib/x86_64-linux-gnu/libssl.so.3",
    "usr/lib64/libssl.so.3",
    "usr/lib/libssl.so.3",
    "lib/libssl.so.3",
    "usr/lib/x86_64-linux-gnu/libssl.so.1.1",
    "usr/lib64/libssl.so.1.1",
    "usr/lib/libssl.so.1.1",
];

/// At most this many processes are remembered between scans (a node has far fewer).
const MAX_PIDS: usize = 1 << 20;

/// Whether a mapped file's name is OpenSSL's (or a fork's) libssl: `libssl.so`,
/// `libssl.so.3`, `libssl.so.1.1`, ...
fn is_libssl(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name == "libssl.so" || name.starts_with("libssl.so.")
}

/// The libssl files a process maps, from its `/proc/PID/maps` text (each once, in order).
pub fn libssl_in_maps(maps: &str) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for line in maps.lines() {
        // address perms offset dev inode path: the path is the sixth field, and may hold
        // spaces; a deleted file is marked " (deleted)" and cannot be probed.
        let mut fields = line.splitn(6, ' ');
        let Some(path) = fields.nth(5).map(str::trim_start) else {
            continue;
        };
        if path.starts_with('/')
            && !path.ends_with(" (deleted)")
            && is_libssl(path)
            && !out.contains(&path)
        {
            out.push(path);
        }
    }
    out
}

/// The libraries found so far and the processes already looked at.
#[derive(Debug)]
pub struct TlsLibs {
    proc: PathBuf,
    /// (device, inode) of every library handed out.
    files: HashSet<(u64, u64)>,
    /// pid → the program it ran when its maps were read (its `exe` link).
    pids: HashMap<u32, PathBuf>,
    host_checked: bool,
    /// (device, inode) of every program file read: Go with `crypto/tls` or not.
    programs: HashMap<(u64, u64), Option<Arc<GoTls>>>,
    /// itab addresses handed out.
    itabs: HashSet<u64>,
}

impl TlsLibs {
    /// A finder over the process file system mounted at `proc` (`/proc`).
    pub fn new(proc: impl Into<PathBuf>) -> Self {
        TlsLibs {
            proc: proc.into(),
            files: HashSet::new(),
            pids: HashMap::new(),
            host_checked: false,
            programs: HashMap::new(),
            itabs: HashSet::new(),
        }
    }

    /// Library and Go program files not handed out before: the host's usual libssl (first
    /// scan only), then those of processes not seen before. Each path opens the file from the
    /// host's point of view (through `/proc/PID/root` or `/proc/PID/exe`).
    pub fn scan(&mut self) -> Scan {
        let mut found = Scan::default();
        if !self.host_checked {
            self.host_checked = true;
            // The host's file system through init's root (the recorder in a container with
            // the host's process namespace), and the recorder's own (on the host, where
            // init's root may be out of reach: a sandbox's init). The same file is handed
            // out once.
            for root in ["1/root", "self/root"] {
                let root = self.proc.join(root);
                for c in HOST_CANDIDATES {
                    self.consider(root.join(c), &mut found.libs);
                }
            }
        }
        let Ok(dir) = std::fs::read_dir(&self.proc) else {
            return found;
        };
        let mut alive = HashMap::new();
        for e in dir.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            if alive.len() >= MAX_PIDS {
                break;
            }
            let base = self.proc.join(pid.to_string());
            // Kernel threads have no exe and map nothing.
            let Ok(exe) = std::fs::read_link(base.join("exe")) else {
                continue;
            };
            if self.pids.get(&pid) != Some(&exe)
                && let Ok(maps) = std::fs::read_to_string(base.join("maps"))
            {
                for p in libssl_in_maps(&maps) {
                    self.consider(
                        base.join("root").join(p.trim_start_matches('/')),
                        &mut found.libs,
                    );
                }
                self.consider_program(base.join("exe"), &maps, &mut found);
            }
            alive.insert(pid, exe);
        }
        self.pids = alive;
        found
    }

    /// A process's program (`exe`, its `/proc/PID/exe`): read once per file; a Go program
    /// with `crypto/tls` is handed out once, and its itab's address in this process.
    fn consider_program(&mut self, exe: PathBuf, maps: &str, found: &mut Scan) {
        let Ok(m) = std::fs::metadata(&exe) else {
            return;
        };
        let key = (m.dev(), m.ino());
        let go = match self.programs.get(&key) {
            Some(go) => go.clone(),
            None => {
                let go = match gotls::inspect(&exe) {
                    Ok(t) => {
                        let t = Arc::new(t);
                        found.go.push((exe.clone(), t.clone()));
                        Some(t)
                    }
                    Err(NotProbed::NotGo | NotProbed::NoTls) => None,
                    Err(why) => {
                        found.skipped.push((exe.clone(), why));
                        None
                    }
                };
                if self.programs.len() < MAX_PIDS {
                    self.programs.insert(key, go.clone());
                }
                go
            }
        };
        if let Some(a) = go.and_then(|t| t.itab_in(maps, m.ino()))
            && self.itabs.insert(a)
        {
            found.go_itabs.push(a);
        }
    }

    fn consider(&mut self, path: PathBuf, found: &mut Vec<PathBuf>) {
        if let Ok(m) = std::fs::metadata(&path)
            && m.is_file()
            && self.files.insert((m.dev(), m.ino()))
        {
            found.push(path);
        }
    }

    /// Library files handed out so far.
    pub fn count(&self) -> usize {
        self.files.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libssl_is_found_in_maps_once_and_deleted_files_are_not() {
        let maps = "\
55d0c000-55d0d000 r--p 00000000 08:01 131 /usr/bin/curl
7f10a000-7f10b000 r--p 00000000 08:01 2410 /usr/lib/x86_64-linux-gnu/libssl.so.3
7f10b000-7f10c000 r-xp 00001000 08:01 2410 /usr/lib/x86_64-linux-gnu/libssl.so.3
7f10c000-7f10d000 r--p 00000000 08:01 2411 /usr/lib/x86_64-linux-gnu/libcrypto.so.3
7f10d000-7f10e000 r-xp 00000000 08:01 2412 /opt/app/lib/libssl.so.1.1 (deleted)
7f10e000-7f10f000 r-xp 00000000 08:01 2413 /opt/my app/libssl.so
7f10f000-7f110000 rw-p 00000000 00:00 0 [heap]
7f110000-7f111000 r-xp 00000000 08:01 2414 /usr/lib/libssl3.so
";
        assert_eq!(
            libssl_in_maps(maps),
            vec![
                "/usr/lib/x86_64-linux-gnu/libssl.so.3",
                "/opt/my app/libssl.so"
            ]
        );
    }

    #[test]
    fn a_scan_hands_out_each_library_file_once() {
        // A fake /proc: two processes mapping the same library through their roots, one
        // mapping another copy; a kernel thread (no exe).
        let d = std::env::temp_dir().join(format!("juno-tls-libs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let lib_dir = d.join("fs/usr/lib");
        std::fs::create_dir_all(&lib_dir).unwrap();
        std::fs::write(lib_dir.join("libssl.so.3"), b"\x7fELF").unwrap();
        std::fs::write(lib_dir.join("libssl.so.1.1"), b"\x7fELF").unwrap();
        let proc = d.join("proc");
        let maps_a = "7f10a000-7f10b000 r-xp 00000000 08:01 1 /usr/lib/libssl.so.3\n";
        let maps_b = "7f10a000-7f10b000 r-xp 00000000 08:01 1 /usr/lib/libssl.so.3\n\
                      7f10b000-7f10c000 r-xp 00000000 08:01 2 /usr/lib/libssl.so.1.1\n";
        for (pid, maps) in [("10", maps_a), ("11", maps_b)] {
            let p = proc.join(pid);
            std::fs::create_dir_all(&p).unwrap();
            std::fs::write(p.join("maps"), maps).unwrap();
            std::os::unix::fs::symlink(d.join("fs"), p.join("root")).unwrap();
            std::os::unix::fs::symlink("/usr/bin/true", p.join("exe")).unwrap();
        }
        std::fs::create_dir_all(proc.join("2")).unwrap();
        let mut libs = TlsLibs::new(&proc);
        let first = libs.scan().libs;
        assert_eq!(first.len(), 2, "{first:?}");
        assert!(first[0].ends_with("libssl.so.3") || first[1].ends_with("libssl.so.3"));
        assert_eq!(libs.count(), 2);
        // Nothing new: the same processes are not read again, and nothing is handed out.
        std::fs::write(proc.join("10/maps"), "garbage that would fail a parse").unwrap();
        assert!(libs.scan().libs.is_empty());
        // A process that executed another program is read again.
        std::fs::remove_file(proc.join("10/exe")).unwrap();
        std::os::unix::fs::symlink("/usr/bin/false", proc.join("10/exe")).unwrap();
        std::fs::write(lib_dir.join("libssl.so"), b"\x7fELF").unwrap();
        std::fs::write(
            proc.join("10/maps"),
            "7f10a000-7f10b000 r-xp 00000000 08:01 3 /usr/lib/libssl.so\n",
        )
        .unwrap();
        let again = libs.scan().libs;
        assert_eq!(again.len(), 1);
        assert!(again[0].ends_with("usr/lib/libssl.so"));
        let _ = std::fs::remove_dir_all(&d);
    }
}
