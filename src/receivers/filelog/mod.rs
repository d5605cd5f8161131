//! `filelog`: tails files, configured like the OTel Collector's receiver, with the `container`
//! operator for the logs container runtimes write under `/var/log/pods`.
//!
//! ```yaml
//! extensions:
//!   file_storage: { directory: /var/lib/sluice }   # checkpoints live here
//! receivers:
//!   filelog:
//!     include: [/var/log/pods/*/*/*.log]
//!     exclude: [/var/log/pods/observability_sluice-agent-*/*/*.log]
//!     start_at: end               # or beginning; only for files never seen before
//!     include_file_path: false    # log.file.path
//!     include_file_name: true     # log.file.name
//!     poll_interval: 200ms
//!     fingerprint_size: 1kb
//!     max_log_size: 1MiB
//!     max_concurrent_files: 1024
//!     storage: file_storage
//!     operators:
//!       - type: container         # CRI and docker json-file, detected per line
//!         add_metadata_from_filepath: true
//! ```
//!
//! A file's offset advances only when every exporter has acknowledged the records read from
//! it, and only that offset is checkpointed, so a crash costs duplicates, never losses. While
//! the pipeline refuses (a full queue, the memory limiter), reading pauses. See `tailer` for
//! how files are found, read, rotated and let go.

pub mod checkpoint;
pub mod container;
mod file;
mod tailer;
mod watch;

use std::time::Duration;

use serde::Deserialize;

use crate::component::{Built, Context, LOGS, Spec, Yaml};
use crate::config::{ConfigError, byte_size, check_count, check_duration, decode, duration};
use crate::pipeline::{BoxFuture, Consumer, Receiver, Running, StartError};
use crate::shutdown::Shutdown;
use crate::telemetry::ReceiverMetrics;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Glob patterns of the files to read. Required.
    #[serde(default)]
    pub include: Vec<String>,
    /// Glob patterns of files not to read, even if `include` matches them.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Where to start in a file never seen before: `end` (default) or `beginning`. Files that
    /// appear after the first scan are always read from the beginning.
    #[serde(default)]
    pub start_at: StartAt,
    /// Add `log.file.path`. Default `false`.
    #[serde(default)]
    pub include_file_path: bool,
    /// Add `log.file.name`. Default `true`, as in the Collector.
    #[serde(default = "yes")]
    pub include_file_name: bool,
    /// How often to look for new files and new lines. Default `200ms`.
    #[serde(default = "default_poll", deserialize_with = "duration")]
    pub poll_interval: Duration,
    /// Leading bytes that identify a file (with its device and inode). Default `1kb`.
    #[serde(default = "default_fingerprint", deserialize_with = "byte_size")]
    pub fingerprint_size: usize,
    /// Longest record; a longer line or joined message is split into parts. Default `1MiB`.
    #[serde(default = "default_max_log", deserialize_with = "byte_size")]
    pub max_log_size: usize,
    /// Files open at once. When more match, they take turns: idle open files (read to their
    /// end) are let go, their offsets kept, for waiting ones. Default 1024.
    #[serde(default = "default_max_files")]
    pub max_concurrent_files: usize,
    /// Directories every file read must really be in, after following its symlinks (the
    /// kubelet's `/var/log/containers` links into `/var/log/pods`): a matched path that leads
    /// elsewhere (a link to `/etc/shadow` planted under the include glob) is not read, and is
    /// logged and counted. Default: none, any target is read, as in the Collector; the chart
    /// sets `/var/log/pods` and `/var/log/containers`. A sluice-only setting.
    #[serde(default)]
    pub confine_to: Vec<String>,
    /// A `file_storage` extension to keep checkpoints in. Default: none (offsets are lost on
    /// restart, and `start_at` applies again).
    #[serde(default)]
    pub storage: Option<String>,
    /// What to do when the checkpoint file is damaged (torn, or edited): `set_aside` (default)
    /// moves it aside, logs and counts it, and starts as though every file had appeared while
    /// sluice was down (each is read from its beginning: duplicates, never losses); `fail`
    /// refuses to start, as `sluice validate` then reports. A sluice-only setting: the
    /// Collector's checkpoints live in its storage extension's database.
    #[serde(default)]
    pub on_damaged_checkpoint: OnDamaged,
    #[serde(default)]
    pub operators: Vec<Operator>,
}

#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnDamaged {
    #[default]
    SetAside,
    Fail,
}

#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StartAt {
    #[default]
    End,
    Beginning,
}

/// The operators sluice implements.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Operator {
    /// CRI and docker json-file lines (see `container`).
    Container {
        #[serde(default)]
        id: Option<String>,
        /// Add the pod's namespace, name, uid, container and restart count from the path as
        /// resource attributes. Default `true`, as in the Collector.
        #[serde(default = "yes")]
        add_metadata_from_filepath: bool,
    },
}

fn yes() -> bool {
    true
}

fn default_poll() -> Duration {
    Duration::from_millis(200)
}

fn default_fingerprint() -> usize {
    1000
}

fn default_max_log() -> usize {
    1 << 20
}

