//! Something made from files (a token, an htpasswd file, a certificate with its key and CA)
//! and made again when they change, so a rotated Kubernetes Secret takes effect without a
//! restart.
//!
//! The files are looked at lazily, by the request (or connection) that finds the last look at
//! least one interval old: one `stat` per file per interval at most, no task to start or stop,
//! and the same code path in `sluice validate` (which reads them once) and at run time. Files
//! that changed but no longer make a valid value are reported and the previous value stays in
//! force, so a half-written Secret never locks every client out.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

/// How often credential files are looked at, at most.
pub const RECHECK: Duration = Duration::from_secs(1);

/// Files larger than this are refused: secrets and certificates are small, and a mistaken path
/// (a log file, a device) must not be read into memory.
pub const MAX_FILE: u64 = 4 << 20;

/// What identifies one version of a file: a Secret update swaps a symlink, so the inode changes
/// even when the size and time do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp(path: &Path) -> std::io::Result<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path)?;
    Ok(Stamp {
        modified: m.modified().ok(),
        len: m.len(),
        inode: m.ino(),
    })
}

/// A failure, with the index of the file it concerns (so callers can name its config field).
pub type Failure = (usize, String);

/// Makes the value from the files' contents, in the order given.
pub type Make<T> = Box<dyn Fn(&[Vec<u8>]) -> Result<T, Failure> + Send + Sync>;

pub struct Watched<T> {
    paths: Vec<PathBuf>,
    make: Make<T>,
    interval: Duration,
    value: RwLock<Arc<T>>,
    /// Milliseconds after `epoch` when the files are next looked at.
    next_check_ms: AtomicU64,
    epoch: Instant,
    /// The versions `value` came from; also serialises reloads.
    loaded: Mutex<Vec<Option<Stamp>>>,
}

fn read_all<T>(paths: &[PathBuf], make: &Make<T>) -> Result<(Vec<Option<Stamp>>, T), Failure> {
    let mut stamps = Vec::with_capacity(paths.len());
    let mut contents = Vec::with_capacity(paths.len());
    for (i, path) in paths.iter().enumerate() {
        let cannot = |e: std::io::Error| (i, format!("cannot read {}: {e}", path.display()));
        let s = stamp(path).map_err(cannot)?;
        if s.len > MAX_FILE {
            return Err((
                i,
                format!(
                    "{} is {} bytes; at most {MAX_FILE} are read",
                    path.display(),
                    s.len
                ),
            ));
        }
        contents.push(std::fs::read(path).map_err(cannot)?);
        stamps.push(Some(s));
    }
    let value = make(&contents).map_err(|(i, e)| {
        let file = paths.get(i).map(|p| p.display().to_string());
        (i, format!("{}: {e}", file.unwrap_or_default()))
    })?;
    Ok((stamps, value))
}

impl<T: Send + Sync + 'static> Watched<T> {
    /// One file, looked at every [`RECHECK`].
    pub fn load(
        path: PathBuf,
        make: impl Fn(&[u8]) -> Result<T, String> + Send + Sync + 'static,
    ) -> Result<Self, String> {
        Self::load_all(
            vec![path],
            RECHECK,
            Box::new(move |c: &[Vec<u8>]| make(&c[0]).map_err(|e| (0, e))),
        )
        .map_err(|(_, e)| e)
    }

    /// Reads `paths` and makes the value now; the error names the file and what is wrong with
    /// it (never its contents: they may be secret). A caller that must never reload uses
    /// [`current`](Self::current) instead of [`get`](Self::get).
    pub fn load_all(
        paths: Vec<PathBuf>,
        interval: Duration,
        make: Make<T>,
    ) -> Result<Self, Failure> {
        let (stamps, value) = read_all(&paths, &make)?;
        Ok(Watched {
            paths,
            make,
            interval,
            value: RwLock::new(Arc::new(value)),
            next_check_ms: AtomicU64::new(interval.as_millis().min(u64::MAX as u128) as u64),
            epoch: Instant::now(),
            loaded: Mutex::new(stamps),
        })
    }

    /// The value in force, made again first if a file changed since they were last looked at.
    pub fn get(&self) -> Arc<T> {
        let now = self.epoch.elapsed().as_millis() as u64;
        let due = self.next_check_ms.load(Ordering::Relaxed);
        let step = self.interval.as_millis().min(u64::MAX as u128) as u64;
        if now >= due
            && self
                .next_check_ms
                .compare_exchange(
                    due,
                    now.saturating_add(step),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            self.reload_if_changed();
        }
        self.current()
    }

    /// The value in force, without looking at the files.
    pub fn current(&self) -> Arc<T> {
        Arc::clone(&self.value.read().unwrap_or_else(|p| p.into_inner()))
    }

    fn reload_if_changed(&self) {
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        let now: Vec<Option<Stamp>> = self.paths.iter().map(|p| stamp(p).ok()).collect();
        if now.iter().any(Option::is_none) || now == *loaded {
            // Gone for a moment (a Secret's symlink being swapped) or unchanged.
            return;
        }
        match read_all(&self.paths, &self.make) {
            Ok((stamps, value)) => {
                *self.value.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(value);
                *loaded = stamps;
                tracing::info!(file = %self.paths[0].display(), "reloaded after a change on disk");
            }
            Err((_, e)) => {
                // Keep what works; say so once per change, not once per request.
                *loaded = now;
                tracing::warn!(error = %e, "file changed but cannot be used; keeping the previous version");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(b: &[u8]) -> Result<String, String> {
        let s = std::str::from_utf8(b).map_err(|_| "not UTF-8".to_string())?;
        if s.trim().is_empty() {
            return Err("empty".into());
        }
        Ok(s.trim().to_string())
    }

    #[test]
    fn a_changed_file_is_used_and_a_broken_change_keeps_the_old_contents() {
        let dir = std::env::temp_dir().join(format!("sluice-watched-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        std::fs::write(&path, "one\n").unwrap();
        let w = Watched::load(path.clone(), text).unwrap();
        assert_eq!(*w.get(), "one");
        // A Secret update: a new file renamed over the old one.
        std::fs::write(dir.join("new"), "two").unwrap();
        std::fs::rename(dir.join("new"), &path).unwrap();
        w.next_check_ms.store(0, Ordering::Relaxed);
        assert_eq!(*w.get(), "two");
        std::fs::write(dir.join("new"), "  ").unwrap();
        std::fs::rename(dir.join("new"), &path).unwrap();
        w.next_check_ms.store(0, Ordering::Relaxed);
        assert_eq!(*w.get(), "two");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_or_unusable_file_is_an_error_that_names_it_without_its_contents() {
        let e = Watched::load("/nonexistent/token".into(), text)
            .err()
            .unwrap();
        assert!(e.starts_with("cannot read /nonexistent/token"), "{e}");
        let dir = std::env::temp_dir().join(format!("sluice-watched-e-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("t"), [0xff, 0xfe]).unwrap();
        let e = Watched::load(dir.join("t"), text).err().unwrap();
        assert!(e.ends_with("t: not UTF-8"), "{e}");
        let e = Watched::load_all(
            vec![dir.join("t"), "/nonexistent/b".into()],
            RECHECK,
            Box::new(|_| Ok(())),
        )
        .err()
        .unwrap();
        assert_eq!(e.0, 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
