//! `flowmesh inject`: puts the sidecar into Kubernetes workloads given as JSON (`kubectl get
//! deploy NAME -o json`) or YAML (the manifests a repository holds), as a native sidecar
//! beside the app's container, with its configuration as a ConfigMap; Services in the same
//! input that send callers to the app are sent to the sidecar's inbound port instead. The
//! app's image and code stay as they are.
use std::collections::BTreeSet;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::{Map, Value, json};

/// Where the sidecar listens in the pod: the local API (probes, metrics, the monitor), the
/// inbound port callers reach the app through, the outbound port the app calls through, and
/// the mesh port other sidecars use.
const LOCAL: u16 = 15000;
const INBOUND: u16 = 15001;
const OUTBOUND: u16 = 15002;
const MESH: u16 = 15003;
/// The name of the sidecar's container, and how a pod that has one is recognised.
const SIDECAR: &str = "flowmesh";
/// The name of the sidecar's inbound port, which Services target.
const INBOUND_PORT_NAME: &str = "flowmesh-in";
const WORKLOADS: [&str; 7] = [
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "Job",
    "CronJob",
    "Pod",
];

/// Add the flowmesh sidecar to Kubernetes workloads: reads them as JSON (one object or a List,
/// as `kubectl get deploy NAME -o json` prints) or YAML (any number of documents, as in a
/// manifest file) and prints them as JSON with the sidecar added, ready for `kubectl apply -f
/// -`. Exit code 0 when done, 1 when a workload cannot be injected, 2 on
/// usage errors.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The manifests to read, JSON or YAML; `-` or none: standard input.
    #[arg(value_name = "FILE")]
    file: Option<PathBuf>,
    /// The service's name in the mesh; default: the workload's `app.kubernetes.io/name` label,
    /// else its name.
    #[arg(long)]
    service: Option<String>,
    /// The container the sidecar stands beside; default: the pod's first.
    #[arg(long)]
    container: Option<String>,
    /// The port the app listens on; default: that container's first TCP port.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    app_port: Option<u16>,
    /// The control plane as pods reach it.
    #[arg(
        long,
        default_value = "http://flowmesh.flowmesh.svc.cluster.local:7700"
    )]
    control_plane: String,
    /// The image the sidecar runs.
    #[arg(long, default_value = concat!("flowmesh:", env!("CARGO_PKG_VERSION")))]
    image: String,
    /// The Secret in the workload's namespace that holds the control plane's token (key
    /// `token`); `none` for a control plane without one.
    #[arg(long, default_value = "flowmesh-token")]
    token_secret: String,
    /// Where the sidecar exports spans (OTLP/HTTP); default: the pod's
    /// $OTEL_EXPORTER_OTLP_ENDPOINT, else none.
    #[arg(long)]
    otlp_endpoint: Option<String>,
}

/// Why a workload could not be injected.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error(
        "no workload in the input (one of {}); give `kubectl get KIND NAME -o json` output or the workload's manifest",
        WORKLOADS.join(", ")
    )]
    NoWorkload,
    #[error("{0}: {1}")]
    Malformed(String, &'static str),
    #[error("{workload}: no container named '{name}' (it has {have})")]
    NoContainer {
        workload: String,
        name: String,
        have: String,
    },
    #[error(
        "{workload}: container '{container}' declares no TCP port; say where the app listens with --app-port"
    )]
    NoPort { workload: String, container: String },
    #[error("{workload}: the app's port {port} is one the sidecar takes ({LOCAL}-{MESH})")]
    PortTaken { workload: String, port: u16 },
    #[error("{workload}: the sidecar's configuration is refused: {reason}")]
    Config { workload: String, reason: String },
}