fn default_max_files() -> usize {
    1024
}

/// Records one batch holds, at most.
const MAX_BATCH_RECORDS: usize = 8192;

pub struct FileLog {
    id: String,
    cfg: Config,
    include: Vec<glob::Pattern>,
    exclude: Vec<glob::Pattern>,
    /// The checkpoint file, and what it held at build time.
    store: Option<checkpoint::Store>,
    restored: Vec<checkpoint::Checkpoint>,
    /// Why the checkpoint file could not be trusted, when it is to be set aside at start.
    damaged: Option<String>,
    metrics: ReceiverMetrics,
    files: tailer::Metrics,
}

/// The `filelog` receiver type, as the registry lists it.
pub const SPEC: Spec<Box<dyn Receiver>> =
    Spec::new("filelog", LOGS, build, "{include: ['/nonexistent/*.log']}");

pub fn build(ctx: &Context, raw: Yaml) -> Built<Box<dyn Receiver>> {
    let cfg: Config = decode(ctx.path, raw).map_err(|e| vec![e])?;
    let at = |field: &str| format!("{}.{field}", ctx.path);
    let mut errors = Vec::new();
    if cfg.include.is_empty() {
        errors.push(ConfigError::new(
            at("include"),
            "at least one pattern is required",
        ));
    }
    let mut patterns = |field: &str, list: &[String]| -> Vec<glob::Pattern> {
        let mut out = Vec::new();
        for (i, p) in list.iter().enumerate() {
            match glob::Pattern::new(p) {
                Ok(g) if p.starts_with('/') => out.push(g),
                Ok(_) => errors.push(ConfigError::new(
                    format!("{}[{i}]", at(field)),
                    "must be an absolute path",
                )),
                Err(e) => errors.push(ConfigError::new(
                    format!("{}[{i}]", at(field)),
                    e.to_string(),
                )),
            }
        }
        out
    };
    let include = patterns("include", &cfg.include);
    let exclude = patterns("exclude", &cfg.exclude);
    for (i, dir) in cfg.confine_to.iter().enumerate() {
        if !dir.starts_with('/') {
            errors.push(ConfigError::new(
                format!("{}[{i}]", at("confine_to")),
                "must be an absolute path",
            ));
        }
    }
    check_duration(
        &mut errors,
        at("poll_interval"),
        cfg.poll_interval,
        Duration::from_millis(10),
        Duration::from_secs(3600),
    );
    check_count(
        &mut errors,
        at("fingerprint_size"),
        cfg.fingerprint_size as u64,
        16,
        1 << 20,
        "bytes",
    );
    check_count(
        &mut errors,
        at("max_log_size"),
        cfg.max_log_size as u64,
        1024,
        64 << 20,
        "bytes",
    );
    check_count(
        &mut errors,
        at("max_concurrent_files"),
        cfg.max_concurrent_files as u64,
        1,
        1 << 20,
        "",
    );
    if cfg.operators.len() > 1 {
        errors.push(ConfigError::new(
            at("operators"),
            "at most one operator (container) is supported",
        ));
    }
    // The checkpoints are read here (read only), so `sluice validate` reports a damaged file;
    // setting it aside waits for the start.
    let mut restored = Vec::new();
    let mut damaged = None;
    let store = match &cfg.storage {
        None => None,
        Some(id) => match ctx.storage.directory(&at("storage"), id) {
            Ok(dir) => {
                let store = checkpoint::Store::new(dir, &ctx.id.to_string());
                match store.load() {
                    Ok(c) => restored = c,
                    Err(e @ checkpoint::CheckpointError::Corrupt { .. })
                        if cfg.on_damaged_checkpoint == OnDamaged::SetAside =>
                    {
                        tracing::warn!(receiver = %ctx.id, error = %e, "the checkpoints will be set aside at start; every file is read from its beginning");
                        damaged = Some(e.to_string());
                    }
                    Err(e) => errors.push(ConfigError::new(
                        at("storage"),
                        format!("{e}; move it aside to start over from start_at"),
                    )),
                }
                Some(store)
            }
            Err(e) => {
                errors.push(e);
                None
            }
        },
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    let id = ctx.id.to_string();
    Ok(Box::new(FileLog {
        metrics: ReceiverMetrics::new(ctx.telemetry, &id, "file"),
        files: tailer::Metrics::new(ctx.telemetry, &id),
        id,
        cfg,
        include,
        exclude,
        store,
        restored,
        damaged,
    }))
}

impl Receiver for FileLog {
    fn start(
        self: Box<Self>,
        consumer: Consumer,
        shutdown: Shutdown,
    ) -> BoxFuture<Result<Running, StartError>> {
        Box::pin(async move {
            let tailer = tailer::Tailer::new(*self, consumer);
            let handle = tokio::runtime::Handle::current();
            // File reads block: the tailer runs on its own thread, and awaits acknowledgements
            // through the runtime.
            let task = tokio::task::spawn_blocking(move || tailer.run(&handle, shutdown));
            let running: Running = Box::pin(async move {
                let _ = task.await;
            });
            Ok(running)
        })
    }
}
