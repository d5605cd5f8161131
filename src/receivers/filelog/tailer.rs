//! The loop that finds files, reads them, sends what it read and commits offsets as
//! acknowledgements come back. It runs on its own thread (file reads block) and waits on the
//! runtime for acknowledgements.
//!
//! - Finding: the `include` patterns are expanded (minus `exclude`) when inotify reports a file
//!   created, renamed or removed (at most once per `poll_interval`), and every 10 s in case an
//!   event was missed; without inotify, every `poll_interval`. Writes wake the loop to
//!   read the open files. A file is known by device and inode while it is open (an inode
//!   cannot be reused while a handle holds it), and by its fingerprint across restarts.
//! - Turns: when more files match than `max_concurrent_files`, the ones waiting get turns. A
//!   scan lets go of open files that are idle (read to their end, nothing in flight, no message
//!   half joined), keeping their offsets as checkpoints, and opens waiting files in path order
//!   from where the last turn stopped; a file let go that grows waits for its next turn and
//!   resumes at its offset. While files wait, scans come every `poll_interval`.
//!   `sluice_filelog_waiting_files` and `sluice_filelog_waiting_bytes` say how many wait and
//!   how far behind they are.
//! - Confinement: with `confine_to`, a file whose real path (after every symlink, read from
//!   the opened descriptor, so a link swapped in between is caught) lies outside those
//!   directories is not read, and counted in `sluice_filelog_refused_files_total`.
//! - Rotation: a file no longer matched (kubelet's rename of `0.log` to `0.log.<time>`, or a
//!   deletion) is read through its open handle to the end, then let go. A file shorter than
//!   what was read (copy-truncate) is read again from the start.
//! - Sending: up to `PER_FILE` batches per file and `IN_FLIGHT` in all are in flight; a refused
//!   batch (a full queue, the memory limiter) is put back and reading pauses until the next
//!   round. A failed delivery rewinds the file to its acknowledged offset.
//! - Checkpoints: saved after acknowledgements moved an offset, at most once a round, and once
//!   more after the last acknowledgement at shutdown.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::runtime::Handle;

use super::checkpoint::{Checkpoint, Fingerprint, Store};
use super::file::{Read, Settings, Tracked};
use super::watch::Watch;
use super::{FileLog, MAX_BATCH_RECORDS, StartAt};
use crate::pipeline::{Batch, ConsumeError, Consumer, Metadata, Worker};
use crate::shutdown::Shutdown;
use crate::telemetry::{Counter, Gauge, ReceiverMetrics, Registry};

/// Batches in flight per file, and in all; and the bytes read for those in all, which is what
/// bounds the receiver's memory (a batch shares the buffer it was read into).
const PER_FILE: usize = 4;
const IN_FLIGHT: usize = 1024;
const IN_FLIGHT_BYTES: usize = 16 << 20;
/// How long a file let go must stay unchanged before its last line, unfinished, is taken as
/// it is (the Collector's `force_flush_period`): a runtime may still be writing to a file it
/// just rotated.
const FLUSH_AFTER: Duration = Duration::from_millis(500);
/// How often the patterns are expanded while inotify reports changes, in case it missed one.
const SAFETY_SCAN: Duration = Duration::from_secs(10);
/// Bytes read at once from one file.
const READ_SIZE: usize = 1 << 20;

/// The receiver's own metrics, beside the receiver counters every receiver has.
pub struct Metrics {
    open_files: Gauge,
    bytes_read: Counter,
    lines_read: Counter,
    unparsed: Counter,
    checkpoint_writes: Counter,
    checkpoint_failures: Counter,
    checkpoints_damaged: Counter,
    unacknowledged: Gauge,
    waiting_files: Gauge,
    waiting_bytes: Gauge,
    refused_files: Counter,
}