pub(crate) fn run(args: &Args) -> ExitCode {
    let (name, text) = match read(args.file.as_ref()) {
        Ok(read) => read,
        Err(e) => {
            eprintln!("flowmesh inject: {e}");
            return ExitCode::from(2);
        }
    };
    let input = match parse(&name, &text) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("flowmesh inject: {e}");
            return ExitCode::from(2);
        }
    };
    match inject(input, args) {
        Ok((output, report)) => {
            for line in report {
                eprintln!("{line}");
            }
            match serde_json::to_string_pretty(&output) {
                Ok(json) => {
                    println!("{json}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("flowmesh inject: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Err(e) => {
            eprintln!("flowmesh inject: {e}");
            ExitCode::FAILURE
        }
    }
}

fn read(file: Option<&PathBuf>) -> Result<(String, String), String> {
    match file {
        Some(path) if path.as_os_str() != "-" => std::fs::read_to_string(path)
            .map(|text| (path.display().to_string(), text))
            .map_err(|e| format!("cannot read {}: {e}", path.display())),
        _ => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| format!("cannot read standard input: {e}"))?;
            Ok(("standard input".to_owned(), text))
        }
    }
}

/// The objects in `text`: JSON (what `kubectl get -o json` prints: one object or a List), else
/// YAML, whose documents become the items of one List (a List among them is spread into it).
fn parse(name: &str, text: &str) -> Result<Value, String> {
    let start = text.trim_start_matches(['\u{feff}', ' ', '\t', '\r', '\n']);
    if start.starts_with('{') {
        return serde_json::from_str(start).map_err(|e| {
            format!("{name} starts as JSON but is not ({e}); give `kubectl get KIND NAME -o json` output, or the manifest as YAML")
        });
    }
    // Numbers as kubectl reads them (YAML 1.1): `defaultMode: 0440` is octal, 288, where
    // YAML 1.2 would make it 440 and the file mode wrong.
    let mut options = serde_saphyr::Options::default();
    options.legacy_octal_numbers = true;
    let documents: Vec<Value> =
        serde_saphyr::from_multiple_with_options(text, options).map_err(|e| {
            // The user formatter: the default one advises on the library's own options,
            // which someone running `inject` cannot set. One line, as every CLI refusal.
            let mut render = serde_saphyr::RenderOptions::new(&serde_saphyr::UserMessageFormatter);
            render.snippets = serde_saphyr::SnippetMode::Off;
            format!(
                "{name} is not valid YAML: {}",
                e.render_with_options(render)
            )
        })?;
    let mut items = Vec::new();
    for document in documents {
        match document {
            Value::Object(mut list) if list.get("kind").is_some_and(|k| k == "List") => {
                match list.remove("items") {
                    Some(Value::Array(listed)) => items.extend(listed),
                    _ => return Err(format!("{name}: a List whose items are not a list")),
                }
            }
            Value::Object(object) => items.push(Value::Object(object)),
            other => {
                return Err(format!(
                    "{name}: a YAML document is {}, not a Kubernetes object",
                    kind_of(&other)
                ));
            }
        }
    }
    match items.len() {
        0 => Err(format!("{name} holds no Kubernetes object")),
        1 => Ok(items.remove(0)),
        _ => Ok(json!({ "apiVersion": "v1", "kind": "List", "items": items })),
    }
}

/// What a JSON value is, for a refusal.
fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "empty",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The input with the sidecar in every workload (and their ConfigMaps first), and a line per
/// change for the operator.
pub(crate) fn inject(input: Value, args: &Args) -> Result<(Value, Vec<String>), Error> {
    let listed = input["kind"] == "List";
    let mut items = match input {
        Value::Object(mut list) if listed => match list.remove("items") {
            Some(Value::Array(items)) => items,
            _ => return Err(Error::Malformed("List".into(), "its items are not a list")),
        },
        single => vec![single],
    };
    let mut report = Vec::new();
    let mut added = Vec::new();
    // Per injected workload: its namespace, its pod labels, and the app's port as a number
    // and by name, for the Services that send callers to it.
    let mut targets = Vec::new();
    for item in items.iter_mut() {
        let kind = item["kind"].as_str().unwrap_or_default().to_owned();
        if !WORKLOADS.contains(&kind.as_str()) {
            continue;
        }
        let workload = format!(
            "{}/{}",
            kind.to_lowercase(),
            item["metadata"]["name"].as_str().unwrap_or("?")
        );
        let injected = workload_into(item, &kind, &workload, args)?;
        match injected {
            None => report.push(format!("{workload}: already has the sidecar, unchanged")),
            Some(done) => {
                report.push(format!(
                    "{workload}: sidecar added (service {}, app port {}, ConfigMap {})",
                    done.service,
                    done.port,
                    done.config_map["metadata"]["name"].as_str().unwrap_or("?")
                ));
                targets.push(done.target);
                added.push(done.config_map);
            }
        }
    }
    if targets.is_empty() && report.is_empty() {
        return Err(Error::NoWorkload);
    }
    for item in items.iter_mut().filter(|i| i["kind"] == "Service") {
        for target in &targets {
            if let Some(line) = retarget(item, target) {
                report.push(line);
            }
        }
    }
    let output = if listed || !added.is_empty() {
        added.extend(items);
        json!({ "apiVersion": "v1", "kind": "List", "items": added })
    } else {
        items.into_iter().next().unwrap_or(Value::Null)
    };
    Ok((output, report))
}

/// What injecting one workload made.
struct Injected {
    service: String,
    port: u16,
    config_map: Value,
    target: Target,
}

/// The pods a Service may select, and the app's port in them.
struct Target {
    namespace: Option<String>,
    labels: Map<String, Value>,
    port: u16,
    port_name: Option<String>,
}

/// Adds the sidecar to one workload; `None` when it already has one.
fn workload_into(
    item: &mut Value,
    kind: &str,
    workload: &str,
    args: &Args,
) -> Result<Option<Injected>, Error> {
    let name = item["metadata"]["name"]
        .as_str()
        .ok_or_else(|| Error::Malformed(workload.into(), "it has no metadata.name"))?
        .to_owned();
    let namespace = item["metadata"]["namespace"].as_str().map(str::to_owned);
    let template = match kind {
        "Pod" => &mut *item,
        "CronJob" => item
            .pointer_mut("/spec/jobTemplate/spec/template")
            .ok_or_else(|| {
                Error::Malformed(workload.into(), "it has no spec.jobTemplate.spec.template")
            })?,
        _ => item
            .pointer_mut("/spec/template")
            .ok_or_else(|| Error::Malformed(workload.into(), "it has no spec.template"))?,
    };
    let labels = template["metadata"]["labels"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let pod = template
        .get_mut("spec")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| Error::Malformed(workload.into(), "its pod has no spec"))?;
    let has_sidecar = ["initContainers", "containers"].iter().any(|list| {
        pod.get(*list)
            .and_then(Value::as_array)
            .is_some_and(|cs| cs.iter().any(|c| c["name"] == SIDECAR))
    });
    if has_sidecar {
        return Ok(None);
    }
    let containers = pod
        .get_mut("containers")
        .and_then(Value::as_array_mut)
        .filter(|cs| !cs.is_empty())
        .ok_or_else(|| Error::Malformed(workload.into(), "its pod has no containers"))?;
    let have = containers
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let app = match &args.container {
        Some(wanted) => containers
            .iter_mut()
            .find(|c| c["name"] == wanted.as_str())
            .ok_or_else(|| Error::NoContainer {
                workload: workload.into(),
                name: wanted.clone(),
                have,
            })?,
        None => &mut containers[0],
    };
    let container = app["name"].as_str().unwrap_or("?").to_owned();
    let tcp = |p: &&Value| p["protocol"].as_str().is_none_or(|proto| proto == "TCP");
    let declared: Vec<&Value> = app["ports"]
        .as_array()
        .map(|ps| ps.iter().filter(tcp).collect())
        .unwrap_or_default();
    let port = match args.app_port {
        Some(port) => port,
        None => declared
            .first()
            .and_then(|p| p["containerPort"].as_u64())
            .and_then(|p| u16::try_from(p).ok())
            .ok_or_else(|| Error::NoPort {
                workload: workload.into(),
                container: container.clone(),
            })?,
    };
    if (LOCAL..=MESH).contains(&port) {
        return Err(Error::PortTaken {
            workload: workload.into(),
            port,
        });
    }
    let port_name = declared
        .iter()
        .find(|p| p["containerPort"].as_u64() == Some(u64::from(port)))
        .and_then(|p| p["name"].as_str())
        .map(str::to_owned);
    proxy_env(app);

    let service = args.service.clone().unwrap_or_else(|| {
        labels
            .get("app.kubernetes.io/name")
            .and_then(Value::as_str)
            .map_or_else(|| name.clone(), str::to_owned)
    });
    let token = (args.token_secret != "none").then_some(args.token_secret.as_str());
    let config = configuration(&service, port, token, args);
    flowmesh_proxy::config::Config::parse(&config).map_err(|e| Error::Config {
        workload: workload.into(),
        reason: e.to_string(),
    })?;
    let config_map_name = format!("{name}-flowmesh");
    let mut metadata = json!({ "name": config_map_name });
    if let Some(ns) = &namespace {
        metadata["namespace"] = json!(ns);
    }
    let config_map = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata,
        "data": { "flowmesh.toml": config },
    });

    let init = pod
        .entry("initContainers")
        .or_insert_with(|| json!([]))
        .as_array_mut()
        .ok_or_else(|| Error::Malformed(workload.into(), "its initContainers are not a list"))?;
    // First, so that the app's own init containers already have the mesh to call through.
    init.insert(0, sidecar(&args.image, token.is_some()));
    let volumes = pod
        .entry("volumes")
        .or_insert_with(|| json!([]))
        .as_array_mut()
        .ok_or_else(|| Error::Malformed(workload.into(), "its volumes are not a list"))?;
    volumes.push(json!({ "name": "flowmesh-config", "configMap": { "name": config_map_name } }));
    volumes.push(json!({ "name": "flowmesh-data", "emptyDir": {} }));
    if let Some(secret) = token {
        // Readable by the sidecar's user without a pod-wide fsGroup, which would change the
        // ownership of the app's volumes too.
        volumes.push(json!({
            "name": "flowmesh-token",
            "secret": { "secretName": secret, "defaultMode": 0o444 },
        }));
    }
    Ok(Some(Injected {
        service,
        port,
        config_map,
        target: Target {
            namespace,
            labels,
            port,
            port_name,
        },
    }))
}

