//! The `sluice` binary: `sluice [--config FILE]` runs, `sluice validate --config FILE` checks,
//! `sluice components` lists the component types.

use std::path::{Path, PathBuf};

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use sluice::config::LogEncoding;
use sluice::service::{self, DEFAULT_CONFIG};

/// mimalloc: per-record attribute vectors and per-request record vectors are allocated and
/// freed at a high rate from many threads; glibc's malloc measured 27 ns per pair here.
/// Wrapped to count live heap bytes for `memory_limiter` (see `sluice::alloc`).
#[global_allocator]
static GLOBAL: sluice::alloc::Counting<mimalloc::MiMalloc> =
    sluice::alloc::Counting::new(mimalloc::MiMalloc);

#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about = "A telemetry gateway: receivers -> processors -> exporters"
)]
struct Cli {
    /// Config file (YAML, OpenTelemetry Collector layout). Without it, the built-in default runs.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Check a config file; print every error with its YAML path and exit 1 if there are any.
    Validate,
    /// List the component types this build has, with the signals each takes.
    Components,
}

fn read_config(path: Option<&Path>) -> anyhow::Result<String> {
    match path {
        Some(p) => {
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))
        }
        None => Ok(DEFAULT_CONFIG.to_string()),
    }
}

/// mimalloc's option numbers (`mi_option_e` in mimalloc.h, v2).
const MI_OPTION_ARENA_EAGER_COMMIT: i32 = 4;

unsafe extern "C" {
    fn mi_option_set(option: i32, value: std::ffi::c_long);
    fn mi_collect(force: bool);
}

/// What the memory limiter calls while refusing: return cached free memory to the OS.
fn release_free_memory() {
    // SAFETY: mimalloc's documented API; safe to call from any thread at any time.
    unsafe { mi_collect(true) }
}

/// Makes mimalloc commit arena memory only as it is used. With eager arena commit (its
/// default on Linux) `tests/overload.rs` peaked ~10 MiB higher, for no throughput gain
/// measured. (A 1 ms purge delay would have saved another ~15 MiB but cost ~25% of
/// throughput: pages are purged and faulted back in at every burst.)
///
/// It runs from `.init_array`, before the Rust runtime's first allocation, because mimalloc
/// reserves its first arena on that allocation and an arena keeps the commit policy it was
/// created with.
extern "C" fn tune_allocator() {
    // SAFETY: plain option setters, called before any other thread exists.
    unsafe {
        mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0);
    }
}

#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static TUNE_ALLOCATOR: extern "C" fn() = tune_allocator;

fn main() -> ExitCode {
    sluice::alloc::mark_installed();
    sluice::alloc::set_release(release_free_memory);
    let cli = Cli::parse();
    if let Some(Command::Components) = cli.command {
        print!("{}", sluice::registry::listing());
        return ExitCode::SUCCESS;
    }
    let text = match read_config(cli.config.as_deref()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let name = cli
        .config
        .as_deref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "<built-in default>".into());
    let svc = match service::load(&text) {
        Ok(s) => s,
        Err(errors) => {
            eprintln!("{name}: {} error(s):", errors.0.len());
            for e in &errors.0 {
                eprintln!("  {e}");
            }
            return ExitCode::FAILURE;
        }
    };
    if let Some(Command::Validate) = cli.command {
        println!("{name}: valid");
        return ExitCode::SUCCESS;
    }
    init_logging(&svc.logs.level, svc.logs.encoding);
    let open_files = sluice::rlimit::raise_open_files();
    tracing::debug!(?open_files, "open-files limit");
    match run(svc) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(level: &str, encoding: LogEncoding) {
    // kube-rs logs every failed request at error level, once per retry; sluice's watches
    // report the same failures themselves, at most once a minute per kind.
    let filter = tracing_subscriber::EnvFilter::new(format!("{level},kube_client=off"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match encoding {
        LogEncoding::Console => builder.init(),
        LogEncoding::Json => builder.json().init(),
    }
}

fn run(svc: service::Service) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("sluice-worker")
        .build()
        .context("cannot start the async runtime")?;
    let served = runtime.block_on(async {
        let stop = async {
            let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops sluice");
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
            tokio::select! {
                _ = term.recv() => tracing::info!("received SIGTERM"),
                _ = tokio::signal::ctrl_c() => tracing::info!("received SIGINT"),
            }
        };
        svc.run(stop).await
    });
    // Everything was drained by now. What may still run on the blocking pool (a password hash
    // being checked, a read from a stalled mount) is not waited for.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    served?;
    Ok(())
}
