//! `flowmesh`: the one user-facing binary. It parses arguments and calls the crates; the work
//! happens in them.

mod control_plane;
mod demo;
mod example_app;
mod inject;
mod migrate;
mod proxy;
mod remote;
mod render;
mod service;
mod sidecar;
mod table;
mod validate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// jemalloc instead of the C library's allocator. The sidecar relays Kafka batches of up to
/// megabytes, each through a few buffers; glibc gave such blocks back to the system when they
/// were freed, so every request started on fresh pages: page faults were over a third of the
/// sidecar's CPU while relaying produce requests (90,000 faults per 100,000 records of 1 KiB,
/// `perf record` during bench/kafka). jemalloc keeps freed pages for reuse for a few seconds
/// (then returns them): CPU per produced record fell from 4.2 to 1.4 µs, and a proxied HTTP
/// request takes 8 % fewer instructions. mimalloc did as well on speed but held 8 MiB more
/// when idle and never returned what a burst took.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// A sidecar that tracks, acts on and orchestrates business flows across microservices.
#[derive(Parser)]
#[command(name = "flowmesh", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Validate(validate::Args),
    Render(render::Args),
    MigrateModel(migrate::Args),
    ControlPlane(control_plane::Args),
    Proxy(proxy::Args),
    Deploy(remote::DeployArgs),
    Get(remote::GetArgs),
    Rollout(remote::RolloutArgs),
    Instances(sidecar::InstancesArgs),
    Instance(sidecar::InstanceArgs),
    Publish(sidecar::PublishArgs),
    Signal(sidecar::SignalArgs),
    Incidents(sidecar::IncidentsArgs),
    Resolve(sidecar::ResolveArgs),
    Registry(sidecar::RegistryArgs),
    Modify(sidecar::ModifyArgs),
    Migrate(sidecar::MigrateArgs),
    Inject(inject::Args),
    Demo(demo::Args),
    #[command(hide = true)]
    ExampleApp(example_app::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Validate(args) => validate::run(&args),
        Command::Render(args) => render::run(&args),
        Command::MigrateModel(args) => migrate::run(&args),
        Command::ControlPlane(args) => control_plane::run(args),
        Command::Proxy(args) => proxy::run(&args),
        Command::Deploy(args) => remote::deploy(args),
        Command::Get(args) => remote::get(args),
        Command::Rollout(args) => remote::rollout(args),
        Command::Instances(args) => sidecar::instances(args),
        Command::Instance(args) => sidecar::instance(args),
        Command::Publish(args) => sidecar::publish(args),
        Command::Signal(args) => sidecar::signal(args),
        Command::Incidents(args) => sidecar::incidents(args),
        Command::Resolve(args) => sidecar::resolve(args),
        Command::Registry(args) => sidecar::registry(args),
        Command::Modify(args) => sidecar::modify(args),
        Command::Migrate(args) => sidecar::migrate(args),
        Command::Inject(args) => inject::run(&args),
        Command::Demo(args) => demo::run(args),
        Command::ExampleApp(args) => example_app::run(args),
    }
}
