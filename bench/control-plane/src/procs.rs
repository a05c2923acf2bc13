//! What the benchmarks that run flowmesh processes share: child processes that die with the
//! benchmark, free loopback ports, the `flowmesh` binary, and the `--seconds` argument.

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

/// `--seconds N` from the command line (default 10), or the exit code for a bad value.
pub(crate) fn seconds_arg(args: &[String]) -> Result<u64, ExitCode> {
    match args.iter().position(|a| a == "--seconds") {
        Some(i) => match args.get(i + 1).and_then(|s| s.parse::<u64>().ok()) {
            Some(s) if s > 0 => Ok(s),
            _ => {
                eprintln!("--seconds needs a whole number of seconds above 0");
                Err(ExitCode::from(2))
            }
        },
        None => Ok(10),
    }
}
