//! The demo's mesh on this machine: a one-node control plane, and per service a sidecar and
//! its app, all child processes of this binary, in a temporary directory. Every process is
//! killed when the mesh is dropped (also on Ctrl-C and on errors).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use flowmesh_control_plane::client::Client;
use flowmesh_control_plane::http::HttpClient;
use flowmesh_example_order_fulfillment::{SERVICES, TOPIC};
use hyper::Method;
use serde_json::Value;

const TOKEN: &str = "flowmesh-demo";

/// How each service's sidecar performs the jobs of the processes it owns.
fn jobs(service: &str) -> &'static str {
    match service {
        "order" => {
            r#"
[jobs]
"retrieve-payment" = { publish = { topic = "flowing-retail", type = "RetrievePaymentCommand" } }
"fetch-goods" = { publish = { topic = "flowing-retail", type = "FetchGoodsCommand" } }
"ship-goods" = { publish = { topic = "flowing-retail", type = "ShipGoodsCommand" } }
"order-completed" = { publish = { topic = "flowing-retail", type = "OrderCompletedEvent" } }
"refund-payment" = { publish = { topic = "flowing-retail", type = "RefundPaymentCommand" } }
"payment-overdue" = { publish = { topic = "flowing-retail", type = "PaymentOverdueEvent" } }
"#
        }
        "payment" => {
            r#"
[jobs]
charge = { http = "POST /jobs/charge", timeout = "10s", retries = 3, backoff = "200ms" }
"payment-received" = { publish = { topic = "flowing-retail", type = "PaymentReceivedEvent" } }
"#
        }
        _ => "",
    }
}

pub(crate) struct Mesh {
    dir: tempfile::TempDir,
    children: Vec<(String, Child)>,
    pub(crate) control_plane: String,
    /// Each service's sidecar local API (`http://…`) and app address.
    pub(crate) sidecars: BTreeMap<&'static str, String>,
    pub(crate) apps: BTreeMap<&'static str, SocketAddr>,
    /// Each sidecar's inbound address (callers reach the app through it).
    pub(crate) inbound: BTreeMap<&'static str, SocketAddr>,
    pub(crate) http: HttpClient,
    /// Events ride on Kafka (the apps read the topic themselves; no sidecar subscribes).
    kafka: bool,
}

