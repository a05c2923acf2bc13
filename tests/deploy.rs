//! The files in deploy/ as an operator would use them: systemd's own checker accepts the
//! units (each pointed at the binary under test); the Kubernetes API's schemas accept the
//! manifests (kubernetes-validate, strict); the example sidecar configurations pass
//! `flowmesh proxy --check` and match the ports their pod opens; and every control-plane
//! replica the StatefulSet makes passes `flowmesh control-plane --check` with its arguments;
//! and what `flowmesh inject` makes of a Deployment and its Service is accepted by the same
//! schemas and starts a sidecar.

use std::path::{Path, PathBuf};
use std::process::Command;

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// Writes `source` into a temp dir as `unit` (the file name systemd would load it by), with the
/// installed binary's path replaced by the one under test and `edit` applied, and runs
/// `systemd-analyze verify` on it: whether it passed, and what it said.
fn verify(source: &Path, unit: &str, edit: impl Fn(String) -> String) -> (bool, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = std::fs::read_to_string(source).expect("unit file");
    assert!(
        text.contains("/usr/local/bin/flowmesh"),
        "{unit} runs /usr/local/bin/flowmesh"
    );
    let text = edit(text.replace("/usr/local/bin/flowmesh", env!("CARGO_BIN_EXE_flowmesh")));
    let path = dir.path().join(unit);
    std::fs::write(&path, text).expect("write unit");
    outcome(
        Command::new("systemd-analyze").arg("verify").arg(&path),
        "systemd-analyze (Debian package systemd)",
    )
}

/// Runs `command` (`what` names it for a failure to start): whether it succeeded, and all
/// it printed, standard output first.
fn outcome(command: &mut Command, what: &str) -> (bool, String) {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{what} does not run: {e}"));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

#[test]
fn systemd_accepts_the_units() {
    let units = deploy().join("systemd");
    let control_plane = units.join("flowmesh-control-plane.service");
    for (source, unit) in [
        (control_plane.clone(), "flowmesh-control-plane.service"),
        (
            units.join("flowmesh-proxy@.service"),
            "flowmesh-proxy@payment.service",
        ),
    ] {
        // Success and not a word of warning: unknown keys and bad values are only warnings
        // to systemd.
        let (passed, said) = verify(&source, unit, |text| text);
        assert!(passed && said.trim().is_empty(), "{unit}: {said}");
    }

    // The checker is not blind: a misspelt key is reported.
    let (_, said) = verify(&control_plane, "bad.service", |text| {
        text.replace("ProtectSystem=", "ProtectSystm=")
    });
    assert!(said.contains("ProtectSystm"), "{said}");
}

/// `flowmesh proxy --check --config FILE`, with `$OTEL_EXPORTER_OTLP_ENDPOINT` set to
/// `collector`, or unset whatever the test's own environment holds.
fn check_config(file: &Path, collector: Option<&str>) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_flowmesh"));
    command.args(["proxy", "--check", "--config"]).arg(file);
    match collector {
        Some(url) => command.env("OTEL_EXPORTER_OTLP_ENDPOINT", url),
        None => command.env_remove("OTEL_EXPORTER_OTLP_ENDPOINT"),
    };
    command.output().expect("flowmesh runs")
}

