//! Where each file's delivered offset is kept across restarts: one file per receiver in the
//! `file_storage` directory, replaced atomically (write, fsync, rename, fsync the directory),
//! with a checksum so that a torn or damaged file is reported instead of trusted.
//!
//! The checksum (SHA-1 of the document) catches a write cut short, a disk or filesystem that
//! returns other bytes, and a hand edit that forgot it. It is no proof against a deliberate
//! edit: whoever can write the file can write a matching checksum, so the directory must be
//! writable by sluice alone.
//!
//! The offsets written are those every exporter acknowledged, so after a crash at any moment a
//! restart re-reads at most what was not yet acknowledged: duplicates, never losses.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

/// How a file is recognised: its first bytes (up to `fingerprint_size`) together with its
/// device and inode, so a new file reusing an inode, or a renamed one, is told apart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub dev: u64,
    pub ino: u64,
    /// How many leading bytes `digest` covers (fewer than `fingerprint_size` while the file
    /// is shorter).
    pub len: u64,
    /// SHA-1 of those bytes, hex.
    pub digest: String,
}

impl Fingerprint {
    pub fn of(dev: u64, ino: u64, head: &[u8]) -> Fingerprint {
        Fingerprint {
            dev,
            ino,
            len: head.len() as u64,
            digest: hex(&Sha1::digest(head)),
        }
    }

    /// Whether `now` (the same file's fingerprint taken again, over at least as many bytes)
    /// is this file: same device and inode, and the bytes this one covered unchanged.
    pub fn same_file(&self, dev: u64, ino: u64, head: &[u8]) -> bool {
        self.dev == dev
            && self.ino == ino
            && head.len() as u64 >= self.len
            && hex(&Sha1::digest(&head[..self.len as usize])) == self.digest
    }
}

/// One file's checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Where it was last seen (for people reading the file; identity is the fingerprint).
    pub path: String,
    pub fingerprint: Fingerprint,
    /// Bytes from the start that every exporter has acknowledged.
    pub offset: u64,
}

#[derive(Serialize, Deserialize)]
struct Document {
    version: u32,
    files: Vec<Checkpoint>,
}

const VERSION: u32 = 1;
const CHECKSUM: &str = "sha1 ";

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot read checkpoints {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("checkpoints {path} are damaged ({why}); not trusting them")]
    Corrupt { path: PathBuf, why: String },
    #[error("cannot write checkpoints {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
}

/// The checkpoint file of one receiver.
pub struct Store {
    path: PathBuf,
}

