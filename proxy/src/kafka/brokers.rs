//! The brokers the proxy has learned and the sidecar listener that stands for each: one
//! listener per upstream broker address, opened the first time a response names it, so that
//! a client that bootstrapped through the sidecar never connects to a broker directly.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::rewrite::Addresses;

/// A listener opened for a broker, handed to the proxy's accept loops.
pub struct Opened {
    pub listener: TcpListener,
    /// The broker's own address (`host:port`).
    pub upstream: String,
}

pub struct Brokers {
    listen_ip: IpAddr,
    advertised_host: String,
    known: Mutex<HashMap<String, SocketAddr>>,
    opened: mpsc::UnboundedSender<Opened>,
}

impl Brokers {
    pub fn new(
        listen_ip: IpAddr,
        advertised_host: String,
    ) -> (Brokers, mpsc::UnboundedReceiver<Opened>) {
        let (opened, rx) = mpsc::unbounded_channel();
        (
            Brokers {
                listen_ip,
                advertised_host,
                known: Mutex::new(HashMap::new()),
                opened,
            },
            rx,
        )
    }

    /// Every broker learned so far: its address and the sidecar listener for it.
    pub fn known(&self) -> Vec<(String, SocketAddr)> {
        let mut all: Vec<_> = self
            .known
            .lock()
            .map(|k| k.iter().map(|(u, l)| (u.clone(), *l)).collect())
            .unwrap_or_default();
        all.sort();
        all
    }

    fn open(&self, upstream: &str) -> std::io::Result<SocketAddr> {
        let std = std::net::TcpListener::bind((self.listen_ip, 0))?;
        std.set_nonblocking(true)?;
        let listener = TcpListener::from_std(std)?;
        let local = listener.local_addr()?;
        self.opened
            .send(Opened {
                listener,
                upstream: upstream.to_owned(),
            })
            .map_err(|_| std::io::Error::other("the Kafka proxy has stopped"))?;
        Ok(local)
    }
}

impl Addresses for Brokers {
    fn local(&self, node: i32, host: &str, port: i32) -> Option<(String, i32)> {
        let upstream = format!("{host}:{port}");
        let mut known = self.known.lock().ok()?;
        let local = match known.get(&upstream) {
            Some(l) => *l,
            None => match self.open(&upstream) {
                Ok(l) => {
                    tracing::info!("kafka: broker {node} at {upstream} is reached through {l}");
                    known.insert(upstream, l);
                    l
                }
                Err(e) => {
                    tracing::warn!(
                        "kafka: cannot open a listener for broker {node} at {upstream}: {e}"
                    );
                    return None;
                }
            },
        };
        Some((self.advertised_host.clone(), i32::from(local.port())))
    }
}
