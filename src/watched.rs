//! Something made from files (a token, an htpasswd file, a certificate with its key and CA)
//! and made again when they change, so a rotated Kubernetes Secret takes effect without a
//! restart.
//!
//! The files are looked at lazily, by the request (or connection) that finds the last look at
//! least one interval old: one `stat` per file per interval at most, and the same code path in
//! `sluice validate` (which reads them once) and at run time. Files that changed but no longer
//! make a valid value are reported and the previous value stays in force, so a half-written
//! Secret never locks every client out.
//!
//! A look never blocks the request that asked for it: it runs on a thread of its own, and the
//! request goes on with the value in force. A file replaced by a FIFO, a device or a directory
//! is refused without being opened for a blocking read, and a stalled network filesystem or
//! Secrets mount stalls only that thread (no second look starts while it hangs, and shutdown
//! never waits for it). The first read, at build, gives up after [`FIRST_READ_TIMEOUT`].

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

/// How often credential files are looked at, at most.
pub const RECHECK: Duration = Duration::from_secs(1);

/// Files larger than this are refused: secrets and certificates are small, and a mistaken path
/// (a log file, a device) must not be read into memory.
pub const MAX_FILE: u64 = 4 << 20;

/// How long the first read of the files may take before start-up (or `sluice validate`) gives
/// up on them: a stalled mount must not hang the start.
pub const FIRST_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// What identifies one version of a file: a Secret update swaps a symlink, so the inode changes
/// even when the size and time do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

impl Stamp {
    fn of(m: &std::fs::Metadata) -> Stamp {
        use std::os::unix::fs::MetadataExt;
        Stamp {
            modified: m.modified().ok(),
            len: m.len(),
            inode: m.ino(),
        }
    }
}

fn stamp(path: &Path) -> std::io::Result<Stamp> {
    Ok(Stamp::of(&std::fs::metadata(path)?))
}

/// Reads a regular file of at most [`MAX_FILE`] bytes. It is opened without blocking (a FIFO
/// would otherwise wait for a writer) and checked to be a regular file before a byte is read.
fn read_regular(path: &Path) -> Result<(Stamp, Vec<u8>), String> {
    use std::os::unix::fs::OpenOptionsExt;
    let cannot = |e: std::io::Error| format!("cannot read {}: {e}", path.display());
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(cannot)?;
    let m = file.metadata().map_err(cannot)?;
    if !m.file_type().is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    let too_large = |len: u64| {
        format!(
            "{} is {len} bytes; at most {MAX_FILE} are read",
            path.display()
        )
    };
    if m.len() > MAX_FILE {
        return Err(too_large(m.len()));
    }
    let mut contents = Vec::with_capacity(m.len() as usize);
    file.take(MAX_FILE + 1)
        .read_to_end(&mut contents)
        .map_err(cannot)?;
    if contents.len() as u64 > MAX_FILE {
        return Err(too_large(contents.len() as u64));
    }
    Ok((Stamp::of(&m), contents))
}

/// A failure, with the index of the file it concerns (so callers can name its config field).
pub type Failure = (usize, String);

/// Makes the value from the files' contents, in the order given.
pub type Make<T> = Box<dyn Fn(&[Vec<u8>]) -> Result<T, Failure> + Send + Sync>;

pub struct Watched<T> {
    files: Arc<Files<T>>,
    interval: Duration,
    /// Milliseconds after `epoch` when the files are next looked at.
    next_check_ms: AtomicU64,
    epoch: Instant,
}

/// The files, how to make the value, and the value: what a look on its own thread needs.
struct Files<T> {
    paths: Vec<PathBuf>,
    make: Make<T>,
    value: RwLock<Arc<T>>,
    /// The versions `value` came from; also serialises reloads.
    loaded: Mutex<Vec<Option<Stamp>>>,
    /// Set while a look is under way, so a hung one is not joined by more.
    looking: AtomicBool,
}

fn read_all<T>(paths: &[PathBuf], make: &Make<T>) -> Result<(Vec<Option<Stamp>>, T), Failure> {
    let mut stamps = Vec::with_capacity(paths.len());
    let mut contents = Vec::with_capacity(paths.len());
    for (i, path) in paths.iter().enumerate() {
        let (s, c) = read_regular(path).map_err(|e| (i, e))?;
        contents.push(c);
        stamps.push(Some(s));
    }
    let value = make(&contents).map_err(|(i, e)| {
        let file = paths.get(i).map(|p| p.display().to_string());
        (i, format!("{}: {e}", file.unwrap_or_default()))
    })?;
    Ok((stamps, value))
}

/// What [`read_all`] made, with the paths and maker handed back.
type FirstRead<T> = (Vec<PathBuf>, Make<T>, Vec<Option<Stamp>>, T);

