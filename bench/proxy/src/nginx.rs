//! nginx from Debian: as the app (a fixed 1 KiB answer) and as the peer proxy (a plain reverse
//! proxy, one worker, keep-alive to the app; twice, the second as the run's noise control),
//! each from its own config in the run's temp dir. Installed with apt-get when missing.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::procs::{Children, free_port};

fn ensure_installed() -> Result<(), String> {
    if Command::new("nginx")
        .arg("-v")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return Ok(());
    }
    eprintln!("nginx is not installed; installing Debian's nginx");
    let sudo = if Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"))
    {
        ""
    } else {
        "sudo"
    };
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{sudo} apt-get update -qq && DEBIAN_FRONTEND=noninteractive {sudo} apt-get install -y -qq nginx"
        ))
        .status()
        .map_err(|e| format!("cannot run apt-get: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err("apt-get install nginx failed; install nginx and retry".to_owned())
    }
}

fn start(dir: &Path, name: &str, http_block: &str, children: &mut Children) -> Result<u32, String> {
    let conf = dir.join(format!("{name}.conf"));
    let d = dir.display();
    let text = format!(
        "master_process off;\ndaemon off;\npid {d}/{name}.pid;\nerror_log {d}/{name}-error.log warn;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/{name}-body;\n  proxy_temp_path {d}/{name}-proxy;\n\
         fastcgi_temp_path {d}/{name}-fcgi;\n  uwsgi_temp_path {d}/{name}-uwsgi;\n  scgi_temp_path {d}/{name}-scgi;\n\
         keepalive_requests 1000000;\n{http_block}\n}}\n"
    );
    std::fs::write(&conf, text).map_err(|e| e.to_string())?;
    let child = Command::new("nginx")
        .arg("-c")
        .arg(&conf)
        .arg("-e")
        .arg(dir.join(format!("{name}-error.log")))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start nginx: {e}"))?;
    let pid = child.id();
    children.0.push(child);
    Ok(pid)
}

/// The app: `GET /` answers 200 with 1,024 bytes. Returns its port.
pub(crate) fn app(dir: &Path, children: &mut Children) -> Result<u16, String> {
    ensure_installed()?;
    let port = free_port()?;
    let body = "x".repeat(1024);
    start(
        dir,
        "app",
        &format!(
            "  server {{ listen 127.0.0.1:{port}; location / {{ default_type text/plain; return 200 \"{body}\"; }} }}"
        ),
        children,
    )?;
    Ok(port)
}

/// The peer: a reverse proxy to the app with upstream keep-alive, its files under `name`.
/// Returns its port and pid.
pub(crate) fn proxy(
    dir: &Path,
    name: &str,
    app_port: u16,
    children: &mut Children,
) -> Result<(u16, u32), String> {
    let port = free_port()?;
    let pid = start(
        dir,
        name,
        &format!(
            "  upstream app {{ server 127.0.0.1:{app_port}; keepalive 256; }}\n\
             server {{ listen 127.0.0.1:{port}; location / {{ proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection \"\"; }} }}"
        ),
        children,
    )?;
    Ok((port, pid))
}