impl Metrics {
    pub fn new(registry: &Registry, id: &str) -> Metrics {
        let labels = [("receiver", id)];
        Metrics {
            open_files: registry.gauge(
                "otelcol_fileconsumer_open_files",
                "Files the receiver holds open.",
                &labels,
            ),
            bytes_read: registry.counter(
                "sluice_filelog_read_bytes_total",
                "Bytes read from files (again after a refusal or failed delivery).",
                &labels,
            ),
            lines_read: registry.counter(
                "sluice_filelog_read_lines_total",
                "Lines read from files.",
                &labels,
            ),
            unparsed: registry.counter(
                "sluice_filelog_unparsed_lines_total",
                "Lines the container operator could not parse, kept whole.",
                &labels,
            ),
            checkpoint_writes: registry.counter(
                "sluice_filelog_checkpoint_writes_total",
                "Checkpoint files written.",
                &labels,
            ),
            checkpoint_failures: registry.counter(
                "sluice_filelog_checkpoint_write_failures_total",
                "Checkpoint files that could not be written (retried next round).",
                &labels,
            ),
            checkpoints_damaged: registry.counter(
                "sluice_filelog_checkpoints_damaged_total",
                "Checkpoint files found damaged at start and set aside.",
                &labels,
            ),
            unacknowledged: registry.gauge(
                "sluice_filelog_unacknowledged_bytes",
                "Bytes of open files not yet acknowledged by every exporter.",
                &labels,
            ),
            waiting_files: registry.gauge(
                "sluice_filelog_waiting_files",
                "Files matched but waiting for a turn (over max_concurrent_files).",
                &labels,
            ),
            waiting_bytes: registry.gauge(
                "sluice_filelog_waiting_bytes",
                "Bytes of waiting files beyond their last acknowledged offset.",
                &labels,
            ),
            refused_files: registry.counter(
                "sluice_filelog_refused_files_total",
                "Files not read because their real path is outside confine_to.",
                &labels,
            ),
        }
    }
}

pub struct Tailer {
    id: String,
    include: Vec<glob::Pattern>,
    exclude: Vec<glob::Pattern>,
    poll_interval: Duration,
    start_at: StartAt,
    max_files: usize,
    settings: Settings,
    files: Vec<Tracked>,
    /// Checkpoints loaded at start and not yet matched to an open file.
    restored: Vec<Checkpoint>,
    /// Whether any checkpoint existed at start: then every file found is one that appeared
    /// while sluice was down, and is read from its beginning whatever `start_at` says.
    resumed: bool,
    store: Option<Store>,
    worker: Worker,
    receiver: ReceiverMetrics,
    metrics: Metrics,
    first_scan: bool,
    dirty: bool,
    /// Checkpoints are written at most once per `poll_interval` (and once more at the end).
    last_save: Option<Instant>,
    /// Paths of the latest scan, to keep unmatched checkpoints of files still there.
    present: BTreeSet<String>,
    /// Why the checkpoint file was found damaged, until it is set aside.
    damaged: Option<String>,
    /// Files matched but not open at the latest scan (over `max_concurrent_files`): while there
    /// are any, scans come every `poll_interval`, to give them turns and find those that grew.
    not_open: usize,
    /// The last file a turn opened: the next turn starts after it.
    last_turn: Option<std::path::PathBuf>,
    /// Directories a file's real path must lie in (`confine_to`); empty: anywhere.
    confine_to: Vec<std::path::PathBuf>,
    /// Paths refused for confinement, said once each.
    refused: BTreeSet<std::path::PathBuf>,
}

