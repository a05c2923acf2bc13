//! `flowmesh proxy` as users run it: a bad file is refused with the key at fault (exit 2); a
//! good one serves until SIGTERM and then exits 0.

#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn flowmesh() -> Command {
    Command::new(env!("CARGO_BIN_EXE_flowmesh"))
}

#[test]
fn a_bad_config_names_the_key_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sidecar.toml");
    std::fs::write(
        &file,
        "service = \"payment\"\ndata_dir = \"/tmp/x\"\n[app]\naddress = \"127.0.0.1:8082\"\n[limits]\nrequest_timout = \"5s\"\n",
    )
    .unwrap();
    let out = flowmesh()
        .args(["proxy", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unknown field `request_timout`"),
        "{stderr}"
    );
    assert!(stderr.contains("sidecar.toml"), "{stderr}");

    let out = flowmesh()
        .args(["proxy", "--config", "/no/such/file.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /no/such/file.toml"));
}

/// A port that was free a moment ago (the config must name it before the sidecar starts).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn it_serves_health_until_sigterm_then_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let local = free_port();
    let file = dir.path().join("sidecar.toml");
    std::fs::write(
        &file,
        format!(
            "service = \"payment\"\ndata_dir = \"{}\"\n[app]\naddress = \"127.0.0.1:9\"\n[listen]\nlocal = \"127.0.0.1:{local}\"\ninbound = \"127.0.0.1:0\"\noutbound = \"127.0.0.1:0\"\nmesh = \"127.0.0.1:0\"\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let mut child = flowmesh()
        .args(["proxy", "--config"])
        .arg(&file)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let answer = loop {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", local)) {
            s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
                .unwrap();
            let mut text = String::new();
            s.read_to_string(&mut text).unwrap();
            break text;
        }
        assert!(Instant::now() < deadline, "the local API never answered");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("ok\n"), "{answer}");
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
}
