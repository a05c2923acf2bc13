//! What the benchmarks that run flowmesh processes share: child processes that die with the
//! benchmark, free loopback ports, the `flowmesh` binary, and numeric arguments.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};

/// Kills its processes when dropped, so a failed run leaves no cluster behind.
#[derive(Default)]
pub(crate) struct Children(pub(crate) Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A port on 127.0.0.1 that was free a moment ago (the nodes must know each other's before
/// they start).
pub(crate) fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port on 127.0.0.1: {e}"))
}

/// The `flowmesh` binary: `$FLOWMESH_BIN`, or the one built next to the benchmark; `make` names
/// the target that builds it.
pub(crate) fn flowmesh_binary(make: &str) -> Result<PathBuf, String> {
    if let Ok(path) = std::env::var("FLOWMESH_BIN") {
        return Ok(PathBuf::from(path));
    }
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let sibling = me.with_file_name("flowmesh");
    if sibling.exists() {
        return Ok(sibling);
    }
    Err(format!(
        "{} not found: build it first (`cargo build --release --bin flowmesh`, which `make {make}` does) or set FLOWMESH_BIN",
        sibling.display()
    ))
}

/// Starts `bin args` (a flowmesh process, logging warnings to `log`), owned by `children`;
/// its process id.
pub(crate) fn spawn(
    bin: &Path,
    args: &[&str],
    log: &Path,
    children: &mut Children,
) -> Result<u32, String> {
    let log = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let child = Command::new(bin)
        .args(args)
        .env("FLOWMESH_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let pid = child.id();
    children.0.push(child);
    Ok(pid)
}

/// A one-node control plane in `dir`, its writes guarded by `token` (written to `dir/token`);
/// its port. The control-plane benchmark starts its own three-node cluster instead.
#[allow(dead_code)]
pub(crate) fn control_plane(
    bin: &Path,
    dir: &Path,
    token: &str,
    children: &mut Children,
) -> Result<u16, String> {
    let token_file = dir.join("token");
    std::fs::write(&token_file, token).map_err(|e| format!("{}: {e}", token_file.display()))?;
    let port = free_port()?;
    spawn(
        bin,
        &[
            "control-plane",
            "--id",
            "1",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
            &dir.join("control-plane").display().to_string(),
            "--token-file",
            &token_file.display().to_string(),
        ],
        &dir.join("control-plane.log"),
        children,
    )?;
    Ok(port)
}

/// `NAME N` from the command line (a whole number above 0; `default` when absent), or the
/// exit code for a bad value.
pub(crate) fn number_arg(args: &[String], name: &str, default: u64) -> Result<u64, ExitCode> {
    match args.iter().position(|a| a == name) {
        Some(i) => match args.get(i + 1).and_then(|s| s.parse::<u64>().ok()) {
            Some(n) if n > 0 => Ok(n),
            _ => {
                eprintln!("{name} needs a whole number above 0");
                Err(ExitCode::from(2))
            }
        },
        None => Ok(default),
    }
}
