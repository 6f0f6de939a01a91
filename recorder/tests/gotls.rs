//! Go programs' binaries as the recorder reads them for the Go TLS probes
//! (`juno_record::gotls`): real Go programs built here with Debian's Go (scripts/setup.sh
//! installs golang-go), read back and checked against `go tool nm` and the file's bytes.
#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

use std::path::{Path, PathBuf};
use std::process::Command;

use juno_record::gotls::{self, NotProbed};

const CLIENT: &str = r#"package main

import (
	"crypto/tls"
	"fmt"
	"os"
)

func main() {
	c, err := tls.Dial("tcp", os.Args[1], &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	c.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
	b := make([]byte, 100)
	n, _ := c.Read(b)
	fmt.Println(n)
}
"#;

const NO_TLS: &str = "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(1) }\n";

fn go_build(dir: &Path, name: &str, src: &str, args: &[&str]) -> PathBuf {
    let file = dir.join(format!("{name}.go"));
    std::fs::write(&file, src).unwrap();
    let out = dir.join(name);
    let st = Command::new("go")
        .arg("build")
        .args(args)
        .arg("-o")
        .arg(&out)
        .arg(&file)
        .current_dir(dir)
        .env("HOME", dir)
        .env("GOCACHE", "/var/cache/juno/go-build")
        .env("GOFLAGS", "-buildvcs=false")
        .status()
        .expect("go (Debian's golang-go, installed by scripts/setup.sh)");
    assert!(st.success(), "go build {name}");
    out
}

/// `go tool nm` addresses of the named symbols.
fn nm(bin: &Path, names: &[&str]) -> Vec<Option<u64>> {
    let out = Command::new("go")
        .args(["tool", "nm"])
        .arg(bin)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    names
        .iter()
        .map(|n| {
            text.lines().find_map(|l| {
                let mut f = l.split_whitespace();
                let addr = u64::from_str_radix(f.next()?, 16).ok()?;
                let _kind = f.next()?;
                (f.next()? == *n).then_some(addr)
            })
        })
        .collect()
}

#[test]
fn a_go_program_is_read_for_its_tls_functions_and_returns() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, args, pie) in [
        ("exe", &[][..], false),
        ("pie", &["-buildmode=pie"][..], true),
    ] {
        let bin = go_build(tmp.path(), name, CLIENT, args);
        let t = gotls::inspect(&bin).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(t.version.starts_with("go1."), "{}", t.version);
        assert_eq!(t.pie, pie, "{name}");
        let want = nm(
            &bin,
            &[
                gotls::GO_WRITE,
                gotls::GO_READ,
                "go.itab.*net.TCPConn,net.Conn",
            ],
        );
        let itab = want[2].or_else(|| nm(&bin, &["go:itab.*net.TCPConn,net.Conn"])[0]);
        assert_eq!(t.itab, itab, "{name}");
        let file = std::fs::read(&bin).unwrap();
        assert_eq!(t.write, want[0].unwrap() - t.base, "{name}");
        let (f, addr) = (&t.read, want[1].unwrap());
        // The entry is the symbol's address as a file offset (the code section maps the
        // file at the first segment's address), and every return offset holds a RET.
        assert_eq!(f.entry, addr - t.base, "{name}");
        assert!(!f.returns.is_empty());
        for r in &f.returns {
            assert!(*r > f.entry && *r < f.entry + 64 * 1024, "{name}");
            assert_eq!(file[*r as usize], 0xc3, "{name}: RET at {r:#x}");
        }
        if pie {
            // The itab of a process is where its map puts the binary.
            let ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&bin).unwrap());
            let maps = format!(
                "7f0000000000-7f0000001000 r--p 00000000 08:01 {ino} {}\n",
                bin.display()
            );
            assert_eq!(
                t.itab_in(&maps, ino),
                Some(0x7f00_0000_0000 - t.base + itab.unwrap())
            );
        }
    }
}

#[test]
fn other_programs_are_not_probed() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = go_build(tmp.path(), "plain", NO_TLS, &[]);
    assert_eq!(gotls::inspect(&plain), Err(NotProbed::NoTls));
    assert_eq!(
        gotls::inspect(Path::new("/bin/true")),
        Err(NotProbed::NotGo)
    );
    let text = tmp.path().join("script.sh");
    std::fs::write(&text, "#!/bin/sh\n").unwrap();
    assert_eq!(gotls::inspect(&text), Err(NotProbed::NotGo));
    assert!(matches!(
        gotls::inspect(&tmp.path().join("missing")),
        Err(NotProbed::Bad(_))
    ));
}
