//! The peers, run as child processes on the same machine in the same run: SpiffWorkflow
//! (Python, from PyPI) and bpmn-engine (Node.js, from npm). Their dependencies are installed
//! on first use into `bench/engine/peers/` (a virtualenv and node_modules, both git-ignored).

use std::path::Path;
use std::process::Command;

pub(crate) struct PeerResult {
    pub(crate) instances: u64,
    pub(crate) pi_per_s: f64,
    pub(crate) all_tasks_ran: bool,
}

fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn parse(stdout: &str) -> Result<PeerResult, String> {
    let line = stdout.lines().last().ok_or("no output")?;
    let v: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("bad output {line:?}: {e}"))?;
    Ok(PeerResult {
        instances: v["instances"].as_u64().unwrap_or(0),
        pi_per_s: v["pi_per_s"].as_f64().unwrap_or(0.0),
        all_tasks_ran: v["all_tasks_ran"].as_bool().unwrap_or(false),
    })
}

pub(crate) fn spiffworkflow(dir: &Path, count: u64) -> Result<PeerResult, String> {
    let peers = dir.join("peers");
    let venv = peers.join(".venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    }
    run(Command::new(&python)
        .args(["-m", "pip", "install", "-q", "-r"])
        .arg(peers.join("requirements.txt")))?;
    let out = run(Command::new(&python)
        .arg(peers.join("spiffworkflow_bench.py"))
        .arg(dir.join("models/three-tasks.spiffworkflow.bpmn"))
        .arg(count.to_string()))?;
    parse(&out)
}

pub(crate) fn bpmn_engine(dir: &Path, count: u64) -> Result<PeerResult, String> {
    let peers = dir.join("peers");
    if !peers.join("node_modules/bpmn-engine").exists() {
        run(Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--silent"])
            .current_dir(&peers))?;
    }
    let out = run(Command::new("node")
        .arg(peers.join("bpmn_engine_bench.mjs"))
        .arg(dir.join("models/three-tasks.bpmn-engine.bpmn"))
        .arg(count.to_string()))?;
    parse(&out)
}
