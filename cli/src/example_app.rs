//! `flowmesh example-app NAME` (hidden): runs one app of `examples/order-fulfillment` so that
//! `flowmesh demo` needs nothing but this binary.

use std::net::SocketAddr;
use std::process::ExitCode;

use flowmesh_example_order_fulfillment::{self as example, Behaviour, Mode, Options};

use crate::service;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// checkout, order, payment, inventory or shipping.
    name: String,
    #[arg(long)]
    listen: SocketAddr,
    /// The local API of the app's sidecar (or later, `PUT /admin/sidecar`).
    #[arg(long)]
    sidecar: Option<String>,
    /// choreography or orchestration.
    #[arg(long, default_value = "choreography")]
    mode: String,
}

pub(crate) fn run(args: Args) -> ExitCode {
    service::init_logging("warn");
    let Some(mode) = Mode::parse(&args.mode) else {
        eprintln!(
            "flowmesh example-app: --mode '{}' is not choreography or orchestration",
            args.mode
        );
        return ExitCode::from(2);
    };
    let options = Options {
        name: args.name,
        listen: args.listen,
        sidecar: args.sidecar,
        mode,
        behaviour: Behaviour::demo(),
    };
    let name = options.name.clone();
    // The demo reads this line to learn the port (the app may listen on port 0).
    let bound = move |addr| eprintln!("flowmesh example-app: {name} listening on {addr}");
    service::block_on(
        "example-app",
        1,
        service::Timers::Runtime,
        example::run(options, bound, service::shutdown_signal()),
    )
}