impl Drop for Mesh {
    /// Stops the apps and sidecars gracefully (SIGTERM: they drain and flush their spans),
    /// then the control plane; whatever does not stop within a few seconds is killed.
    fn drop(&mut self) {
        let (cp, rest): (Vec<_>, Vec<_>) = self
            .children
            .iter_mut()
            .partition(|(name, _)| name == "control-plane");
        for group in [rest, cp] {
            let mut asked = true;
            for (_, child) in &group {
                asked &= Command::new("kill")
                    .args(["-TERM", &child.id().to_string()])
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
            }
            // Without kill(1) there is no polite way: they are killed at once.
            let grace = if asked {
                Duration::from_secs(6)
            } else {
                Duration::ZERO
            };
            let deadline = Instant::now() + grace;
            for (_, child) in group {
                while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                    std::thread::sleep(Duration::from_millis(20));
                }
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

impl Mesh {
    /// Starts everything and waits until every part answers and the sidecars know each other.
    /// Every listener binds port 0 and the demo reads the address each process announces, so
    /// nothing races for a port; each sidecar's config file is then rewritten with the
    /// addresses it got, so that a sidecar restarted from it comes back on the same ones.
    pub(crate) async fn start(otlp: Option<&str>, kafka: Option<&str>) -> Result<Mesh, String> {
        if let Some(bootstrap) = kafka {
            ensure_topic(bootstrap).await?;
        }
        let dir = tempfile::Builder::new()
            .prefix("flowmesh-demo-")
            .tempdir()
            .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
        let mut mesh = Mesh {
            dir,
            children: Vec::new(),
            control_plane: String::new(),
            sidecars: BTreeMap::new(),
            apps: BTreeMap::new(),
            inbound: BTreeMap::new(),
            http: HttpClient::new(),
            kafka: kafka.is_some(),
        };
        let bin = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
        let token = mesh.dir.path().join("token");
        std::fs::write(&token, TOKEN).map_err(|e| e.to_string())?;
        let cp_data = mesh.dir.path().join("control-plane");
        let line = mesh.spawn(
            &bin,
            "control-plane",
            &[
                "control-plane",
                "--id",
                "1",
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
                &cp_data.display().to_string(),
                "--token-file",
                &token.display().to_string(),
            ],
            " listening on ",
        )?;
        mesh.control_plane = format!("http://{}", after(&line, " listening on ")?);
        for service in SERVICES {
            let line = mesh.spawn(
                &bin,
                &format!("{service}-app"),
                &["example-app", service, "--listen", "127.0.0.1:0"],
                " listening on ",
            )?;
            let app: SocketAddr = after(&line, " listening on ")?
                .parse()
                .map_err(|e| format!("{service}-app announced '{line}': {e}"))?;
            let data = mesh.dir.path().join(service);
            // On the Kafka bus the apps read the topic themselves, through the sidecar.
            let subscription = if service == "checkout" || kafka.is_some() {
                String::new()
            } else {
                format!(
                    "\n[[subscriptions]]\ntopic = \"{TOPIC}\"\npath = \"/events\"\nbackoff = \"100ms\"\nattempts = 50\n"
                )
            };
            let cp_url = mesh.control_plane.clone();
            let config = |local: &str, inbound: &str, kafka_listen: &str| {
                let bus = match kafka {
                    Some(b) => format!("[kafka]\nbootstrap = \"{b}\"\n[bus]\nkind = \"kafka\"\n"),
                    None => String::new(),
                };
                format!(
                    "service = \"{service}\"\ninstance = \"{service}-1\"\ndata_dir = \"{data}\"\ncontrol_plane = [\"{cp_url}\"]\ntoken_file = \"{token}\"\n\
                     [app]\naddress = \"{app}\"\n\
                     [listen]\nlocal = \"{local}\"\ninbound = \"{inbound}\"\noutbound = \"127.0.0.1:0\"\nmesh = \"127.0.0.1:0\"\nkafka = \"{kafka_listen}\"\n\
                     [telemetry]\notlp_endpoint = \"{otlp}\"\n{bus}{jobs}{subscription}",
                    data = data.display(),
                    token = token.display(),
                    otlp = otlp.unwrap_or("none"),
                    jobs = jobs(service),
                )
            };
            let file = mesh.dir.path().join(format!("{service}.toml"));
            std::fs::write(&file, config("127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"))
                .map_err(|e| e.to_string())?;
            let line = mesh.spawn(
                &bin,
                &format!("{service}-sidecar"),
                &["proxy", "--config", &file.display().to_string()],
                ", local API ",
            )?;
            let local = after(&line, ", local API ")?;
            let inbound = after(&line, ": inbound ")?
                .split(' ')
                .next()
                .unwrap_or_default()
                .to_owned();
            let kafka_port = match kafka {
                Some(_) => after(&line, ", kafka ")?,
                None => "127.0.0.1:0".to_owned(),
            };
            std::fs::write(&file, config(&local, &inbound, &kafka_port))
                .map_err(|e| e.to_string())?;
            let sidecar = format!("http://{local}");
            mesh.call_text(
                Method::PUT,
                &format!("http://{app}/admin/sidecar"),
                &sidecar,
            )
            .await
            .map_err(|e| format!("{service}-app: {e}"))?;
            if kafka.is_some() {
                // The app joins its consumer group before the demo goes on (up to 30 s).
                let reply = mesh
                    .http
                    .send(
                        Method::PUT,
                        &format!("http://{app}/admin/kafka"),
                        &[],
                        Bytes::from(kafka_port.clone()),
                        Duration::from_secs(40),
                    )
                    .await
                    .map_err(|e| format!("{service}-app: {e}"))?;
                if !reply.status.is_success() {
                    return Err(format!(
                        "{service}-app could not use Kafka at {kafka_port}: {}",
                        String::from_utf8_lossy(&reply.body).trim()
                    ));
                }
            }
            mesh.sidecars.insert(service, sidecar);
            mesh.apps.insert(service, app);
            mesh.inbound.insert(
                service,
                inbound
                    .parse()
                    .map_err(|e| format!("{service}-sidecar announced '{line}': {e}"))?,
            );
        }
        // Where everything is, for tools and tests that look at a running demo.
        let map = serde_json::json!({
            "control_plane": mesh.control_plane,
            "sidecars": mesh.sidecars,
            "apps": mesh.apps,
            "inbound": mesh.inbound,
        });
        std::fs::write(mesh.dir.path().join("mesh.json"), map.to_string())
            .map_err(|e| e.to_string())?;
        mesh.ready().await?;
        Ok(mesh)
    }

    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Starts a child whose stderr goes to `<name>.log`, and returns the first line of it that
    /// contains `announce` (how it tells where it listens).
    fn spawn(
        &mut self,
        bin: &PathBuf,
        name: &str,
        args: &[&str],
        announce: &str,
    ) -> Result<String, String> {
        let mut log = std::fs::File::create(self.dir.path().join(format!("{name}.log")))
            .map_err(|e| e.to_string())?;
        let mut child = Command::new(bin)
            .args(args)
            .env("FLOWMESH_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        let stderr = child.stderr.take();
        self.children.push((name.to_owned(), child));
        let (tx, rx) = std::sync::mpsc::channel();
        let announce = announce.to_owned();
        std::thread::spawn(move || {
            use std::io::{BufRead, Write};
            let Some(stderr) = stderr else { return };
            let mut tx = Some(tx);
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let _ = writeln!(log, "{line}");
                if line.contains(&announce)
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(line);
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(30)).map_err(|_| {
            let log = std::fs::read_to_string(self.dir.path().join(format!("{name}.log")))
                .unwrap_or_default();
            format!("{name} did not start: {}", log.trim())
        })
    }

    /// A process that ended: its name and its log's last lines.
    fn crashed(&mut self) -> Option<String> {
        for (name, child) in &mut self.children {
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(self.dir.path().join(format!("{name}.log")))
                    .unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(5).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                return Some(format!("{name} exited ({status}): {}", tail.join(" | ")));
            }
        }
        None
    }

    /// A request with a text body; an error unless the answer is 2xx.
    async fn call_text(&self, method: Method, url: &str, body: &str) -> Result<(), String> {
        let reply = self
            .http
            .send(
                method,
                url,
                &[],
                Bytes::from(body.to_owned()),
                Duration::from_secs(10),
            )
            .await
            .map_err(|e| e.to_string())?;
        if reply.status.is_success() {
            Ok(())
        } else {
            Err(format!("{url}: {}", reply.status))
        }
    }

    /// GET or POST on a URL; the JSON answer of a 2xx.
    pub(crate) async fn call(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<Value, String> {
        let bytes = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
        let reply = self
            .http
            .send(
                method,
                url,
                &[("content-type", "application/json")],
                bytes,
                Duration::from_secs(10),
            )
            .await
            .map_err(|e| e.to_string())?;
        if !reply.status.is_success() {
            return Err(format!(
                "{url}: {} {}",
                reply.status,
                String::from_utf8_lossy(&reply.body)
            ));
        }
        Ok(serde_json::from_slice(&reply.body).unwrap_or(Value::Null))
    }

    /// Polls `check` until it holds, within `within`; a crashed child ends the wait at once.
    pub(crate) async fn until<F: std::future::Future<Output = bool>>(
        &mut self,
        what: &str,
        within: Duration,
        mut check: impl FnMut() -> F,
    ) -> Result<(), String> {
        let deadline = Instant::now() + within;
        loop {
            if check().await {
                return Ok(());
            }
            if let Some(crash) = self.crashed() {
                return Err(crash);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{what} did not happen within {} s (logs in {})",
                    within.as_secs(),
                    self.dir.path().display()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn ready(&mut self) -> Result<(), String> {
        let cp = self.control_plane.clone();
        let http = self.http.clone();
        self.until("the control plane's start", Duration::from_secs(30), || {
            let (http, cp) = (http.clone(), cp.clone());
            async move { ok(&http, &format!("{cp}/healthz")).await }
        })
        .await?;
        let checks: Vec<String> = self
            .sidecars
            .values()
            .map(|s| format!("{s}/healthz"))
            .chain(self.apps.values().map(|a| format!("http://{a}/healthz")))
            .collect();
        for url in checks {
            let http = http.clone();
            self.until(&format!("{url} answering"), Duration::from_secs(30), || {
                let (http, url) = (http.clone(), url.clone());
                async move { ok(&http, &url).await }
            })
            .await?;
        }
        // Every sidecar has registered, and the publishers know the subscribers (on Kafka the
        // apps' own consumer groups are the subscribers, and they have joined already).
        if !self.kafka {
            self.every_sidecar("the sidecars finding each other", |d| {
                d["subscribers"][TOPIC]
                    .as_array()
                    .is_some_and(|a| a.len() == SERVICES.len() - 1)
            })
            .await?;
        }
        Ok(())
    }

    /// Deploys a model owned by `owner`: the control plane's revision after it and the
    /// version each process got.
    pub(crate) async fn deploy(
        &self,
        xml: &str,
        owner: &str,
    ) -> Result<(u64, Vec<(String, u32)>), String> {
        let answer = Client::new(&self.control_plane, Some(TOKEN.to_owned()))
            .deploy(Bytes::from(xml.to_owned()), Some(owner))
            .await
            .map_err(|e| format!("deploying to the control plane: {e}"))?;
        Ok((
            answer.revision,
            answer
                .models
                .into_iter()
                .map(|m| (m.process, m.version))
                .collect(),
        ))
    }

    /// Sets rollout weights; the control plane's revision after it.
    pub(crate) async fn rollout(
        &self,
        process: &str,
        weights: &[(u32, u32)],
    ) -> Result<u64, String> {
        let request = flowmesh_proto::control::RolloutRequest {
            weights: weights.iter().map(|(v, w)| (v.to_string(), *w)).collect(),
        };
        let answer = Client::new(&self.control_plane, Some(TOKEN.to_owned()))
            .rollout(process, &request)
            .await
            .map_err(|e| format!("setting the rollout of {process}: {e}"))?;
        Ok(answer["revision"].as_u64().unwrap_or(0))
    }

    /// Waits until every sidecar has seen the control plane's `revision`.
    pub(crate) async fn synced(&mut self, revision: u64) -> Result<(), String> {
        self.every_sidecar("the sidecars following the control plane", |d| {
            d["revision"].as_u64().unwrap_or(0) >= revision
        })
        .await
    }

    /// Waits until what every sidecar believes (`GET /v1/deployments`) satisfies `check`.
    async fn every_sidecar(
        &mut self,
        what: &str,
        check: impl Fn(&Value) -> bool + Clone,
    ) -> Result<(), String> {
        let sidecars: Vec<String> = self.sidecars.values().cloned().collect();
        let http = self.http.clone();
        for s in sidecars {
            self.until(what, Duration::from_secs(30), || {
                let (http, s, check) = (http.clone(), s.clone(), check.clone());
                async move {
                    get(&http, &format!("{s}/v1/deployments"))
                        .await
                        .is_some_and(|d| check(&d))
                }
            })
            .await?;
        }
        Ok(())
    }

    /// Asks the control plane's registry where `service`'s sidecar serves its local API now
    /// (it may have been restarted on other ports), and uses that from now on.
    pub(crate) async fn refresh_local(&mut self, service: &'static str) {
        let Ok(services) = Client::new(&self.control_plane, None).services(false).await else {
            return;
        };
        let local = services
            .services
            .iter()
            .find(|s| s.name == service)
            .and_then(|s| s.instances.first())
            .and_then(|i| i.addresses.get("local"));
        if let Some(local) = local {
            self.sidecars.insert(service, format!("http://{local}"));
        }
    }

    /// Switches every app between choreography and orchestration.
    pub(crate) async fn set_mode(&self, mode: &str) -> Result<(), String> {
        for (service, app) in &self.apps {
            let reply = self
                .http
                .send(
                    Method::PUT,
                    &format!("http://{app}/admin/mode"),
                    &[],
                    Bytes::from(mode.to_owned()),
                    Duration::from_secs(5),
                )
                .await
                .map_err(|e| format!("{service}: {e}"))?;
            if !reply.status.is_success() {
                return Err(format!("{service} refused mode {mode}"));
            }
        }
        Ok(())
    }
}

/// What follows `marker` in an announced line.
/// The word after `marker` in an announcement line (up to a space or comma).
fn after(line: &str, marker: &str) -> Result<String, String> {
    line.split_once(marker)
        .and_then(|(_, rest)| rest.trim().split([' ', ',']).next())
        .map(str::to_owned)
        .ok_or_else(|| format!("no '{marker}' in '{line}'"))
}

/// Creates the demo's topic on the Kafka cluster unless it exists (some brokers, tansu among
/// them, create no topic on first use).
async fn ensure_topic(bootstrap: &str) -> Result<(), String> {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .map_err(|e| format!("cannot reach Kafka at {bootstrap}: {e}"))?;
    let topic = NewTopic::new(TOPIC, 3, TopicReplication::Fixed(1));
    let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(20)));
    let results = admin
        .create_topics([&topic], &options)
        .await
        .map_err(|e| format!("cannot create topic {TOPIC} on {bootstrap}: {e}"))?;
    for r in results {
        match r {
            Ok(_) | Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, e)) => return Err(format!("cannot create topic {t} on {bootstrap}: {e}")),
        }
    }
    Ok(())
}

async fn ok(http: &HttpClient, url: &str) -> bool {
    http.send(Method::GET, url, &[], Bytes::new(), Duration::from_secs(2))
        .await
        .is_ok_and(|r| r.status.is_success())
}

pub(crate) async fn get(http: &HttpClient, url: &str) -> Option<Value> {
    let r = http
        .send(Method::GET, url, &[], Bytes::new(), Duration::from_secs(5))
        .await
        .ok()?;
    if !r.status.is_success() {
        return None;
    }
    serde_json::from_slice(&r.body).ok()
}
