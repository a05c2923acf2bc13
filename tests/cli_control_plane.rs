//! `flowmesh deploy`, `get` and `rollout` as users run them, against a real single-node
//! `flowmesh control-plane` process: output, exit codes, and the token rules.

#![allow(clippy::unwrap_used)]

#[path = "support/cluster.rs"]
mod cluster;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use cluster::{Cluster, TOKEN, model};

const UP: Duration = Duration::from_secs(15);

/// Runs `flowmesh ARGS` against node 1 of `cluster`, with `token` in FLOWMESH_TOKEN.
fn flowmesh(cluster: &Cluster, token: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flowmesh"));
    cmd.args(args)
        .env(
            "FLOWMESH_CONTROL_PLANE",
            format!("http://{}", cluster.addrs[&1]),
        )
        .env_remove("FLOWMESH_TOKEN");
    if let Some(t) = token {
        cmd.env("FLOWMESH_TOKEN", t);
    }
    cmd.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write(dir: &Path, name: &str, body: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path.to_str().unwrap().to_owned()
}

async fn single() -> Cluster {
    Cluster::up(1, &[], UP).await
}

#[tokio::test]
async fn deploy_then_get_models_as_table_and_json() {
    let cluster = single().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "order.bpmn", &model(7));

    let out = flowmesh(
        &cluster,
        Some(TOKEN),
        &["deploy", &file, "--owner", "order"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!("{file}: p00007 deployed: version 1 (owner order)\n")
    );
    let again = flowmesh(
        &cluster,
        Some(TOKEN),
        &["deploy", &file, "--owner", "order"],
    );
    assert_eq!(
        text(&again.stdout),
        format!("{file}: p00007 unchanged: version 1 (owner order)\n")
    );

    let table = flowmesh(&cluster, None, &["get", "models"]);
    assert_eq!(table.status.code(), Some(0), "{}", text(&table.stderr));
    let table = text(&table.stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    assert!(
        lines[0].starts_with("PROCESS  VERSION  OWNER  ROLLOUT  DEPLOYED"),
        "{table}"
    );
    // Columns line up: each header starts where its values start.
    let owner_at = lines[0].find("OWNER").unwrap();
    assert_eq!(&lines[1][owner_at..owner_at + 5], "order", "{table}");
    assert!(
        lines[1].starts_with("p00007   1        order  -"),
        "{table}"
    );

    let json = flowmesh(&cluster, None, &["get", "models", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["models"][0]["process"], "p00007");
    assert_eq!(v["models"][0]["version"], 1);
    assert_eq!(v["models"][0]["owner"], "order");
    assert_eq!(v["models"][0]["sha256"].as_str().unwrap().len(), 64);
    assert!(v["revision"].as_u64().unwrap() >= 1);
}

#[tokio::test]
async fn deploy_refusals_name_the_file_and_exit_1() {
    let cluster = single().await;
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good.bpmn", &model(1));
    let bad = write(
        dir.path(),
        "bad.bpmn",
        String::from_utf8(model(2).to_vec())
            .unwrap()
            .replace(r#"targetRef="e""#, r#"targetRef="gone""#)
            .as_bytes(),
    );

    // No token: 401, and the message says how to give one.
    let out = flowmesh(&cluster, None, &["deploy", &good]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&good) && stderr.contains("FLOWMESH_TOKEN"),
        "{stderr}"
    );

    // An invalid model: the validator's words, prefixed with the file; the good one still lands.
    let out = flowmesh(&cluster, Some(TOKEN), &["deploy", &bad, &good]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("flowmesh deploy: {bad}:")),
        "{stderr}"
    );
    assert!(stderr.contains("gone"), "{stderr}");
    assert!(text(&out.stdout).contains("p00001 deployed: version 1"));

    let out = flowmesh(&cluster, Some(TOKEN), &["deploy", "/no/such/file.bpmn"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("cannot read"));
}

#[tokio::test]
async fn rollout_checks_its_arguments_and_shows_the_weights() {
    let cluster = single().await;
    let dir = tempfile::tempdir().unwrap();
    let v1 = write(dir.path(), "v1.bpmn", &model(3));
    let v2 = write(
        dir.path(),
        "v2.bpmn",
        String::from_utf8(model(3).to_vec())
            .unwrap()
            .replace("type=\"work\"", "type=\"work-2\"")
            .as_bytes(),
    );
    for f in [&v1, &v2] {
        let out = flowmesh(&cluster, Some(TOKEN), &["deploy", f]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }

    let out = flowmesh(
        &cluster,
        Some(TOKEN),
        &["rollout", "p00003", "1=90", "2=10"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "p00003: {\"1\":90,\"2\":10}\n");
    let table = text(&flowmesh(&cluster, None, &["get", "models"]).stdout);
    assert!(table.contains("90%") && table.contains("10%"), "{table}");

    let usage = flowmesh(&cluster, Some(TOKEN), &["rollout", "p00003", "1:100"]);
    assert_eq!(usage.status.code(), Some(2));
    assert!(text(&usage.stderr).contains("VERSION=WEIGHT"));
    let refused = flowmesh(&cluster, Some(TOKEN), &["rollout", "p00003", "1=50"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr).contains("100"),
        "{}",
        text(&refused.stderr)
    );
}

#[tokio::test]
async fn get_cluster_and_services_and_an_unreachable_control_plane() {
    let cluster = single().await;
    let table = text(&flowmesh(&cluster, None, &["get", "cluster"]).stdout);
    assert!(table.starts_with("ID  ADDRESS"), "{table}");
    assert!(table.contains("leader"), "{table}");
    let services = flowmesh(&cluster, None, &["get", "services", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&services.stdout).unwrap();
    assert_eq!(v["services"], serde_json::json!([]));

    let out = Command::new(env!("CARGO_BIN_EXE_flowmesh"))
        .args(["get", "models", "--control-plane", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("cannot reach the control plane"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn connection_limits_are_set_by_flags_and_checked() {
    let cluster = Cluster::up(1, &["--header-read-timeout-ms", "400"], UP).await;
    // Half a request head, then nothing: closed without an answer after 400 ms, well before
    // the default's 10 s.
    let mut slow = tokio::net::TcpStream::connect(&cluster.addrs[&1])
        .await
        .unwrap();
    slow.write_all(b"GET /v1/cluster HTTP/1.1\r\nHost: a\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "still open after 5 s");
    assert!(answer.is_empty(), "{}", text(&answer));
    assert!(started.elapsed() >= Duration::from_millis(300));
    // A whole request on a new connection is still answered.
    assert_eq!(
        cluster.client(1).cluster().await.unwrap().leader,
        Some(1),
        "the node serves after closing the slow connection"
    );
    // Values that would stop it serving are refused, naming the flag.
    let dir = tempfile::tempdir().unwrap();
    for (flag, value) in [
        ("--max-connections", "0"),
        ("--header-read-timeout-ms", "0"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_flowmesh"))
            .args(["control-plane", "--id", "1", "--listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(dir.path())
            .args([flag, value])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{flag} {value}");
        assert!(text(&out.stderr).contains(flag), "{}", text(&out.stderr));
    }
}
