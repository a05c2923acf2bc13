//! `bench/engine`: completed process instances per second for flowmesh's engine in memory and on
//! redb (every batch fsynced), next to SpiffWorkflow and bpmn-engine running the same model
//! structure in the same run; and start-to-completion latency on redb at a fixed offered rate.
//! Human-readable lines go to stderr; the last line on stdout is one JSON object.
//!
//! Usage: `cargo run --release -p flowmesh-bench-engine [-- --quick]`

mod flowmesh;
mod machine;
mod peers;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let quick = std::env::args().any(|a| a == "--quick");
    let scale = if quick { 10 } else { 1 };
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let three_tasks = include_str!("../models/three-tasks.bpmn");
    let gateway_message = include_str!("../models/gateway-message.bpmn");

    if std::env::args().any(|a| a == "--inmem-only") {
        // For profiling: the in-memory engine alone.
        let r = flowmesh::throughput(three_tasks, flowmesh::Storage::Memory, 200_000 / scale);
        eprintln!(
            "flowmesh in memory, three tasks: {:.0} instances/s",
            r.pi_per_s
        );
        return ExitCode::SUCCESS;
    }
    // All redb files live until the end of the run: deleting one (with the filesystem's online
    // discard) stalls the fsyncs of the next measurement.
    let files = tempfile::tempdir().expect("temp dir");
    let redb = flowmesh::Storage::Redb(files.path());
    let latency = flowmesh::latency(three_tasks, files.path(), 500.0, 10_000 / scale);
    eprintln!(
        "flowmesh on redb at {} instances/s offered: p50 {:.2} ms, p99 {:.2} ms (achieved {:.0}/s)",
        500, latency.p50_ms, latency.p99_ms, latency.achieved_per_s
    );

    let inmem = flowmesh::throughput(three_tasks, flowmesh::Storage::Memory, 200_000 / scale);
    eprintln!(
        "flowmesh in memory, three tasks: {:.0} instances/s",
        inmem.pi_per_s
    );
    let durable = flowmesh::throughput(three_tasks, redb, 20_000 / scale);
    eprintln!(
        "flowmesh on redb (fsync), three tasks: {:.0} instances/s",
        durable.pi_per_s
    );
    let gw_inmem =
        flowmesh::gateway_message(gateway_message, flowmesh::Storage::Memory, 100_000 / scale);
    eprintln!(
        "flowmesh in memory, gateway + message: {:.0} instances/s",
        gw_inmem.pi_per_s
    );
    let gw_durable = flowmesh::gateway_message(gateway_message, redb, 20_000 / scale);
    eprintln!(
        "flowmesh on redb (fsync), gateway + message: {:.0} instances/s",
        gw_durable.pi_per_s
    );

    let spiff = peers::spiffworkflow(&dir, 5_000 / scale);
    match &spiff {
        Ok(r) => eprintln!("SpiffWorkflow, three tasks: {:.0} instances/s", r.pi_per_s),
        Err(e) => eprintln!("SpiffWorkflow: not measured: {e}"),
    }
    let bpmn_engine = peers::bpmn_engine(&dir, 2_000 / scale);
    match &bpmn_engine {
        Ok(r) => eprintln!("bpmn-engine, three tasks: {:.0} instances/s", r.pi_per_s),
        Err(e) => eprintln!("bpmn-engine: not measured: {e}"),
    }

    let all_ran = inmem.all_tasks_ran
        && durable.all_tasks_ran
        && gw_inmem.all_tasks_ran
        && gw_durable.all_tasks_ran;
    let peer = |r: &Result<peers::PeerResult, String>| {
        r.as_ref()
            .map_or(serde_json::Value::Null, |p| p.pi_per_s.into())
    };
    let line = serde_json::json!({
        "model": "start -> three service tasks -> end (second model: exclusive gateway + service task + message catch)",
        "machine": machine::describe(),
        "inmem_pi_per_s": inmem.pi_per_s.round(),
        "durable_pi_per_s": durable.pi_per_s.round(),
        "spiffworkflow_pi_per_s": peer(&spiff),
        "bpmn_engine_pi_per_s": peer(&bpmn_engine),
        "durable_p50_ms_at_500": (latency.p50_ms * 100.0).round() / 100.0,
        "durable_p99_ms_at_500": (latency.p99_ms * 100.0).round() / 100.0,
        "durable_achieved_per_s_at_500": latency.achieved_per_s.round(),
        "gateway_message_inmem_pi_per_s": gw_inmem.pi_per_s.round(),
        "gateway_message_durable_pi_per_s": gw_durable.pi_per_s.round(),
        "instances": {
            "inmem": inmem.instances, "durable": durable.instances,
            "spiffworkflow": spiff.as_ref().map_or(0, |p| p.instances),
            "bpmn_engine": bpmn_engine.as_ref().map_or(0, |p| p.instances),
        },
        "every_instance_ran_every_task": all_ran
            && spiff.as_ref().is_ok_and(|p| p.all_tasks_ran)
            && bpmn_engine.as_ref().is_ok_and(|p| p.all_tasks_ran),
        "threads": 1,
    });
    println!("{line}");
    if all_ran {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