#[test]
fn the_example_sidecar_configuration_checks() {
    let config = deploy().join("systemd/payment.toml");
    let out = check_config(&config, None);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains(": ok (service payment, inbound 0.0.0.0:15001 → app 127.0.0.1:8080"),
        "{said}"
    );

    // A broken file is refused with the key named, and nothing is started.
    let dir = tempfile::tempdir().expect("temp dir");
    let broken = dir.path().join("broken.toml");
    let text = std::fs::read_to_string(&config)
        .expect("config")
        .replace("[app]", "[app]\nadress = \"127.0.0.1:8081\"");
    std::fs::write(&broken, text).expect("write config");
    refused(&check_config(&broken, None), "adress");

    // Without the key, the environment's collector is checked as the start would use it.
    let bare = dir.path().join("bare.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    let text = &text[..text.find("[telemetry]").expect("a telemetry section")];
    std::fs::write(&bare, text).expect("write config");
    let out = check_config(&bare, Some("http://collector:4318"));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("spans to http://collector:4318)"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    refused(
        &check_config(&bare, Some("https://collector:4318")),
        "$OTEL_EXPORTER_OTLP_ENDPOINT 'https://collector:4318'",
    );
}

/// The Kubernetes release the manifests are checked against: the first with native sidecars
/// on by default (1.29) and StatefulSet pods labelled with their ordinal (1.28).
const KUBERNETES: &str = "1.29.0";

/// Runs kubernetes-validate (strict: unknown fields are errors) on `files`: whether they all
/// passed, and what it said.
fn validate(files: &[PathBuf]) -> (bool, String) {
    // Through the interpreter that has the package: its console script need not be on PATH
    // (pip's scripts directory, pyenv's shims).
    outcome(
        Command::new("python3")
            .args([
                "-m",
                "kubernetes_validate",
                "--strict",
                "--quiet",
                "-k",
                KUBERNETES,
            ])
            .args(files),
        "python3 -m kubernetes_validate (PyPI, installed by make test)",
    )
}

#[test]
fn kubernetes_accepts_the_manifests() {
    let dir = deploy().join("kubernetes");
    let manifests = [dir.join("control-plane.yaml"), dir.join("payment.yaml")];
    let (passed, said) = validate(&manifests);
    assert!(passed, "{said}");

    // The check is not blind: a misspelt field is refused.
    let temp = tempfile::tempdir().expect("temp dir");
    let bad = temp.path().join("bad.yaml");
    let text = std::fs::read_to_string(&manifests[1]).expect("manifest");
    assert!(text.contains("restartPolicy: Always"));
    std::fs::write(
        &bad,
        text.replace("restartPolicy: Always", "restartPolcy: Always"),
    )
    .expect("write manifest");
    let (passed, said) = validate(&[bad]);
    assert!(!passed && said.contains("restartPolcy"), "{said}");
}

/// The `containerPort` of the container port named `name` in a manifest (its line follows
/// the name's; a Service's port of the same name is passed over).
fn container_port(manifest: &str, name: &str) -> Option<u16> {
    let lines: Vec<&str> = manifest.lines().map(str::trim).collect();
    lines.windows(2).find_map(|pair| {
        (pair[0] == format!("- name: {name}"))
            .then(|| pair[1].strip_prefix("containerPort:"))
            .flatten()
            .and_then(|port| port.trim().parse().ok())
    })
}

#[test]
fn the_kubernetes_sidecar_configuration_checks_and_its_pod_opens_its_ports() {
    let dir = deploy().join("kubernetes");
    let out = check_config(&dir.join("payment.toml"), None);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The ports the probes, the Service and other sidecars use are the ones it listens on,
    // and the app it forwards to is the pod's other container.
    let config = flowmesh_proxy::config::Config::parse(
        &std::fs::read_to_string(dir.join("payment.toml")).expect("config"),
    )
    .expect("config parses");
    let manifest = std::fs::read_to_string(dir.join("payment.yaml")).expect("manifest");
    for (name, addr) in [
        ("local", config.listen.local),
        ("inbound", config.listen.inbound),
        ("mesh", config.listen.mesh),
    ] {
        assert!(addr.ip().is_unspecified(), "{name} must take the pod's IP");
        assert_eq!(container_port(&manifest, name), Some(addr.port()), "{name}");
    }
    assert!(config.app.address.ip().is_loopback());
    assert_eq!(
        container_port(&manifest, "http"),
        Some(config.app.address.port()),
        "the app container's port"
    );
    assert!(manifest.contains("targetPort: inbound"));
    assert!(manifest.contains(&format!(
        "value: http://127.0.0.1:{}",
        config.listen.outbound.port()
    )));
    for (mount, path) in [
        ("/etc/flowmesh/token", config.token_file.as_deref()),
        ("/var/lib/flowmesh", Some(config.data_dir.as_path())),
    ] {
        let path = path.expect("set").to_string_lossy().into_owned();
        assert!(path.starts_with(mount), "{path} is under the mount {mount}");
        assert!(manifest.contains(&format!("mountPath: {mount}")), "{mount}");
    }
}

#[test]
fn every_control_plane_replica_checks_with_its_arguments() {
    let manifest =
        std::fs::read_to_string(deploy().join("kubernetes/control-plane.yaml")).expect("manifest");
    let replicas: u64 = manifest
        .lines()
        .find_map(|l| l.trim().strip_prefix("replicas:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("replicas: N");
    let args: Vec<&str> = manifest
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("- control-plane") || l.starts_with("- --"))
        .map(|l| l.trim_start_matches("- "))
        .collect();
    assert_eq!(args.first(), Some(&"control-plane"), "{args:?}");
    let temp = tempfile::tempdir().expect("temp dir");
    let token = temp.path().join("token");
    std::fs::write(&token, "secret\n").expect("write token");
    let check = |ordinal: u64| {
        let args: Vec<String> = args
            .iter()
            .map(|a| match a.split_once('=') {
                // Files on this machine instead of the pod's volumes.
                Some(("--token-file", _)) => format!("--token-file={}", token.display()),
                Some(("--data-dir", _)) => format!("--data-dir={}", temp.path().display()),
                _ => a.replace("$(FLOWMESH_ID)", &ordinal.to_string()),
            })
            .collect();
        Command::new(env!("CARGO_BIN_EXE_flowmesh"))
            .args(&args)
            .arg("--check")
            .output()
            .expect("flowmesh runs")
    };
    for ordinal in 0..replicas {
        let out = check(ordinal);
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success()
                && said.contains(&format!(
                    "ok (node {ordinal}, listen 0.0.0.0:7700, one of {replicas} voters"
                ))
                && said.contains("token from --token-file"),
            "replica {ordinal}: {said}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // A replica added without a place in --peers is refused, naming why.
    refused(&check(replicas), "not this node's id");
}

/// Asserts that a flowmesh command refused its input (exit code 2) and said `said` on stderr.
fn refused(out: &std::process::Output, said: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(said), "wanted {said:?} in: {stderr}");
}

/// Runs `flowmesh inject` with `input` on its standard input.
fn inject(input: &str, args: &[&str]) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_flowmesh"))
        .arg("inject")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("flowmesh runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("flowmesh ends")
}

#[test]
fn inject_puts_the_sidecar_into_a_deployment_kubernetes_accepts() {
    let input = serde_json::json!({
        "apiVersion": "v1", "kind": "List", "items": [
            {
                "apiVersion": "v1", "kind": "Service",
                "metadata": { "name": "payment", "namespace": "shop" },
                "spec": {
                    "selector": { "app.kubernetes.io/name": "payment" },
                    "ports": [{ "name": "http", "port": 80, "targetPort": "http" }],
                },
            },
            {
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": { "name": "payment", "namespace": "shop" },
                "spec": {
                    "selector": { "matchLabels": { "app.kubernetes.io/name": "payment" } },
                    "template": {
                        "metadata": { "labels": { "app.kubernetes.io/name": "payment" } },
                        "spec": { "containers": [{
                            "name": "payment",
                            "image": "registry.example.com/shop/payment:1.4",
                            "ports": [{ "name": "http", "containerPort": 8080 }],
                        }] },
                    },
                },
            },
        ],
    })
    .to_string();
    let out = inject(&input, &["--image", "registry.example.com/flowmesh:0.1.0"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("deployment/payment: sidecar added (service payment, app port 8080")
            && said.contains("service/payment: port 80 now goes through the sidecar"),
        "{said}"
    );
    let injected: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON out");
    let items = injected["items"].as_array().expect("a List");
    assert_eq!(items.len(), 3, "the ConfigMap, the Service, the Deployment");

    // Every object as the API server would take it (kubernetes-validate does not look into
    // a List, so each is a document of its own).
    let temp = tempfile::tempdir().expect("temp dir");
    let docs: String = items.iter().map(|i| format!("---\n{i}\n")).collect();
    let manifest = temp.path().join("injected.yaml");
    std::fs::write(&manifest, docs).expect("write manifest");
    let (passed, said) = validate(&[manifest]);
    assert!(passed, "{said}");

    // The configuration it made is one the sidecar starts with.
    let config = temp.path().join("flowmesh.toml");
    std::fs::write(
        &config,
        items[0]["data"]["flowmesh.toml"].as_str().expect("config"),
    )
    .expect("write config");
    let out = check_config(&config, None);
    assert!(
        out.status.success()
            && String::from_utf8_lossy(&out.stdout).contains("→ app 127.0.0.1:8080"),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // Injecting again changes nothing.
    let again = inject(&injected.to_string(), &[]);
    assert!(again.status.success());
    let twice: serde_json::Value = serde_json::from_slice(&again.stdout).expect("JSON out");
    assert_eq!(twice, injected);

    // The same manifests as YAML, as a repository holds them, give the same objects.
    let yaml = "\
# payment's manifests
apiVersion: v1
kind: Service
metadata: {name: payment, namespace: shop}
spec:
  selector:
    app.kubernetes.io/name: payment
  ports:
    - name: http
      port: 80
      targetPort: http
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: payment
  namespace: shop
spec:
  selector:
    matchLabels: {app.kubernetes.io/name: payment}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: payment
    spec:
      containers:
        - name: payment
          image: registry.example.com/shop/payment:1.4
          ports:
            - {name: http, containerPort: 8080}
";
    let out = inject(yaml, &["--image", "registry.example.com/flowmesh:0.1.0"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let from_yaml: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON out");
    assert_eq!(from_yaml, injected);

    // A document that is no object is refused, saying which.
    refused(
        &inject("kind: Deployment\n---\n- a list\n", &[]),
        "a YAML document is a list, not a Kubernetes object",
    );
}
