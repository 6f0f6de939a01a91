//! Archives encrypted at rest (`juno-record --encrypt-to`): one age stream per file, whose
//! plaintext is an ordinary Juno archive. With the identity (`--identity FILE`, an age
//! identity file) the file is decrypted as it is read, chunk by chunk, and read like any
//! archive; without it, reading it is an error that says so.
//!
//! A file cut short (a crash while it was written) decrypts up to its last whole 64 KiB age
//! chunk: what follows is reported like any archive cut short.

use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};

/// The first line of every age file.
pub(crate) const AGE_MAGIC: &[u8] = b"age-encryption.org/v1\n";

/// The identities that can decrypt archives.
#[derive(Default)]
pub struct Identities {
    ids: Vec<Box<dyn age::Identity + Send + Sync>>,
    files: Vec<PathBuf>,
}

impl std::fmt::Debug for Identities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identities")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl Identities {
    /// Reads age identity files (`AGE-SECRET-KEY-1...` lines, as `age-keygen` writes them).
    pub fn load(paths: &[PathBuf]) -> Result<Self> {
        let mut ids: Vec<Box<dyn age::Identity + Send + Sync>> = Vec::new();
        for p in paths {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read identity file {}", p.display()))?;
            let before = ids.len();
            for line in text.lines().map(str::trim) {
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let id: age::x25519::Identity = line.parse().map_err(|e| {
                    anyhow::anyhow!("{}: not an age X25519 identity: {e}", p.display())
                })?;
                ids.push(Box::new(id));
            }
            if ids.len() == before {
                bail!("{}: no identity in it", p.display());
            }
        }
        Ok(Identities {
            ids,
            files: paths.to_vec(),
        })
    }

    /// Whether none was given.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// Where a decrypting reader reports that its file was cut short.
pub(crate) type Warnings = Arc<Mutex<Vec<String>>>;

/// A decrypting reader that ends (instead of failing) where the ciphertext stops
/// authenticating, and says so in `warnings`.
struct Plaintext {
    inner: Box<dyn Read + Send>,
    warnings: Warnings,
    failed: bool,
}

impl Read for Plaintext {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.failed {
            return Ok(0);
        }
        match self.inner.read(buf) {
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                self.failed = true;
                if let Ok(mut w) = self.warnings.lock() {
                    w.push(format!(
                        "encrypted archive cut short or damaged: decrypted up to its last whole chunk ({e})"
                    ));
                }
                Ok(0)
            }
        }
    }
}

/// Decrypts `file` (an age file) with `ids`: the plaintext reader, and where it reports a
/// file cut short.
pub(crate) fn open(
    file: impl Read + Send + 'static,
    ids: &Identities,
    path: &Path,
) -> Result<(Box<dyn Read + Send>, Warnings)> {
    if ids.is_empty() {
        bail!(
            "{}: encrypted (age): give an identity that can read it with --identity FILE",
            path.display()
        );
    }
    let dec = age::Decryptor::new(BufReader::with_capacity(1 << 20, file))
        .map_err(|e| anyhow::anyhow!("{}: not a readable age file: {e}", path.display()))?;
    let reader = dec
        .decrypt(ids.ids.iter().map(|i| i.as_ref() as &dyn age::Identity))
        .map_err(|e| {
            anyhow::anyhow!(
                "{}: cannot decrypt with the identities given ({e})",
                path.display()
            )
        })?;
    let warnings = Arc::new(Mutex::new(Vec::new()));
    Ok((
        Box::new(Plaintext {
            inner: Box::new(reader),
            warnings: warnings.clone(),
            failed: false,
        }),
        warnings,
    ))
}