/// The app's calls by service name go out through the sidecar; what it set itself stays.
fn proxy_env(app: &mut Value) {
    let Some(app) = app.as_object_mut() else {
        return;
    };
    let env = app.entry("env").or_insert_with(|| json!([]));
    let Some(env) = env.as_array_mut() else {
        return;
    };
    let set: BTreeSet<String> = env
        .iter()
        .filter_map(|e| e["name"].as_str().map(str::to_owned))
        .collect();
    for (name, value) in [
        ("HTTP_PROXY", format!("http://127.0.0.1:{OUTBOUND}")),
        ("NO_PROXY", "localhost,127.0.0.1".to_owned()),
    ] {
        if !set.contains(name) {
            env.push(json!({ "name": name, "value": value }));
        }
    }
}

/// The sidecar's configuration file.
fn configuration(service: &str, port: u16, token: Option<&str>, args: &Args) -> String {
    // JSON's quoted strings are TOML basic strings for anything a name or URL holds; the
    // result is parsed as the sidecar would before it is used.
    let quote = |s: &str| Value::String(s.to_owned()).to_string();
    let mut text = format!(
        "# Made by flowmesh inject; every key: docs/configuration.md.\n\
         service = {}\n\
         data_dir = \"/var/lib/flowmesh\"\n\
         control_plane = [{}]\n",
        quote(service),
        quote(&args.control_plane)
    );
    if token.is_some() {
        text.push_str("token_file = \"/etc/flowmesh/token/token\"\n");
    }
    text.push_str(&format!(
        "\n[app]\naddress = \"127.0.0.1:{port}\"\n\n[listen]\n\
         local = \"0.0.0.0:{LOCAL}\"\n\
         inbound = \"0.0.0.0:{INBOUND}\"\n\
         outbound = \"127.0.0.1:{OUTBOUND}\"\n\
         mesh = \"0.0.0.0:{MESH}\"\n"
    ));
    if let Some(endpoint) = &args.otlp_endpoint {
        text.push_str(&format!(
            "\n[telemetry]\notlp_endpoint = {}\n",
            quote(endpoint)
        ));
    }
    text
}

