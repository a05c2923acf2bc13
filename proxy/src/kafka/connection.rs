//! One client connection and its one upstream connection: requests go up in order, each
//! response is matched to its request by correlation id, rewritten where it names brokers,
//! observed, and handed back in request order. A protocol error closes this connection only.

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;

use crate::telemetry::span::Span;

use super::frame::{self, RequestHead};
use super::{Shared, rewrite, tap, versions};

/// Where a client connection's upstream goes.
#[derive(Clone, Debug)]
pub(super) enum Target {
    /// Any of the configured bootstrap brokers.
    Bootstrap,
    /// This broker (`host:port`).
    Broker(String),
}

#[derive(Debug, thiserror::Error)]
pub(super) enum Error {
    #[error("from the client: {0}")]
    Client(frame::Error),
    #[error("from the broker: {0}")]
    Broker(frame::Error),
    #[error("a request of {0} bytes is shorter than a request header")]
    Short(usize),
    #[error("api key {0} is not a Kafka API this sidecar knows")]
    UnknownApi(i16),
    #[error("{0:?} v{1} is not offered through the sidecar")]
    NotOffered(ApiKey, i16),
    #[error("the broker answered correlation id {got} where {want} was due")]
    Correlation { got: i32, want: i32 },
    #[error(transparent)]
    Rewrite(#[from] rewrite::Error),
    #[error(transparent)]
    Tap(#[from] tap::Error),
    #[error("cannot reach {target}: {message}")]
    Connect { target: String, message: String },
}

impl Error {
    /// The metrics label.
    fn reason(&self) -> &'static str {
        match self {
            Error::Client(frame::Error::TooLarge { .. } | frame::Error::Negative(_)) => {
                "frame_size"
            }
            Error::Client(_) => "client_io",
            Error::Broker(_) => "broker_io",
            Error::Short(_) => "malformed",
            Error::UnknownApi(_) => "unknown_api",
            Error::NotOffered(..) => "not_offered",
            Error::Correlation { .. } => "correlation",
            Error::Rewrite(_) => "rewrite",
            Error::Tap(_) => "malformed_records",
            Error::Connect { .. } => "connect",
        }
    }

    /// An ordinary end, not worth a warning.
    fn is_close(&self) -> bool {
        use std::io::ErrorKind::{BrokenPipe, ConnectionReset};
        match self {
            Error::Client(frame::Error::Closed) | Error::Broker(frame::Error::Closed) => true,
            // A client that hangs up with answers still on their way.
            Error::Client(frame::Error::Io(e)) => matches!(e.kind(), BrokenPipe | ConnectionReset),
            _ => false,
        }
    }
}

/// A request that waits for its response.
struct Pending {
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    client_id: Option<String>,
    spans: Vec<Span>,
}

async fn connect(shared: &Shared, target: &Target) -> Result<TcpStream, Error> {
    let candidates: Vec<String> = match target {
        Target::Bootstrap => {
            let all = &shared.options.bootstrap;
            let first = shared.next_bootstrap() % all.len().max(1);
            all.iter()
                .cycle()
                .skip(first)
                .take(all.len())
                .cloned()
                .collect()
        }
        Target::Broker(addr) => vec![addr.clone()],
    };
    let mut last = String::from("no bootstrap broker is configured");
    for addr in &candidates {
        match crate::timer::timeout(shared.options.connect_timeout, TcpStream::connect(addr)).await
        {
            Ok(Ok(s)) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Ok(Err(e)) => last = format!("{addr}: {e}"),
            Err(_) => {
                last = format!(
                    "{addr}: no connection within {:?}",
                    shared.options.connect_timeout
                )
            }
        }
    }
    Err(Error::Connect {
        target: candidates.join(","),
        message: last,
    })
}

/// Serves one client connection until either side closes or breaks the protocol.
pub(super) async fn serve(shared: Arc<Shared>, client: TcpStream, target: Target) {
    let peer = client
        .peer_addr()
        .map_or_else(|_| "?".to_owned(), |a| a.to_string());
    let _open = shared.metrics.connection_opened("kafka");
    let _ = client.set_nodelay(true);
    let outcome = match connect(&shared, &target).await {
        Ok(upstream) => pump(&shared, client, upstream).await,
        Err(e) => Err(e),
    };
    if let Err(e) = outcome
        && !e.is_close()
    {
        shared.metrics.kafka_closed(e.reason());
        tracing::warn!("kafka: closing the connection from {peer}: {e}");
    }
}

async fn pump(shared: &Shared, client: TcpStream, upstream: TcpStream) -> Result<(), Error> {
    let (from_client, to_client) = client.into_split();
    let (from_broker, to_broker) = upstream.into_split();
    let (pending, waiting) = mpsc::channel(shared.options.max_in_flight.max(1));
    let requests = requests(shared, from_client, to_broker, pending);
    let responses = responses(shared, from_broker, to_client, waiting);
    tokio::pin!(requests, responses);
    tokio::select! {
        r = &mut requests => match r {
            // The client is done sending: what it is owed still comes back.
            Ok(()) => responses.await,
            Err(e) => Err(e),
        },
        r = &mut responses => r,
    }
}

async fn requests(
    shared: &Shared,
    mut from_client: OwnedReadHalf,
    mut to_broker: OwnedWriteHalf,
    pending: mpsc::Sender<Pending>,
) -> Result<(), Error> {
    loop {
        let frame = match frame::read(&mut from_client, shared.options.max_frame_bytes).await {
            Ok(f) => f,
            Err(frame::Error::Closed) => return Ok(()),
            Err(e) => return Err(Error::Client(e)),
        };
        let head = RequestHead::peek(&frame).ok_or(Error::Short(frame.len()))?;
        let api = ApiKey::try_from(head.api_key).map_err(|_| Error::UnknownApi(head.api_key))?;
        tracing::trace!(?api, version = head.version, client = ?head.client_id, "kafka request");
        if !versions::allowed(api, head.version) {
            return Err(Error::NotOffered(api, head.version));
        }
        let mut spans = Vec::new();
        let mut answered = true;
        let mut rebuilt = None;
        match api {
            ApiKey::Produce => {
                let produced = shared.tap.produce(&frame, &head)?;
                answered = produced.acks != 0;
                spans = produced.spans;
                rebuilt = produced.frame;
            }
            ApiKey::JoinGroup | ApiKey::OffsetCommit | ApiKey::ConsumerGroupHeartbeat => {
                shared.tap.learn_group(api, &frame, &head);
            }
            _ => {}
        }
        if answered {
            let waiting = Pending {
                api,
                version: head.version,
                correlation_id: head.correlation_id,
                client_id: head.client_id,
                spans,
            };
            if pending.send(waiting).await.is_err() {
                return Ok(()); // the response side ended; its error is the one reported
            }
        } else {
            shared.tap.finish(spans);
        }
        match &rebuilt {
            Some(parts) => frame::write_parts(&mut to_broker, parts).await,
            None => frame::write(&mut to_broker, &frame).await,
        }
        .map_err(Error::Broker)?;
    }
}

/// The largest relay buffer a connection keeps between responses; larger ones are freed so an
/// idle consumer connection does not hold a burst's worth of memory.
const KEEP_BUFFER: usize = 16 << 20;

async fn responses(
    shared: &Shared,
    mut from_broker: OwnedReadHalf,
    mut to_client: OwnedWriteHalf,
    mut waiting: mpsc::Receiver<Pending>,
) -> Result<(), Error> {
    use tokio::io::AsyncWriteExt;
    // The buffer large responses are relayed through, kept across responses: a fresh
    // allocation of megabytes per Fetch costs a page fault every 4 KiB.
    let mut spare = bytes::BytesMut::new();
    while let Some(p) = waiting.recv().await {
        let len = frame::read_size(&mut from_broker, shared.options.max_frame_bytes)
            .await
            .map_err(Error::Broker)?;
        // Fetched records are observed before the client has the whole response: an app that
        // answers a record at once must find the record's trace context already remembered
        // for its business key.
        let fetch = p.api == ApiKey::Fetch;
        let fetched = if len > frame::COALESCE && !rewrite::rewrites(p.api, p.version) {
            let (frame, held) = relay(
                &mut from_broker,
                &mut to_client,
                len,
                &p,
                std::mem::take(&mut spare),
                fetch,
            )
            .await?;
            if fetch {
                shared
                    .tap
                    .fetched(&frame, p.version, p.client_id.as_deref());
            }
            to_client
                .write_all(&frame[held..])
                .await
                .map_err(|e| Error::Client(frame::Error::Io(e)))?;
            frame
        } else {
            let frame = frame::read_body(&mut from_broker, len)
                .await
                .map_err(Error::Broker)?;
            let got = frame::response_correlation(&frame)
                .ok_or(Error::Broker(frame::Error::Truncated))?;
            if got != p.correlation_id {
                return Err(Error::Correlation {
                    got,
                    want: p.correlation_id,
                });
            }
            if fetch {
                shared
                    .tap
                    .fetched(&frame, p.version, p.client_id.as_deref());
            }
            let out = rewrite::response(p.api, p.version, &frame, shared.brokers.as_ref())?;
            frame::write(&mut to_client, out.as_ref().unwrap_or(&frame))
                .await
                .map_err(Error::Client)?;
            frame
        };
        shared.tap.finish(p.spans);
        // Observation keeps no reference to the frame, so its buffer is free again.
        if let Ok(mut buf) = fetched.try_into_mut()
            && buf.capacity() > spare.capacity()
            && buf.capacity() <= KEEP_BUFFER
        {
            buf.clear();
            spare = buf;
        }
    }
    Ok(())
}

/// Passes a large response on as it arrives (a Fetch of megabytes does not wait to be whole
/// before its first byte moves on), after checking its correlation id. The bytes are read
/// into the frame's own buffer and each piece written on from there, so keeping the frame for
/// observation costs no copy. With `hold_last`, the frame's last byte stays back (the client
/// cannot act on an incomplete response) for the caller to send after observing it. Returns
/// the frame and where its unsent part starts.
async fn relay(
    from_broker: &mut OwnedReadHalf,
    to_client: &mut OwnedWriteHalf,
    len: usize,
    p: &Pending,
    mut whole: bytes::BytesMut,
    hold_last: bool,
) -> Result<(Bytes, usize), Error> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let broken = |e: std::io::Error| {
        Error::Broker(match e.kind() {
            std::io::ErrorKind::UnexpectedEof => frame::Error::Truncated,
            _ => frame::Error::Io(e),
        })
    };
    let client = |e: std::io::Error| Error::Client(frame::Error::Io(e));
    let mut head = [0u8; 8];
    head[..4].copy_from_slice(&(len as i32).to_be_bytes());
    from_broker
        .read_exact(&mut head[4..])
        .await
        .map_err(broken)?;
    let got = i32::from_be_bytes([head[4], head[5], head[6], head[7]]);
    if got != p.correlation_id {
        return Err(Error::Correlation {
            got,
            want: p.correlation_id,
        });
    }
    to_client.write_all(&head).await.map_err(client)?;
    whole.clear();
    whole.reserve(len);
    whole.extend_from_slice(&head[4..]);
    let mut sent = whole.len();
    while whole.len() < len {
        let left = (len - whole.len()) as u64;
        let n = (&mut *from_broker)
            .take(left)
            .read_buf(&mut whole)
            .await
            .map_err(broken)?;
        if n == 0 {
            return Err(Error::Broker(frame::Error::Truncated));
        }
        let upto = if hold_last && whole.len() == len {
            len - 1
        } else {
            whole.len()
        };
        to_client
            .write_all(&whole[sent..upto])
            .await
            .map_err(client)?;
        sent = upto;
    }
    Ok((whole.freeze(), sent))
}
