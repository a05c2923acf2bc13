//! What the long-running subcommands (`control-plane`, `proxy`) share: logging to stderr under
//! `$FLOWMESH_LOG`, the runtime, and stopping on SIGINT or SIGTERM.

/// Logs to stderr, filtered by `$FLOWMESH_LOG` or `default_filter`.
pub(crate) fn init_logging(default_filter: &str) {
    let filter = std::env::var("FLOWMESH_LOG").unwrap_or_else(|_| default_filter.to_owned());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Where a runtime's timers tick.
#[derive(Clone, Copy)]
pub(crate) enum Timers {
    /// In the runtime's own time driver.
    Runtime,
    /// On the sidecar's timer thread (`flowmesh_proxy::timer`): the runtime has no time
    /// driver, so waking up for a socket costs no timer bookkeeping.
    Thread,
}

/// A runtime with `threads` workers: 1 is a current-thread runtime (no wake-ups between
/// workers, which cost a sidecar more latency than a second core gives it), 0 one worker per
/// core.
pub(crate) fn runtime(threads: usize, timers: Timers) -> Result<tokio::runtime::Runtime, String> {
    let mut builder = match threads {
        1 => tokio::runtime::Builder::new_current_thread(),
        0 => tokio::runtime::Builder::new_multi_thread(),
        n => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
    };
    match timers {
        Timers::Runtime => builder.enable_all(),
        Timers::Thread => {
            flowmesh_proxy::timer::start()
                .map_err(|e| format!("cannot start the timer thread: {e}"))?;
            builder.enable_io()
        }
    }
    .build()
    .map_err(|e| format!("cannot start the runtime: {e}"))
}

/// Resolves on SIGINT or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}

/// Runs `component` (a long-running subcommand) on a runtime with `threads` workers until it
/// ends; an error is printed as `flowmesh NAME: ...` with exit code 1.
pub(crate) fn block_on<E: std::fmt::Display>(
    name: &str,
    threads: usize,
    timers: Timers,
    component: impl std::future::Future<Output = Result<(), E>>,
) -> std::process::ExitCode {
    let result = match runtime(threads, timers) {
        Ok(r) => r.block_on(component).map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flowmesh {name}: {e}");
            std::process::ExitCode::from(1)
        }
    }
}