/// [`read_all`] on a thread of its own, given up after `timeout` (the thread is left to end
/// by itself whenever the filesystem answers).
fn read_all_within<T: Send + 'static>(
    paths: Vec<PathBuf>,
    make: Make<T>,
    timeout: Duration,
) -> Result<FirstRead<T>, Failure> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let shown = paths.first().map(|p| p.display().to_string());
    let spawned = std::thread::Builder::new()
        .name("sluice-read".into())
        .spawn(move || {
            let read = read_all(&paths, &make);
            let _ = tx.send(read.map(|(stamps, value)| (paths, make, stamps, value)));
        });
    if let Err(e) = spawned {
        return Err((0, format!("cannot start a thread to read the files: {e}")));
    }
    rx.recv_timeout(timeout).unwrap_or_else(|_| {
        Err((
            0,
            format!(
                "reading {} did not finish within {timeout:?} (a stalled mount?)",
                shown.unwrap_or_default()
            ),
        ))
    })
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
        let (paths, make, stamps, value) = read_all_within(paths, make, FIRST_READ_TIMEOUT)?;
        Ok(Watched {
            files: Arc::new(Files {
                paths,
                make,
                value: RwLock::new(Arc::new(value)),
                loaded: Mutex::new(stamps),
                looking: AtomicBool::new(false),
            }),
            interval,
            next_check_ms: AtomicU64::new(interval.as_millis().min(u64::MAX as u128) as u64),
            epoch: Instant::now(),
        })
    }

    /// The value in force. When the files are due a look, one is started on its own thread;
    /// what it finds is used from the next call on.
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
            self.look();
        }
        self.current()
    }

    /// The value in force, without looking at the files.
    pub fn current(&self) -> Arc<T> {
        Arc::clone(&self.files.value.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Starts a look on its own thread, unless one is still under way (a hung filesystem).
    fn look(&self) {
        if self.files.looking.swap(true, Ordering::Acquire) {
            return;
        }
        let files = Arc::clone(&self.files);
        let spawned = std::thread::Builder::new()
            .name("sluice-reload".into())
            .spawn(move || {
                files.reload_if_changed();
                files.looking.store(false, Ordering::Release);
            });
        if let Err(e) = spawned {
            self.files.looking.store(false, Ordering::Release);
            tracing::warn!(error = %e, "cannot start a thread to look at changed files");
        }
    }
}

impl<T> Files<T> {
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

    /// Asks for the value after making the files due a look, until `want` (the look runs on
    /// its own thread) or 5 s.
    fn settles(w: &Watched<String>, want: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            w.next_check_ms.store(0, Ordering::Relaxed);
            let got = w.get().to_string();
            if got == want || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits for the look under way to end.
    fn looked(w: &Watched<String>) {
        while w.files.looking.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(5));
        }
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
        assert_eq!(settles(&w, "two"), "two");
        std::fs::write(dir.join("new"), "  ").unwrap();
        std::fs::rename(dir.join("new"), &path).unwrap();
        w.next_check_ms.store(0, Ordering::Relaxed);
        w.get();
        looked(&w);
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

    fn fifo(path: &Path) {
        let made = std::process::Command::new("mkfifo").arg(path).status();
        assert!(made.unwrap().success());
    }

    #[test]
    fn a_fifo_in_place_of_the_file_is_refused_without_blocking() {
        let dir = std::env::temp_dir().join(format!("sluice-watched-f-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        fifo(&path);
        let e = Watched::load(path.clone(), text).err().unwrap();
        assert!(e.ends_with("token is not a regular file"), "{e}");

        // A good file replaced by a FIFO: the previous value stays, and no caller waits.
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, "one").unwrap();
        let w = Watched::load(path.clone(), text).unwrap();
        std::fs::remove_file(&path).unwrap();
        fifo(&path);
        w.next_check_ms.store(0, Ordering::Relaxed);
        assert_eq!(*w.get(), "one");
        looked(&w);
        assert_eq!(*w.get(), "one");
        // Once it is a file again, it is used.
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, "two").unwrap();
        assert_eq!(settles(&w, "two"), "two");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_look_that_hangs_holds_up_no_caller_and_starts_no_second_look() {
        let dir = std::env::temp_dir().join(format!("sluice-watched-h-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        std::fs::write(&path, "one").unwrap();
        // A maker that blocks stands in for a read from a stalled mount.
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = Mutex::new(gate);
        let first = AtomicBool::new(true);
        let w: Watched<String> = Watched::load(path.clone(), move |b| {
            if !first.swap(false, Ordering::Relaxed) {
                let _ = gate.lock().unwrap().recv();
            }
            text(b)
        })
        .unwrap();
        std::fs::write(&path, "two!").unwrap();
        for _ in 0..3 {
            w.next_check_ms.store(0, Ordering::Relaxed);
            assert_eq!(*w.get(), "one", "answered with the value in force");
        }
        assert!(
            w.files.looking.load(Ordering::Acquire),
            "one look, still hung"
        );
        release.send(()).unwrap();
        looked(&w);
        assert_eq!(*w.get(), "two!");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
