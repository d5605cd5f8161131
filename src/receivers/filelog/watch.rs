//! Wakes the tailer when something changes under the directories `include` names (inotify,
//! through the `notify` crate), so that idle files cost nothing between scans. The Collector
//! polls every file every `poll_interval` and spends most of a core on it at 1,000 files
//! (contrib #27404). Where watching is not possible (no such directory, out of inotify
//! watches, another OS) the tailer polls as the Collector does.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use notify::event::{EventKind, ModifyKind};
use notify::{RecursiveMode, Watcher};
use tokio::sync::Notify;

pub struct Watch {
    _watcher: notify::RecommendedWatcher,
    /// Notified on every change.
    pub wake: Arc<Notify>,
    /// Set when files may have appeared, gone or been renamed: the patterns must be expanded
    /// again (a write alone only needs the open files read).
    pub rescan: Arc<AtomicBool>,
}

impl Watch {
    /// Watches the fixed directory each pattern starts with; `None`, with the reason, when one
    /// cannot be watched.
    pub fn start(patterns: &[glob::Pattern]) -> Result<Watch, String> {
        let wake = Arc::new(Notify::new());
        let rescan = Arc::new(AtomicBool::new(false));
        let (w, r) = (Arc::clone(&wake), Arc::clone(&rescan));
        let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            let structural = match res {
                // Opening and reading (the scans' own, too) change nothing to read.
                Ok(event) if matches!(event.kind, EventKind::Access(_)) => return,
                Ok(event) => matches!(
                    event.kind,
                    EventKind::Create(_)
                        | EventKind::Remove(_)
                        | EventKind::Modify(ModifyKind::Name(_))
                        | EventKind::Any
                        | EventKind::Other
                ),
                // Lost events (a full queue): look at everything again.
                Err(_) => true,
            };
            if structural {
                r.store(true, Ordering::Release);
            }
            w.notify_one();
        })
        .map_err(|e| e.to_string())?;
        let mut roots: Vec<PathBuf> = patterns.iter().map(|p| root(p.as_str())).collect();
        roots.sort();
        roots.dedup();
        for dir in &roots {
            watcher
                .watch(dir, RecursiveMode::Recursive)
                .map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        Ok(Watch {
            _watcher: watcher,
            wake,
            rescan,
        })
    }

    /// Whether the patterns must be expanded again; clears the flag.
    pub fn take_rescan(&self) -> bool {
        self.rescan.swap(false, Ordering::AcqRel)
    }
}

/// The directory a pattern's fixed part names: `/var/log/pods/*/*/*.log` -> `/var/log/pods`.
fn root(pattern: &str) -> PathBuf {
    let fixed = pattern
        .find(['*', '?', '[', '{'])
        .map_or(pattern, |i| &pattern[..i]);
    let dir = match fixed.rfind('/') {
        Some(0) => "/",
        Some(i) => &fixed[..i],
        None => ".",
    };
    Path::new(dir).to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pattern_is_watched_from_its_fixed_directory() {
        assert_eq!(root("/var/log/pods/*/*/*.log"), Path::new("/var/log/pods"));
        assert_eq!(root("/var/log/app.log"), Path::new("/var/log"));
        assert_eq!(root("/var/log/a?p/x.log"), Path::new("/var/log"));
        assert_eq!(root("/*.log"), Path::new("/"));
    }
}