/// The sidecar's container: a native sidecar (an init container that keeps running), started
/// before the app and stopped after it.
fn sidecar(image: &str, token: bool) -> Value {
    let probe = |path: &str, period: u32| json!({ "httpGet": { "path": path, "port": "flowmesh-local" }, "periodSeconds": period });
    let mut startup = probe("/healthz", 1);
    startup["failureThreshold"] = json!(30);
    let mut mounts = vec![
        json!({ "name": "flowmesh-config", "mountPath": "/etc/flowmesh/flowmesh.toml", "subPath": "flowmesh.toml", "readOnly": true }),
        json!({ "name": "flowmesh-data", "mountPath": "/var/lib/flowmesh" }),
    ];
    if token {
        mounts.push(json!({ "name": "flowmesh-token", "mountPath": "/etc/flowmesh/token", "readOnly": true }));
    }
    json!({
        "name": SIDECAR,
        "image": image,
        "restartPolicy": "Always",
        "args": ["proxy", "--config", "/etc/flowmesh/flowmesh.toml"],
        "ports": [
            { "name": "flowmesh-local", "containerPort": LOCAL },
            { "name": INBOUND_PORT_NAME, "containerPort": INBOUND },
            { "name": "flowmesh-mesh", "containerPort": MESH },
        ],
        "startupProbe": startup,
        "readinessProbe": probe("/readyz", 5),
        "livenessProbe": probe("/healthz", 10),
        "resources": { "requests": { "cpu": "50m", "memory": "32Mi" }, "limits": { "memory": "256Mi" } },
        "securityContext": {
            "runAsNonRoot": true,
            "runAsUser": 65532,
            "runAsGroup": 65532,
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "capabilities": { "drop": ["ALL"] },
        },
        "volumeMounts": mounts,
    })
}

