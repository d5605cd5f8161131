//! The fuzz targets' properties (`fuzz/checks.rs`) over the seed corpus and over every input
//! that once failed (`fuzz/regressions/<target>/<name>`), so that a crash found by
//! `fuzz/run.sh` stays fixed once its input is added there. The fuzzing itself needs nightly
//! and runs outside `cargo test` (`fuzz/run.sh`).

#[path = "../fuzz/checks.rs"]
mod checks;

use std::path::Path;

fn replay(dir: &str) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join(dir);
    let mut n = 0;
    for (target, check) in checks::TARGETS {
        let Ok(files) = std::fs::read_dir(root.join(target)) else {
            continue;
        };
        for f in files {
            let path = f.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let run = std::panic::catch_unwind(|| check(&data));
            assert!(run.is_ok(), "{target}: {} fails", path.display());
            n += 1;
        }
    }
    n
}

#[test]
fn every_seed_and_every_input_that_once_failed_passes_its_targets_check() {
    assert!(
        replay("seeds") >= checks::TARGETS.len(),
        "each target has seeds"
    );
    replay("regressions");
}