impl Store {
    /// The store of receiver `id` (`filelog/pods`) in `directory`.
    pub fn new(directory: &Path, id: &str) -> Store {
        let name: String = id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        Store {
            path: directory.join(format!("{name}.checkpoints")),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Moves a damaged checkpoint file aside (`<name>.checkpoints.damaged-<unix seconds>`), so
    /// that it can be looked at later and the next save starts a new one. Returns where it went.
    pub fn set_aside(&self) -> Result<PathBuf, CheckpointError> {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let to = self
            .path
            .with_extension(format!("checkpoints.damaged-{secs}"));
        fs::rename(&self.path, &to).map_err(|source| CheckpointError::Write {
            path: self.path.clone(),
            source,
        })?;
        Ok(to)
    }

    /// The checkpoints last saved; none when there is no file yet.
    pub fn load(&self) -> Result<Vec<Checkpoint>, CheckpointError> {
        let text = match fs::read(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(CheckpointError::Read {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        let corrupt = |why: &str| CheckpointError::Corrupt {
            path: self.path.clone(),
            why: why.to_string(),
        };
        // The document, then a last line with its checksum.
        let body_end = text
            .strip_suffix(b"\n")
            .and_then(|t| t.iter().rposition(|&b| b == b'\n'))
            .ok_or_else(|| corrupt("no checksum line"))?;
        let (body, sum) = text.split_at(body_end + 1);
        let sum = std::str::from_utf8(sum)
            .ok()
            .and_then(|s| s.trim_end().strip_prefix(CHECKSUM))
            .ok_or_else(|| corrupt("no checksum line"))?;
        if hex(&Sha1::digest(body)) != sum {
            return Err(corrupt("checksum mismatch"));
        }
        let doc: Document = serde_json::from_slice(body).map_err(|e| corrupt(&e.to_string()))?;
        if doc.version != VERSION {
            return Err(corrupt(&format!("unknown version {}", doc.version)));
        }
        Ok(doc.files)
    }

    /// Replaces the saved checkpoints with `files`, atomically: a crash leaves either the old
    /// file or the new one, whole.
    pub fn save(&self, files: &[Checkpoint]) -> Result<(), CheckpointError> {
        let write_err = |source| CheckpointError::Write {
            path: self.path.clone(),
            source,
        };
        let mut body = serde_json::to_vec(&Document {
            version: VERSION,
            files: files.to_vec(),
        })
        .map_err(|e| write_err(io::Error::other(e)))?;
        body.push(b'\n');
        let sum = format!("{CHECKSUM}{}\n", hex(&Sha1::digest(&body)));
        let tmp = self.path.with_extension("checkpoints.tmp");
        let mut f = File::create(&tmp).map_err(write_err)?;
        f.write_all(&body).map_err(write_err)?;
        f.write_all(sum.as_bytes()).map_err(write_err)?;
        f.sync_all().map_err(write_err)?;
        drop(f);
        fs::rename(&tmp, &self.path).map_err(write_err)?;
        // The rename itself is durable once the directory is.
        if let Some(dir) = self.path.parent() {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(write_err)?;
        }
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("sluice-checkpoint-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn sample() -> Vec<Checkpoint> {
        vec![Checkpoint {
            path: "/var/log/pods/a_b_c/app/0.log".into(),
            fingerprint: Fingerprint::of(2049, 77, b"2024-05-01T10:00:00Z stdout F first"),
            offset: 12345,
        }]
    }

    #[test]
    fn saved_checkpoints_load_back_and_a_missing_file_means_none() {
        let d = dir("roundtrip");
        let store = Store::new(&d, "filelog/pods");
        assert!(store.path().ends_with("filelog_pods.checkpoints"));
        assert_eq!(store.load().unwrap(), []);
        store.save(&sample()).unwrap();
        assert_eq!(store.load().unwrap(), sample());
        store.save(&[]).unwrap();
        assert_eq!(store.load().unwrap(), []);
        assert!(!d.join("filelog_pods.checkpoints.tmp").exists());
    }

    #[test]
    fn a_torn_or_edited_file_is_reported_not_trusted() {
        let d = dir("corrupt");
        let store = Store::new(&d, "filelog");
        store.save(&sample()).unwrap();
        let whole = fs::read(store.path()).unwrap();
        // Cut anywhere: never accepted.
        for cut in [1, whole.len() / 2, whole.len() - 2] {
            fs::write(store.path(), &whole[..cut]).unwrap();
            let err = store.load().unwrap_err();
            assert!(
                matches!(err, CheckpointError::Corrupt { .. }),
                "{cut}: {err}"
            );
        }
        // One offset digit changed: the checksum no longer matches.
        let edited = String::from_utf8(whole.clone())
            .unwrap()
            .replace("12345", "99345");
        fs::write(store.path(), edited).unwrap();
        assert!(
            store
                .load()
                .unwrap_err()
                .to_string()
                .contains("checksum mismatch")
        );
    }

    #[test]
    fn a_damaged_file_is_set_aside_and_the_store_starts_anew() {
        let d = dir("aside");
        let store = Store::new(&d, "filelog");
        fs::write(store.path(), b"{\"version\":1,\"files\":[]}\nsha1 0000\n").unwrap();
        assert!(store.load().is_err());
        let to = store.set_aside().unwrap();
        assert!(
            to.to_str()
                .unwrap()
                .contains("filelog.checkpoints.damaged-"),
            "{to:?}"
        );
        assert!(to.exists());
        assert_eq!(store.load().unwrap(), [], "no file: nothing restored");
        store.save(&sample()).unwrap();
        assert_eq!(store.load().unwrap(), sample());
    }

    #[test]
    fn a_fingerprint_recognises_the_same_file_grown_but_not_another() {
        let head = b"2024-05-01T10:00:00Z stdout F first line";
        let fp = Fingerprint::of(1, 2, &head[..20]);
        assert!(
            fp.same_file(1, 2, head),
            "the file grew past the fingerprint"
        );
        assert!(!fp.same_file(1, 3, head), "another inode");
        assert!(
            !fp.same_file(1, 2, &head[..10]),
            "truncated below the fingerprint"
        );
        assert!(!fp.same_file(1, 2, b"2024-05-01T10:00:01Z stdout F other"));
    }
}