/// Sends a Service's ports that reach the app in `target`'s pods to the sidecar's inbound
/// port: a line saying so, or `None` when the Service does not select those pods.
fn retarget(service: &mut Value, target: &Target) -> Option<String> {
    let namespace = service["metadata"]["namespace"].as_str();
    if namespace.is_some() && target.namespace.is_some() && namespace != target.namespace.as_deref()
    {
        return None;
    }
    let selector = service["spec"]["selector"].as_object()?;
    if selector.is_empty()
        || !selector
            .iter()
            .all(|(k, v)| target.labels.get(k) == Some(v))
    {
        return None;
    }
    let name = service["metadata"]["name"]
        .as_str()
        .unwrap_or("?")
        .to_owned();
    let mut moved = Vec::new();
    for port in service.pointer_mut("/spec/ports")?.as_array_mut()? {
        let reaches_app = match port.get("targetPort") {
            None => port["port"].as_u64() == Some(u64::from(target.port)),
            Some(Value::Number(n)) => n.as_u64() == Some(u64::from(target.port)),
            Some(Value::String(s)) => {
                target.port_name.as_deref() == Some(s.as_str())
                    || s.parse::<u16>().ok() == Some(target.port)
            }
            Some(_) => false,
        };
        if reaches_app {
            port["targetPort"] = json!(INBOUND_PORT_NAME);
            moved.push(port["port"].to_string());
        }
    }
    (!moved.is_empty()).then(|| {
        format!(
            "service/{name}: port {} now goes through the sidecar ({INBOUND_PORT_NAME}, {INBOUND})",
            moved.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn args() -> Args {
        Args {
            file: None,
            service: None,
            container: None,
            app_port: None,
            control_plane: "http://flowmesh.flowmesh.svc.cluster.local:7700".into(),
            image: "flowmesh:test".into(),
            token_secret: "flowmesh-token".into(),
            otlp_endpoint: None,
        }
    }

    fn pod(name: &str, ports: Value) -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": { "name": name, "namespace": "shop", "labels": { "app": name } },
            "spec": { "containers": [
                { "name": "sidecar-of-its-own", "image": "x", "ports": [] },
                { "name": name, "image": "y", "ports": ports },
            ] },
        })
    }

    #[test]
    fn a_pod_gets_the_sidecar_before_its_containers_and_its_config_map_first() {
        let mut a = args();
        a.container = Some("orders".into());
        a.token_secret = "none".into();
        a.otlp_endpoint = Some("http://collector:4318".into());
        let (out, report) = inject(
            pod(
                "orders",
                json!([{ "containerPort": 8081, "protocol": "TCP" }]),
            ),
            &a,
        )
        .unwrap();
        assert_eq!(out["kind"], "List");
        let config = out["items"][0]["data"]["flowmesh.toml"].as_str().unwrap();
        let parsed = flowmesh_proxy::config::Config::parse(config).unwrap();
        assert_eq!(
            parsed.service, "orders",
            "the pod's name: it has no name label"
        );
        assert_eq!(parsed.app.address.port(), 8081);
        assert!(parsed.token_file.is_none());
        assert!(config.contains("otlp_endpoint = \"http://collector:4318\""));
        let spec = &out["items"][1]["spec"];
        assert_eq!(spec["initContainers"][0]["name"], "flowmesh");
        assert_eq!(spec["initContainers"][0]["restartPolicy"], "Always");
        assert_eq!(spec["initContainers"][0]["image"], "flowmesh:test");
        let volumes: Vec<&str> = spec["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap())
            .collect();
        assert_eq!(volumes, ["flowmesh-config", "flowmesh-data"], "no token");
        assert!(spec["containers"][0]["env"].is_null(), "only the app's env");
        assert_eq!(spec["containers"][1]["env"][0]["name"], "HTTP_PROXY");
        assert_eq!(report.len(), 1, "{report:?}");
    }

    #[test]
    fn yaml_documents_become_one_list_and_what_is_no_object_is_refused() {
        assert_eq!(
            parse("f", "kind: Pod\nmetadata: {name: a}\nspec: {containers: [{ports: [{containerPort: 80}]}]}\n").unwrap(),
            json!({ "kind": "Pod", "metadata": { "name": "a" }, "spec": { "containers": [{ "ports": [{ "containerPort": 80 }] }] } })
        );
        let many = parse(
            "f",
            "kind: Pod\n---\nkind: List\nitems: [{kind: Service}, {kind: ConfigMap}]\n---\n",
        )
        .unwrap();
        assert_eq!(many["kind"], "List");
        assert_eq!(
            many["items"],
            json!([{ "kind": "Pod" }, { "kind": "Service" }, { "kind": "ConfigMap" }])
        );
        // Scalars as kubectl reads them: a leading zero is octal, `yes` is true.
        assert_eq!(
            parse(
                "f",
                "kind: Secret\nmode: 0440\nhex: 0x1F\nflag: yes\nname: '0440'\n"
            )
            .unwrap(),
            json!({ "kind": "Secret", "mode": 288, "hex": 31, "flag": true, "name": "0440" })
        );
        // JSON as kubectl prints it, after a byte-order mark and blank lines.
        assert_eq!(
            parse("f", "\u{feff}\n {\"kind\": \"Pod\"}").unwrap(),
            json!({ "kind": "Pod" })
        );
        // A duplicate key is refused in the user's terms on one line, with the file's name and
        // the key's line, and without advice on library options nobody running `inject` can set.
        let duplicate =
            parse("pod.yaml", "kind: Pod\nmetadata:\n  name: a\n  name: b\n").unwrap_err();
        assert!(
            duplicate.starts_with("pod.yaml is not valid YAML")
                && duplicate.contains("duplicate mapping key `name`")
                && duplicate.contains("at line 4, column 3")
                && !duplicate.contains('\n')
                && !duplicate.contains("Options"),
            "{duplicate}"
        );
        for (text, said) in [
            ("{\"kind\": ", "f starts as JSON but is not"),
            ("", "f holds no Kubernetes object"),
            ("# nothing but a comment\n", "f holds no Kubernetes object"),
            ("kind: [Pod\n", "f is not valid YAML"),
            (
                "kind: Pod\n---\n42\n",
                "f: a YAML document is a number, not a Kubernetes object",
            ),
            (
                "kind: List\nitems: {}\n",
                "f: a List whose items are not a list",
            ),
        ] {
            let refused = parse("f", text).unwrap_err();
            assert!(refused.starts_with(said), "{text:?}: {refused}");
        }
    }

    #[test]
    fn a_cron_job_gets_the_sidecar_in_its_job_template() {
        let cron = json!({
            "apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": { "name": "nightly" },
            "spec": { "schedule": "0 3 * * *", "jobTemplate": { "spec": { "template": {
                "spec": { "restartPolicy": "OnFailure", "containers": [
                    { "name": "nightly", "image": "x", "ports": [{ "containerPort": 8080 }] },
                ] },
            } } } },
        });
        let (out, _) = inject(cron, &args()).unwrap();
        let pod = &out["items"][1]["spec"]["jobTemplate"]["spec"]["template"]["spec"];
        assert_eq!(pod["initContainers"][0]["name"], "flowmesh");
        assert!(out["items"][0]["metadata"]["namespace"].is_null());
        let broken = inject(
            json!({ "kind": "CronJob", "metadata": { "name": "n" } }),
            &args(),
        );
        assert!(
            broken
                .unwrap_err()
                .to_string()
                .contains("spec.jobTemplate.spec.template"),
            "a CronJob without a template says where it looked"
        );
    }

    #[test]
    fn what_cannot_be_injected_is_refused_with_the_reason() {
        let no_port = inject(pod("orders", json!([])), &args()).unwrap_err();
        assert!(
            no_port.to_string().contains("declares no TCP port")
                && no_port.to_string().contains("--app-port"),
            "{no_port}"
        );
        let udp = inject(
            pod(
                "orders",
                json!([{ "containerPort": 53, "protocol": "UDP" }]),
            ),
            &{
                let mut a = args();
                a.container = Some("orders".into());
                a
            },
        )
        .unwrap_err();
        assert!(udp.to_string().contains("no TCP port"), "{udp}");
        let mut a = args();
        a.container = Some("nope".into());
        let missing = inject(pod("orders", json!([])), &a).unwrap_err();
        assert!(
            missing
                .to_string()
                .contains("no container named 'nope' (it has sidecar-of-its-own, orders)"),
            "{missing}"
        );
        let mut a = args();
        a.app_port = Some(15001);
        let taken = inject(pod("orders", json!([])), &a).unwrap_err();
        assert!(taken.to_string().contains("15001"), "{taken}");
        let none = inject(
            json!({ "kind": "ConfigMap", "metadata": { "name": "x" } }),
            &args(),
        );
        assert!(matches!(none, Err(Error::NoWorkload)));
        let mut a = args();
        a.app_port = Some(8080);
        a.service = Some("bad name".into());
        let refused = inject(pod("orders", json!([])), &a).unwrap_err();
        assert!(
            refused.to_string().contains("configuration is refused"),
            "{refused}"
        );
    }

    #[test]
    fn only_services_that_select_the_pods_and_target_the_app_are_moved() {
        let mut a = args();
        a.container = Some("orders".into());
        let service = |name: &str, ns: &str, selector: Value, target: Value| {
            json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": { "name": name, "namespace": ns },
                "spec": { "selector": selector, "ports": [{ "port": 80, "targetPort": target }] },
            })
        };
        let input = json!({ "kind": "List", "items": [
            pod("orders", json!([{ "name": "web", "containerPort": 8080 }, { "containerPort": 9090 }])),
            service("by-name", "shop", json!({ "app": "orders" }), json!("web")),
            service("by-number", "shop", json!({ "app": "orders" }), json!(8080)),
            service("metrics", "shop", json!({ "app": "orders" }), json!(9090)),
            service("elsewhere", "other", json!({ "app": "orders" }), json!(8080)),
            service("others", "shop", json!({ "app": "billing" }), json!(8080)),
        ] });
        let (out, report) = inject(input, &a).unwrap();
        let target = |i: usize| out["items"][i]["spec"]["ports"][0]["targetPort"].clone();
        assert_eq!(target(2), "flowmesh-in");
        assert_eq!(target(3), "flowmesh-in");
        assert_eq!(target(4), 9090);
        assert_eq!(target(5), 8080);
        assert_eq!(target(6), 8080);
        assert_eq!(report.len(), 3, "{report:?}");

        // Again: nothing changes.
        let (again, report) = inject(out.clone(), &a).unwrap();
        assert_eq!(again, out);
        assert_eq!(report, ["pod/orders: already has the sidecar, unchanged"]);
    }
}
