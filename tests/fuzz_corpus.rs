//! The fuzz targets' properties (`fuzz/checks.rs`) over the seed corpus and over every input
//! that once failed (`fuzz/regressions/<target>/<name>`), so that a crash found by
//! `fuzz/run.sh` stays fixed once its input is added there. The fuzzing itself needs nightly
//! and runs outside `cargo test` (`fuzz/run.sh`).

#[path = "../fuzz/checks.rs"]
mod checks;

use std::path::Path;

/// Replays every file under `fuzz/<dir>/<target>/`; returns how many each target had.
fn replay(dir: &str) -> Vec<(&'static str, usize)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join(dir);
    let mut counts = Vec::new();
    for (target, check) in checks::TARGETS {
        let mut n = 0;
        if let Ok(files) = std::fs::read_dir(root.join(target)) {
            for f in files {
                let path = f.unwrap().path();
                let data = std::fs::read(&path).unwrap();
                let run = std::panic::catch_unwind(|| check(&data));
                assert!(run.is_ok(), "{target}: {} fails", path.display());
                n += 1;
            }
        }
        counts.push((*target, n));
    }
    counts
}

#[test]
fn every_seed_and_every_input_that_once_failed_passes_its_targets_check() {
    for (target, n) in replay("seeds") {
        assert!(n > 0, "{target} has no seeds in fuzz/seeds/{target}/");
    }
    replay("regressions");
}