impl Tailer {
    pub fn new(r: FileLog, consumer: Consumer) -> Tailer {
        let (store, restored) = (r.store, r.restored);
        let container = r.cfg.operators.first().map(|op| match op {
            super::Operator::Container {
                add_metadata_from_filepath,
                ..
            } => *add_metadata_from_filepath,
        });
        Tailer {
            // Damaged checkpoints are treated as checkpoints of files all gone: every file
            // found is read from its beginning, so nothing written meanwhile is lost.
            resumed: !restored.is_empty() || r.damaged.is_some(),
            damaged: r.damaged,
            not_open: 0,
            last_turn: None,
            confine_to: r
                .cfg
                .confine_to
                .iter()
                .map(std::path::PathBuf::from)
                .collect(),
            refused: BTreeSet::new(),
            restored,
            store,
            include: r.include,
            exclude: r.exclude,
            poll_interval: r.cfg.poll_interval,
            start_at: r.cfg.start_at,
            max_files: r.cfg.max_concurrent_files,
            settings: Settings {
                fingerprint_size: r.cfg.fingerprint_size,
                max_log_size: r.cfg.max_log_size,
                include_file_name: r.cfg.include_file_name,
                include_file_path: r.cfg.include_file_path,
                container,
                max_batch_records: MAX_BATCH_RECORDS,
                read_size: READ_SIZE.max(r.cfg.max_log_size + (64 << 10)),
            },
            files: Vec::new(),
            worker: consumer.worker(),
            receiver: r.metrics,
            metrics: r.files,
            id: r.id,
            first_scan: true,
            dirty: false,
            last_save: None,
            present: BTreeSet::new(),
        }
    }

    /// Moves a checkpoint file found damaged at build aside, once, before anything is read.
    fn set_aside_damaged(&mut self) {
        let (Some(why), Some(store)) = (self.damaged.take(), &self.store) else {
            return;
        };
        self.metrics.checkpoints_damaged.add(1);
        match store.set_aside() {
            Ok(to) => {
                tracing::warn!(receiver = %self.id, error = %why, moved_to = %to.display(), "checkpoints damaged: set aside; reading every file from its beginning")
            }
            Err(e) => {
                tracing::warn!(receiver = %self.id, error = %why, set_aside = %e, "checkpoints damaged and could not be set aside; reading every file from its beginning, and the next save replaces them")
            }
        }
    }

