//! flowmesh on the same machine: a control plane (one node) and two sidecars. `app` stands in
//! front of the nginx app (one hop: its inbound port); `client` routes to it through the mesh
//! (two hops: client's outbound → app's mesh → the app).

use std::path::Path;

use crate::procs::{Children, free_port};

const TOKEN: &str = "bench-token";

pub(crate) struct Mesh {
    /// The sidecar in front of the app: its inbound port and process id.
    pub(crate) inbound: u16,
    pub(crate) app_sidecar_pid: u32,
    /// The other sidecar's process id (the first of two hops).
    pub(crate) client_sidecar_pid: u32,
    /// The other sidecar's outbound port.
    pub(crate) outbound: u16,
    /// The flowmesh binary both sidecars run (a plain or a profile-guided release build).
    pub(crate) bin: std::path::PathBuf,
}

fn sidecar(
    bin: &Path,
    dir: &Path,
    service: &str,
    app_port: u16,
    cp_port: u16,
    children: &mut Children,
) -> Result<(u16, u16, u32), String> {
    let (local, inbound, outbound, mesh) = (free_port()?, free_port()?, free_port()?, free_port()?);
    let data = dir.join(format!("sidecar-{service}"));
    let config = dir.join(format!("sidecar-{service}.toml"));
    std::fs::write(
        &config,
        format!(
            "service = \"{service}\"\ndata_dir = \"{}\"\ncontrol_plane = [\"http://127.0.0.1:{cp_port}\"]\ntoken_file = \"{}\"\n\
             [app]\naddress = \"127.0.0.1:{app_port}\"\n\
             [listen]\nlocal = \"127.0.0.1:{local}\"\ninbound = \"127.0.0.1:{inbound}\"\noutbound = \"127.0.0.1:{outbound}\"\nmesh = \"127.0.0.1:{mesh}\"\n\
             [telemetry]\notlp_endpoint = \"none\"\n",
            data.display(),
            dir.join("token").display()
        ),
    )
    .map_err(|e| e.to_string())?;
    let pid = crate::procs::spawn(
        bin,
        &["proxy", "--config", &config.display().to_string()],
        &dir.join(format!("sidecar-{service}.log")),
        children,
    )?;
    Ok((inbound, outbound, pid))
}

pub(crate) fn start(dir: &Path, app_port: u16, children: &mut Children) -> Result<Mesh, String> {
    let bin = crate::procs::flowmesh_binary("bench-proxy")?;
    let cp_port = crate::procs::control_plane(&bin, dir, TOKEN, children)?;
    let (inbound, _, app_sidecar_pid) = sidecar(&bin, dir, "app", app_port, cp_port, children)?;
    let (_, outbound, client_sidecar_pid) =
        sidecar(&bin, dir, "client", app_port, cp_port, children)?;
    Ok(Mesh {
        inbound,
        app_sidecar_pid,
        client_sidecar_pid,
        outbound,
        bin,
    })
}
