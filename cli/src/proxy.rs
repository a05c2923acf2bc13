//! `flowmesh proxy --config FILE.toml`: runs the sidecar until SIGINT or SIGTERM, then drains
//! in-flight requests; with `--check`, only checks the file.

use std::path::PathBuf;
use std::process::ExitCode;

use flowmesh_proxy::Sidecar;
use flowmesh_proxy::config::Config;

use crate::service;

/// Run the sidecar next to one service (every configuration key: docs/configuration.md).
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The sidecar's TOML configuration file.
    #[arg(long, value_name = "FILE.toml")]
    config: PathBuf,
    /// Check the configuration and exit, without starting: prints `FILE: ok (...)` with what
    /// the sidecar would serve, or what is wrong (exit code 2).
    #[arg(long)]
    check: bool,
}

pub(crate) fn run(args: &Args) -> ExitCode {
    service::init_logging("info");
    let config = match Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("flowmesh proxy: {e}");
            return ExitCode::from(2);
        }
    };
    if args.check {
        // The environment's endpoint counts as the start would count it.
        let spans = match config.telemetry.endpoint_in_effect() {
            Ok(Some(endpoint)) => format!("spans to {endpoint}"),
            Ok(None) => "no span export".to_owned(),
            Err(e) => {
                eprintln!("flowmesh proxy: {}: {e}", args.config.display());
                return ExitCode::from(2);
            }
        };
        println!(
            "{}: ok (service {}, inbound {} → app {}, outbound {}, mesh {}, local API {}, {spans})",
            args.config.display(),
            config.service,
            config.listen.inbound,
            config.app.address,
            config.listen.outbound,
            config.listen.mesh,
            config.listen.local
        );
        return ExitCode::SUCCESS;
    }
    let service = config.service.clone();
    let app = config.app.address;
    let threads = config.threads;
    service::block_on("proxy", threads, service::Timers::Thread, async move {
        let sidecar = Sidecar::build(config).await?;
        let handle = sidecar.handle();
        let kafka = handle
            .kafka
            .as_ref()
            .map(|k| format!(", kafka {}", k.bootstrap))
            .unwrap_or_default();
        eprintln!(
            "flowmesh proxy: {service}: inbound {} → app {app}, local API {}{kafka}",
            handle.inbound, handle.local
        );
        sidecar.run(service::shutdown_signal()).await
    })
}