    pub fn run(mut self, handle: &Handle, shutdown: Shutdown) {
        self.set_aside_damaged();
        // The watcher (inotify, on its own thread) lives as long as this loop.
        let watch = match Watch::start(&self.include) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::info!(receiver = %self.id, reason = %e, "not watching for changes: polling every poll_interval");
                None
            }
        };
        // Watching, a full scan is a safety net for missed events; polling, it is the way
        // changes are found.
        let idle = match watch {
            Some(_) => SAFETY_SCAN.max(self.poll_interval),
            None => self.poll_interval,
        };
        let mut last_scan: Option<Instant> = None;
        tracing::info!(receiver = %self.id, watching = watch.is_some(), "filelog receiver started");
        while !shutdown.is_fired() {
            let since = last_scan.map_or(Duration::MAX, |t| t.elapsed());
            let changed = watch
                .as_ref()
                .is_some_and(|w| w.rescan.load(std::sync::atomic::Ordering::Acquire));
            // Files waiting for a turn are given one every `poll_interval`.
            let turns = self.not_open > 0 && since >= self.poll_interval;
            if since >= idle || turns || (changed && since >= self.poll_interval) {
                if let Some(w) = &watch {
                    w.take_rescan();
                }
                self.scan();
                last_scan = Some(Instant::now());
            }
            let progressed = self.read_all();
            self.settle_all();
            if progressed {
                continue;
            }
            // A rescan held back by the rate limit is due at `poll_interval` after the last. A
            // file renamed away or deleted sends no more events: it is polled until let go.
            let wait = if changed {
                self.poll_interval
                    .saturating_sub(since)
                    .max(Duration::from_millis(1))
            } else if self.dirty || self.not_open > 0 || self.files.iter().any(|f| f.gone) {
                // A checkpoint held back by the rate limit, or a file that sends no events.
                self.poll_interval
            } else {
                idle
            };
            let files = &mut self.files;
            let wake = watch.as_ref().map(|w| Arc::clone(&w.wake));
            handle.block_on(async {
                let mut stop = shutdown.clone();
                let changes = async {
                    match &wake {
                        Some(n) => n.notified().await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.wait() => {}
                    _ = oldest_settled(files) => {}
                    _ = changes => {}
                }
            });
        }
        // Reading stops; what is in flight settles as the exporters drain (or give up at the
        // shutdown deadline), and its offsets are saved.
        while self.files.iter().any(|f| f.in_flight() > 0) {
            let files = &mut self.files;
            handle.block_on(async {
                let _ = tokio::time::timeout(Duration::from_secs(1), oldest_settled(files)).await;
            });
            self.settle_all();
        }
        self.save();
        tracing::info!(receiver = %self.id, "filelog receiver stopped");
    }

    /// Finds the files to read now.
    fn scan(&mut self) {
        let mut paths = BTreeSet::new();
        for pattern in &self.include {
            let Ok(found) = glob::glob(pattern.as_str()) else {
                continue;
            };
            for path in found.flatten() {
                if !self.exclude.iter().any(|x| x.matches_path(&path)) {
                    paths.insert(path);
                }
            }
        }
        for f in &mut self.files {
            f.seen = false;
        }
        let mut waiting = Vec::new();
        let mut waiting_bytes = 0u64;
        let mut not_open = 0usize;
        // Offsets kept for files not open, by device and inode: one look-up per path.
        let offsets: std::collections::HashMap<(u64, u64), u64> = self
            .restored
            .iter()
            .map(|c| ((c.fingerprint.dev, c.fingerprint.ino), c.offset))
            .collect();
        for path in &paths {
            let Ok(meta) = std::fs::metadata(path) else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            if let Some(f) = self
                .files
                .iter_mut()
                .find(|f| f.dev == meta.dev() && f.ino == meta.ino())
            {
                f.seen = true;
                continue;
            }
            not_open += 1;
            // A file let go for another's turn waits only once it has grown.
            let done = offsets.get(&(meta.dev(), meta.ino())).copied();
            if done.is_none_or(|d| meta.len() > d) {
                waiting.push(path);
                waiting_bytes += meta.len().saturating_sub(done.unwrap_or(0));
            }
        }
        let free = self.max_files.saturating_sub(self.files.len());
        if waiting.len() > free {
            self.let_idle_files_go(waiting.len() - free);
        }
        // Turns in path order, from just after the last file a turn opened.
        let start = self
            .last_turn
            .as_ref()
            .map_or(0, |last| waiting.partition_point(|p| *p <= last));
        let order: Vec<&std::path::PathBuf> = waiting[start..]
            .iter()
            .chain(&waiting[..start])
            .copied()
            .collect();
        let mut opened = 0;
        for path in order {
            if self.files.len() >= self.max_files {
                break;
            }
            if self.open(path) {
                opened += 1;
                waiting_bytes =
                    waiting_bytes.saturating_sub(std::fs::metadata(path).map_or(0, |m| m.len()));
                self.last_turn = Some(path.clone());
            }
        }
        let still_waiting = waiting.len().saturating_sub(opened);
        self.not_open = not_open - opened;
        self.metrics.waiting_files.set(still_waiting as i64);
        self.metrics.waiting_bytes.set(if still_waiting == 0 {
            0
        } else {
            waiting_bytes as i64
        });
        for f in &mut self.files {
            if !f.seen && !f.gone {
                tracing::debug!(receiver = %self.id, path = %f.path, "file renamed or deleted: reading it to its end");
                f.gone = true;
            }
        }
        self.present = paths
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        self.first_scan = false;
        self.metrics.open_files.set(self.files.len() as i64);
    }

    /// Lets go of up to `n` open files that are idle, so that waiting files get a turn; each
    /// one's offset is kept as a checkpoint, where its next turn resumes.
    fn let_idle_files_go(&mut self, n: usize) {
        let mut idle: Vec<usize> = (0..self.files.len())
            .filter(|&i| {
                let f = &self.files[i];
                !f.gone && f.in_flight() == 0 && f.read >= f.size_seen && f.finished()
            })
            .collect();
        // The longest quiet first.
        idle.sort_by_key(|&i| self.files[i].changed_at);
        idle.truncate(n);
        idle.sort_unstable_by(|a, b| b.cmp(a));
        for i in idle {
            let f = self.files.swap_remove(i);
            tracing::debug!(receiver = %self.id, path = %f.path, "idle file let go for a waiting one");
            self.restored.push(f.checkpoint());
        }
        self.dirty = true;
    }

    /// Whether the file opened as `file` lies in `confine_to`: its real path, read back from
    /// the descriptor, so that a symlink swapped after any check is still caught.
    fn confined(&self, file: &std::fs::File) -> bool {
        use std::os::fd::AsRawFd;
        if self.confine_to.is_empty() {
            return true;
        }
        let Ok(real) = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())) else {
            return false;
        };
        self.confine_to.iter().any(|root| {
            let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.clone());
            real.starts_with(root)
        })
    }

    /// Opens `path` (refused outside `confine_to`); whether it is now read.
    fn open(&mut self, path: &Path) -> bool {
        if !self.confine_to.is_empty() {
            let allowed = std::fs::File::open(path).is_ok_and(|f| self.confined(&f));
            if !allowed {
                if self.refused.insert(path.to_path_buf()) {
                    self.metrics.refused_files.add(1);
                    tracing::warn!(receiver = %self.id, path = %path.display(), "not reading a file whose real path is outside confine_to");
                }
                return false;
            }
        }
        let restored = &mut self.restored;
        let fresh_at_end = self.first_scan && !self.resumed && self.start_at == StartAt::End;
        let mut matched = false;
        let opened = Tracked::open(
            path,
            &self.settings,
            |fp: &Fingerprint, head: &[u8], len| {
                if let Some(i) = restored
                    .iter()
                    .position(|c| c.fingerprint.same_file(fp.dev, fp.ino, head))
                {
                    matched = true;
                    return restored.swap_remove(i).offset;
                }
                if fresh_at_end { len } else { 0 }
            },
        );
        match opened {
            Ok(f) if !self.confined(f.file()) => {
                // Swapped for a link out of bounds since the check above.
                if self.refused.insert(path.to_path_buf()) {
                    self.metrics.refused_files.add(1);
                    tracing::warn!(receiver = %self.id, path = %path.display(), "not reading a file whose real path is outside confine_to");
                }
                false
            }
            Ok(f) => {
                tracing::debug!(receiver = %self.id, path = %f.path, offset = f.read, resumed = matched, "reading file");
                self.files.push(f);
                self.dirty = true;
                true
            }
            Err(e) => {
                tracing::warn!(receiver = %self.id, path = %path.display(), error = %e, "cannot open file");
                false
            }
        }
    }

    /// Reads and sends what each file has, within the in-flight limits; whether anything was
    /// sent.
    fn read_all(&mut self) -> bool {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let mut progressed = false;
        let mut in_flight: usize = self.files.iter().map(Tracked::in_flight).sum();
        let mut in_flight_bytes: usize = self.files.iter().map(Tracked::in_flight_bytes).sum();
        let mut i = 0;
        while i < self.files.len() {
            let f = &mut self.files[i];
            let size = match f.size() {
                Ok(s) => s,
                Err(_) => {
                    f.gone = true;
                    f.read
                }
            };
            if size != f.size_seen {
                f.size_seen = size;
                f.changed_at = Instant::now();
            }
            let at_end = f.gone && f.changed_at.elapsed() >= FLUSH_AFTER;
            if size < f.read {
                tracing::info!(receiver = %self.id, path = %f.path, "file truncated: reading it again from the start");
                let _ = f.truncated(&self.settings);
                self.dirty = true;
            }
            if f.fingerprint.len < self.settings.fingerprint_size as u64 && size > f.fingerprint.len
            {
                let _ = f.refresh_fingerprint(&self.settings);
            }
            while in_flight < IN_FLIGHT
                && in_flight_bytes < IN_FLIGHT_BYTES
                && f.in_flight() < PER_FILE
            {
                let read = match f.read_batch(&self.settings, size, at_end, now) {
                    Ok(Some(r)) => r,
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(receiver = %self.id, path = %f.path, error = %e, "cannot read file");
                        break;
                    }
                };
                self.metrics.bytes_read.add(read.bytes as u64);
                let bytes = read.bytes;
                self.metrics.lines_read.add(read.lines);
                self.metrics.unparsed.add(read.unparsed);
                match send(&mut self.worker, f, read) {
                    Ok(()) => {
                        progressed = true;
                        in_flight += 1;
                        in_flight_bytes += bytes;
                    }
                    Err(e) => {
                        self.receiver.refused_requests.add(1);
                        tracing::debug!(receiver = %self.id, error = %e, "pipeline refused a batch: reading pauses");
                        return progressed;
                    }
                }
            }
            // A file let go once read to its end and settled.
            if at_end && f.in_flight() == 0 && f.read >= size && f.finished() {
                tracing::debug!(receiver = %self.id, path = %f.path, "file read to its end and let go");
                self.files.swap_remove(i);
                self.dirty = true;
                continue;
            }
            i += 1;
        }
        progressed
    }

    /// Takes in the acknowledgements that came back; saves checkpoints if an offset moved.
    fn settle_all(&mut self) {
        let mut unacked = 0u64;
        for f in &mut self.files {
            let before = f.acked;
            let (delivered, failed) = f.settle();
            if delivered > 0 {
                self.receiver
                    .accepted
                    .of(crate::model::Signal::Logs)
                    .add(delivered);
            }
            if failed > 0 {
                self.receiver
                    .refused
                    .of(crate::model::Signal::Logs)
                    .add(failed);
                tracing::warn!(receiver = %self.id, path = %f.path, records = failed, "delivery failed: reading again from the acknowledged offset");
            }
            if f.acked != before {
                self.dirty = true;
            }
            // The size read_all took this pass: no second fstat per file.
            unacked += f.size_seen.saturating_sub(f.acked);
        }
        self.metrics.unacknowledged.set(unacked as i64);
        self.metrics.open_files.set(self.files.len() as i64);
        if self.dirty
            && self
                .last_save
                .is_none_or(|t| t.elapsed() >= self.poll_interval)
        {
            self.save();
        }
    }

    fn save(&mut self) {
        let Some(store) = &self.store else {
            self.dirty = false;
            return;
        };
        let mut all: Vec<Checkpoint> = self.files.iter().map(Tracked::checkpoint).collect();
        // Checkpoints of files still there but not opened yet (over `max_concurrent_files`).
        all.extend(
            self.restored
                .iter()
                .filter(|c| self.present.contains(&c.path))
                .cloned(),
        );
        self.last_save = Some(Instant::now());
        match store.save(&all) {
            Ok(()) => {
                self.metrics.checkpoint_writes.add(1);
                self.dirty = false;
            }
            Err(e) => {
                self.metrics.checkpoint_failures.add(1);
                tracing::warn!(receiver = %self.id, error = %e, "checkpoint not saved; retrying next round");
            }
        }
    }
}

/// Sends one read batch; on refusal, puts it back.
fn send(worker: &mut Worker, f: &mut Tracked, read: Read) -> Result<(), ConsumeError> {
    let Read {
        batch,
        bytes,
        commit,
        undo,
        ..
    } = read;
    let records = batch.len() as u64;
    if records == 0 {
        // Only fragments of a message still being joined: nothing to wait for.
        f.sent(commit, None, 0, bytes);
        return Ok(());
    }
    match worker.dispatch(Batch::Logs(batch), &Metadata::default(), bytes) {
        Ok(wait) => {
            f.sent(commit, wait.map(|(w, _)| w), records, bytes);
            Ok(())
        }
        Err(e) => {
            f.refused(undo);
            Err(e)
        }
    }
}

/// Resolves when the oldest batch in flight of some file settles (never, if none is).
async fn oldest_settled(files: &mut [Tracked]) {
    match files.iter_mut().find(|f| f.in_flight() > 0) {
        Some(f) => f.oldest_settled().await,
        None => std::future::pending().await,
    }
}
