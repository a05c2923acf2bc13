//! Kafka for tests: librdkafka's mock cluster (a real Kafka-protocol broker, inside the
//! confluent-kafka wheel) and real clients (confluent-kafka through tests/kafka/client.py, and
//! Debian's kcat), all on 127.0.0.1.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

fn scripts() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/kafka")
}

/// A mock cluster, stopped when dropped (its stdin closes).
pub(crate) struct MockCluster {
    child: Child,
    /// `host:port` of each broker.
    pub(crate) brokers: Vec<String>,
}

impl MockCluster {
    pub(crate) fn start(brokers: usize) -> MockCluster {
        let mut child = Command::new("python3")
            .arg(scripts().join("mock_cluster.py"))
            .arg(brokers.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 with confluent-kafka (tests/install-deps.sh installs it)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let brokers: Vec<String> = line.trim().split(',').map(str::to_owned).collect();
        assert!(
            brokers.iter().all(|b| b.contains(':')),
            "the mock cluster did not start: {line:?}"
        );
        MockCluster { child, brokers }
    }

    pub(crate) fn bootstrap(&self) -> String {
        self.brokers.join(",")
    }
}

impl Drop for MockCluster {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs tests/kafka/client.py with `args` and reads the JSON it prints.
pub(crate) async fn client(args: &[&str]) -> serde_json::Value {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let out = Command::new("python3")
            .arg(scripts().join("client.py"))
            .args(&args)
            .stderr(Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        serde_json::from_str(text.trim())
            .unwrap_or_else(|e| panic!("client.py {args:?} printed no JSON ({e}): {text}"))
    })
    .await
    .unwrap()
}

/// Runs kcat with `args`, `input` on its stdin; its stdout.
pub(crate) async fn kcat(args: &[&str], input: &str) -> String {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let input = input.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new("kcat")
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kcat (tests/install-deps.sh installs it)");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "kcat {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    })
    .await
    .unwrap()
}

/// Decodes the base64 the client prints.
pub(crate) fn unb64(v: &serde_json::Value) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str()?)
        .ok()
}

/// A long-running app of tests/kafka/choreography.py.
pub(crate) struct App(Child);

impl App {
    pub(crate) fn start(args: &[&str]) -> App {
        App(Command::new("python3")
            .arg(scripts().join("choreography.py"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap())
    }

    /// Waits for the app to finish and reads the JSON it prints.
    pub(crate) async fn finish(self) -> serde_json::Value {
        let child = self.0;
        tokio::task::spawn_blocking(move || {
            let out = child.wait_with_output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            serde_json::from_str(text.trim())
                .unwrap_or_else(|e| panic!("choreography.py printed no JSON ({e}): {text}"))
        })
        .await
        .unwrap()
    }
}

/// tansu, a Kafka-compatible broker (in memory here), started in an empty directory because
/// it reads a `.env` from where it runs; stopped when dropped.
pub(crate) struct Tansu {
    child: Child,
    _dir: tempfile::TempDir,
    pub(crate) bootstrap: String,
}

impl Tansu {
    pub(crate) fn start() -> Tansu {
        let dir = tempfile::tempdir().unwrap();
        // tansu must advertise the address it listens on, so the port is chosen here.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("tcp://127.0.0.1:{port}");
        let mut child = Command::new("tansu")
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("tansu (tests/install-deps.sh installs it with cargo install)");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        loop {
            match lines.next() {
                Some(Ok(l)) if l.contains("ready in") => break,
                Some(Ok(_)) => {}
                _ => panic!("tansu stopped before it was ready"),
            }
        }
        std::thread::spawn(move || for _ in lines {});
        Tansu {
            child,
            _dir: dir,
            bootstrap: format!("127.0.0.1:{port}"),
        }
    }

    /// tansu creates no topic on first use.
    pub(crate) fn create_topic(&self, topic: &str) {
        let out = Command::new("tansu")
            .args(["topic", "create", topic, "--partitions", "3", "--broker"])
            .arg(format!("tcp://{}", self.bootstrap))
            .current_dir(self._dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "tansu topic create {topic}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
