//! A floor for the comparison: a proxy that only copies bytes between each client connection
//! and its own connection to the app, on the runtime flowmesh runs on (tokio, one thread, no
//! HTTP). What it adds is what the kernel and the runtime cost a hop before any HTTP work, so
//! a proxy's latency minus the relay's is what its HTTP handling costs.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use tokio::net::{TcpListener, TcpStream};

use crate::procs::{Children, free_port, spawn};

/// The flag that makes the benchmark binary run as the relay.
pub(crate) const FLAG: &str = "--relay";

/// Starts the relay (this binary again) in front of `app`; its port and process id.
pub(crate) fn start(dir: &Path, app: u16, children: &mut Children) -> Result<(u16, u32), String> {
    let port = free_port()?;
    let me = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let (listen, to) = (format!("127.0.0.1:{port}"), format!("127.0.0.1:{app}"));
    let pid = spawn(&me, &[FLAG, &listen, &to], &dir.join("relay.log"), children)?;
    Ok((port, pid))
}

/// Runs the relay: `args` are the listen and the app address.
pub(crate) fn run(args: &[String]) -> ExitCode {
    let addresses: Option<(SocketAddr, SocketAddr)> = match args {
        [listen, app] => listen.parse().ok().zip(app.parse().ok()),
        _ => None,
    };
    let Some((listen, app)) = addresses else {
        eprintln!("usage: {FLAG} LISTEN_ADDRESS APP_ADDRESS (both host:port)");
        return ExitCode::FAILURE;
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("relay: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(relay(listen, app)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("relay: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn relay(listen: SocketAddr, app: SocketAddr) -> std::io::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    loop {
        let (mut client, _) = listener.accept().await?;
        tokio::spawn(async move {
            let _ = client.set_nodelay(true);
            let Ok(mut upstream) = TcpStream::connect(app).await else {
                return;
            };
            let _ = upstream.set_nodelay(true);
            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
        });
    }
}
