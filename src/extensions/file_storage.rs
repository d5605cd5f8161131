//! `file_storage`: a directory where components keep state across restarts (the `filelog`
//! receiver's checkpoints), configured like the Collector's extension.
//!
//! ```yaml
//! extensions:
//!   file_storage:
//!     directory: /var/lib/sluice      # must exist and be writable (a hostPath on Kubernetes)
//!     create_directory: false         # true: create it (and its parents) at start
//! service:
//!   extensions: [file_storage]
//! receivers:
//!   filelog: { storage: file_storage, ... }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{Extension, Health};
use crate::component::{Built, Context, NO_SIGNALS, Spec, Yaml};
use crate::config::{ConfigError, decode};
use crate::pipeline::{BoxFuture, Running, StartError};
use crate::shutdown::Shutdown;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The directory. Required.
    #[serde(default)]
    pub directory: String,
    /// Create the directory at start if it is missing. Default `false`, as in the Collector:
    /// a missing directory usually means a missing volume, which should stop the start.
    #[serde(default)]
    pub create_directory: bool,
}

pub struct FileStorage {
    id: String,
    cfg: Config,
}

/// The `file_storage` extension type, as the registry lists it.
pub const SPEC: Spec<Box<dyn Extension>> = Spec::new(
    "file_storage",
    NO_SIGNALS,
    build,
    "{directory: /tmp, create_directory: false}",
);

pub fn build(ctx: &Context, raw: Yaml) -> Built<Box<dyn Extension>> {
    let cfg: Config = decode(ctx.path, raw).map_err(|e| vec![e])?;
    let at = format!("{}.directory", ctx.path);
    if cfg.directory.is_empty() {
        return Err(vec![ConfigError::new(at, "required")]);
    }
    // Read-only checks, so `sluice validate` finds a missing volume; creating it waits for
    // the start.
    if !cfg.create_directory {
        match std::fs::metadata(&cfg.directory) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(vec![ConfigError::new(at, "is not a directory")]),
            Err(e) => {
                return Err(vec![ConfigError::new(
                    at,
                    format!("cannot use {:?}: {e}", cfg.directory),
                )]);
            }
        }
    }
    Ok(Box::new(FileStorage {
        id: ctx.id.to_string(),
        cfg,
    }))
}

impl Extension for FileStorage {
    fn start(
        self: Box<Self>,
        _health: Health,
        mut shutdown: Shutdown,
    ) -> BoxFuture<Result<Running, StartError>> {
        Box::pin(async move {
            if self.cfg.create_directory {
                std::fs::create_dir_all(&self.cfg.directory).map_err(|e| StartError {
                    component: format!("extensions.{}", self.id),
                    message: format!("cannot create {:?}: {e}", self.cfg.directory),
                })?;
            }
            let running: Running = Box::pin(async move { shutdown.wait().await });
            Ok(running)
        })
    }

    fn storage(&self) -> Option<PathBuf> {
        Some(PathBuf::from(&self.cfg.directory))
    }
}

/// The storage extensions a config declares, for components to look up by id at build time.
#[derive(Default)]
pub struct Storages {
    /// Built and listed in `service.extensions`.
    enabled: BTreeMap<String, PathBuf>,
    /// Declared under `extensions` (built or not) but not enabled, or not storage.
    declared: BTreeSet<String>,
}

impl Storages {
    pub const fn new() -> Self {
        Storages {
            enabled: BTreeMap::new(),
            declared: BTreeSet::new(),
        }
    }

    /// Records extension `id`; `enabled` when `service.extensions` lists it.
    pub fn add(&mut self, id: &str, enabled: bool, directory: Option<PathBuf>) {
        match (enabled, directory) {
            (true, Some(d)) => {
                self.enabled.insert(id.to_string(), d);
            }
            _ => {
                self.declared.insert(id.to_string());
            }
        }
    }

    /// The directory of storage extension `id`, named at `path` (`receivers.filelog.storage`).
    pub fn directory(&self, path: &str, id: &str) -> Result<&Path, ConfigError> {
        if let Some(d) = self.enabled.get(id) {
            return Ok(d);
        }
        let why = if self.declared.contains(id) {
            format!(
                "extension {id:?} is not an enabled storage extension: list it in \
                 service.extensions (storage extensions: file_storage)"
            )
        } else {
            format!("extension {id:?} is not declared under extensions")
        };
        Err(ConfigError::new(path, why))
    }
}
