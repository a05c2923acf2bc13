//! The load generator every target gets: HTTP/1.1 `GET /` with keep-alive, written by hand so
//! that the generator's own work (and its wake-ups, which cost tens of microseconds on a VM)
//! stays small next to what it measures.
//!
//! Open loop: a pacing thread writes each request itself, on an idle connection of the target's
//! pool (a new one when all are busy), the moment it is due, whatever the answers do; one task
//! per connection on the benchmark's single-threaded runtime reads the answers. Each latency
//! counts from the moment its request was due, so a stall shows in every request it delays.
//! Closed loop: `connections` tasks send back to back, for the saturation throughput.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The body every target answers with.
const BODY_LEN: usize = 1024;
/// How long before a request is due the pacer stops sleeping and spins: a sleep on this VM
/// ends about 100 µs late (timer slack and the wake-up), a longer spin takes a core's worth
/// of time from what is measured and does not make the late tail shorter.
const SPIN: Duration = Duration::from_micros(100);
/// How long a round waits for its last answers before it counts them as errors.
const STRAGGLERS: Duration = Duration::from_secs(10);

/// Where requests go, and the `Host` they name (the two-hop path names the service).
#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) addr: SocketAddr,
    pub(crate) host: String,
}

impl Target {
    pub(crate) fn new(port: u16, host: Option<&str>) -> Target {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        Target {
            addr,
            host: host.map_or_else(|| addr.to_string(), str::to_owned),
        }
    }

    fn request(&self) -> Vec<u8> {
        format!("GET / HTTP/1.1\r\nHost: {}\r\n\r\n", self.host).into_bytes()
    }
}

/// Reads one answer from `stream` into `buf` (emptied first); `Ok(true)` when it is a 200 with
/// a 1 KiB body framed by `Content-Length`.
async fn read_answer(
    stream: &mut tokio::net::TcpStream,
    buf: &mut Vec<u8>,
) -> std::io::Result<bool> {
    buf.clear();
    loop {
        if stream.read_buf(buf).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let mut fields = [httparse::EMPTY_HEADER; 32];
        let mut head = httparse::Response::new(&mut fields);
        let head_len = match head.parse(buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => continue,
            Err(e) => return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
        };
        let length = head
            .headers
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case("content-length"))
            .and_then(|f| {
                std::str::from_utf8(f.value)
                    .ok()?
                    .trim()
                    .parse::<usize>()
                    .ok()
            });
        let Some(length) = length else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "an answer without Content-Length",
            ));
        };
        let ok = head.code == Some(200) && length == BODY_LEN;
        while buf.len() < head_len + length {
            if stream.read_buf(buf).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
        return Ok(ok && buf.len() == head_len + length);
    }
}

/// One GET on a fresh connection: `true` when it answered 200 with 1 KiB.
pub(crate) async fn probe(target: &Target) -> bool {
    let Ok(mut stream) = tokio::net::TcpStream::connect(target.addr).await else {
        return false;
    };
    let mut buf = Vec::with_capacity(4096);
    stream.write_all(&target.request()).await.is_ok()
        && matches!(read_answer(&mut stream, &mut buf).await, Ok(true))
}

/// Latencies of successful requests, and how many failed.
#[derive(Default)]
pub(crate) struct Latency {
    pub(crate) samples: Vec<Duration>,
    pub(crate) errors: u64,
    /// Requests sent, the warm-up's included (for CPU per request).
    pub(crate) sent: u64,
    /// How late the generator itself began to send each counted request: its own noise,
    /// which every target's figures carry alike.
    pub(crate) send_lag: Vec<Duration>,
    /// The priority the pacer ran at (of the last round merged in).
    pub(crate) pacer_nice: Option<Nice>,
}

/// A thread's nice value, and why it is not the one asked for when it could not be set.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Nice {
    pub(crate) now: i32,
    pub(crate) refused: Option<String>,
}

impl Nice {
    /// Sets the calling thread's nice value to `asked`, if any (on Linux, `setpriority` with
    /// no pid is per thread), and reads back the one it has.
    fn set(asked: Option<i32>) -> Nice {
        let refused = asked.and_then(|asked| {
            rustix::process::setpriority_process(None, asked)
                .err()
                .map(|e| format!("cannot set the pacer's nice value to {asked}: {e}"))
        });
        let now = rustix::process::getpriority_process(None).unwrap_or(0);
        Nice { now, refused }
    }
}

impl Latency {
    pub(crate) fn merge(&mut self, other: Latency) {
        self.samples.extend(other.samples);
        self.errors += other.errors;
        self.sent += other.sent;
        self.send_lag.extend(other.send_lag);
        self.pacer_nice = other.pacer_nice.or(self.pacer_nice.take());
    }

    /// The `q` quantile of the latencies in microseconds, to 0.1 µs.
    pub(crate) fn us(&mut self, q: f64) -> f64 {
        quantile_us(&mut self.samples, q)
    }
}

/// The `q` quantile of `samples` in microseconds, to 0.1 µs (0 when there are none).
pub(crate) fn quantile_us(samples: &mut [Duration], q: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let n = samples.len();
    let i = ((n as f64 * q).ceil() as usize).clamp(1, n) - 1;
    // Linear time: the paired comparison (paired.rs) takes this quantile thousands of times.
    let (_, at, _) = samples.select_nth_unstable(i);
    (at.as_secs_f64() * 1e7).round() / 10.0
}

/// A request on its way: the round it belongs to, whether it is counted (not warm-up), and
/// when it was due.
#[derive(Clone, Copy)]
struct Due {
    round: u64,
    counted: bool,
    at: Instant,
}

/// One keep-alive connection of a pool: the pacer writes on `writer`, the connection's task
/// reads the answers from a duplicate of the same socket.
struct Conn {
    writer: std::net::TcpStream,
    state: Mutex<ConnState>,
}

#[derive(Default)]
struct ConnState {
    /// The request written and not yet answered.
    due: Option<Due>,
    /// The reader has stopped: nothing written here would be read.
    closed: bool,
}

/// What a round's pacer leaves behind.
struct Paced {
    /// The requests it could not write: all of them, and those counted.
    unsent: (u64, u64),
    /// How late it began to send each counted request.
    lag: Vec<Duration>,
    nice: Option<Nice>,
}

impl Paced {
    /// A pacer that is gone without a word: none of its `total` requests counts as sent.
    fn none(total: u64) -> Paced {
        Paced {
            unsent: (total, total),
            lag: Vec::new(),
            nice: None,
        }
    }
}

/// What a round's answers leave behind.
#[derive(Default)]
struct Tally {
    samples: Vec<Duration>,
    errors: u64,
    answered: u64,
}

/// A target's keep-alive connections, kept across rounds, and the round under way.
pub(crate) struct Pool {
    target: Target,
    request: Vec<u8>,
    /// The nice value the pacer asks for; none: the one it is started with.
    pacer_nice: Option<i32>,
    runtime: tokio::runtime::Handle,
    idle: Mutex<Vec<Arc<Conn>>>,
    round: AtomicU64,
    tally: Mutex<Tally>,
    answered: tokio::sync::Notify,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Pool {
    /// A pool for `target`, its connections read on the current runtime.
    pub(crate) fn new(target: &Target, pacer_nice: Option<i32>) -> Arc<Pool> {
        Arc::new(Pool {
            target: target.clone(),
            request: target.request(),
            pacer_nice,
            runtime: tokio::runtime::Handle::current(),
            idle: Mutex::new(Vec::new()),
            round: AtomicU64::new(0),
            tally: Mutex::new(Tally::default()),
            answered: tokio::sync::Notify::new(),
        })
    }

    /// Records the end of the request that was due on `conn`, if it belongs to this round.
    fn answered(&self, conn: &Conn, ok: bool, closed: bool) {
        let due = {
            let mut state = lock(&conn.state);
            state.closed |= closed;
            state.due.take()
        };
        let Some(due) = due else {
            return;
        };
        let took = due.at.elapsed();
        if due.round != self.round.load(Ordering::Acquire) {
            return;
        }
        let mut tally = lock(&self.tally);
        tally.answered += 1;
        if due.counted {
            if ok {
                tally.samples.push(took);
            } else {
                tally.errors += 1;
            }
        }
        drop(tally);
        self.answered.notify_one();
    }

    /// Reads `conn`'s answers until it fails or closes; after each it is idle again.
    async fn read(self: Arc<Pool>, conn: Arc<Conn>, reader: std::net::TcpStream) {
        let Ok(mut stream) = tokio::net::TcpStream::from_std(reader) else {
            self.answered(&conn, false, true);
            return;
        };
        let mut buf = Vec::with_capacity(4096);
        loop {
            match read_answer(&mut stream, &mut buf).await {
                Ok(ok) => {
                    self.answered(&conn, ok, false);
                    lock(&self.idle).push(conn.clone());
                }
                Err(_) => {
                    self.answered(&conn, false, true);
                    return;
                }
            }
        }
    }

    /// Opens a connection, its reader task started on the runtime.
    fn connect(self: &Arc<Pool>) -> std::io::Result<Arc<Conn>> {
        let stream = std::net::TcpStream::connect(self.target.addr)?;
        stream.set_nodelay(true)?;
        // Both handles share one open file: the pacer's writes do not block either, and a
        // request never finds a full send buffer on an idle connection.
        stream.set_nonblocking(true)?;
        let reader = stream.try_clone()?;
        let conn = Arc::new(Conn {
            writer: stream,
            state: Mutex::new(ConnState::default()),
        });
        self.runtime.spawn(self.clone().read(conn.clone(), reader));
        Ok(conn)
    }

    /// Writes one request due `due` on an idle connection (a new one when none is idle);
    /// `false` when it could not be written and its answer will not be waited for.
    fn send(self: &Arc<Pool>, due: Due) -> bool {
        let conn = loop {
            let idle = lock(&self.idle).pop();
            let conn = match idle {
                Some(c) => c,
                None => match self.connect() {
                    Ok(c) => c,
                    Err(_) => return false,
                },
            };
            // A connection the server closed while it was idle is left behind.
            let mut state = lock(&conn.state);
            if !state.closed {
                state.due = Some(due);
                drop(state);
                break conn;
            }
        };
        if matches!((&conn.writer).write(&self.request), Ok(n) if n == self.request.len()) {
            return true;
        }
        // Its reader sees the connection fail and stops. Unless it already counted this
        // request as failed, nothing will: the caller counts it as not sent.
        let counted_by_reader = lock(&conn.state).due.take().is_none();
        let _ = conn.writer.shutdown(std::net::Shutdown::Both);
        counted_by_reader
    }
}

/// `rate` requests per second for `warmup` (not counted) and then `duration`.
/// A thread of its own paces and writes the requests (sleeping, then spinning the last
/// 100 µs): tokio's timer has a 1 ms grain, which would add up to a millisecond of noise to
/// every figure, and handing each request to another thread would add a wake-up to each.
/// The pacer runs at the pool's nice value, if it has one: a knob for studying how the
/// scheduler treats the generator and the targets on the same two CPUs
/// (bench/proxy/README.md, eighth round).
pub(crate) async fn open_loop(
    pool: &Arc<Pool>,
    rate: u32,
    warmup: Duration,
    duration: Duration,
) -> Latency {
    let round = pool.round.fetch_add(1, Ordering::AcqRel) + 1;
    *lock(&pool.tally) = Tally::default();
    let interval = Duration::from_secs(1) / rate;
    let total = ((warmup + duration).as_secs_f64() * f64::from(rate)) as u64;
    let counted_from = (warmup.as_secs_f64() * f64::from(rate)) as u64;
    let pacer_pool = pool.clone();
    // The pacer's count of requests it could not write (all, and those counted) and its lag,
    // sent when it is done: a signal that cannot race the thread's exit.
    let (paced_tx, mut paced_rx) = tokio::sync::oneshot::channel::<Paced>();
    let pacer = std::thread::spawn(move || {
        let nice = Some(Nice::set(pacer_pool.pacer_nice));
        let start = Instant::now() + Duration::from_millis(20);
        // Requests that could not be written: all of them, and those counted.
        let mut unsent = (0u64, 0u64);
        let mut lag = Vec::with_capacity((total - counted_from) as usize);
        for i in 0..total {
            let at = start + interval * u32::try_from(i).unwrap_or(u32::MAX);
            loop {
                let now = Instant::now();
                if now >= at {
                    break;
                }
                let left = at - now;
                if left > SPIN {
                    std::thread::sleep(left - SPIN);
                } else {
                    std::hint::spin_loop();
                }
            }
            let due = Due {
                round,
                counted: i >= counted_from,
                at,
            };
            if due.counted {
                lag.push(at.elapsed());
            }
            if !pacer_pool.send(due) {
                unsent.0 += 1;
                unsent.1 += u64::from(due.counted);
            }
        }
        let _ = paced_tx.send(Paced { unsent, lag, nice });
    });
    // Every request sent is answered, fails with its connection, or is given up on here.
    let deadline = tokio::time::sleep(warmup + duration + STRAGGLERS);
    tokio::pin!(deadline);
    let mut paced: Option<Paced> = None;
    loop {
        let waiting = pool.answered.notified();
        if let Some(Paced {
            unsent: (all, _), ..
        }) = &paced
            && lock(&pool.tally).answered + all >= total
        {
            break;
        }
        tokio::select! {
            result = &mut paced_rx, if paced.is_none() => {
                paced = Some(result.unwrap_or_else(|_| Paced::none(total)));
            }
            _ = waiting => {}
            () = &mut deadline => break,
        }
    }
    if paced.is_none() {
        // Given up on before the pacer was done (it ends within the round's time).
        paced = paced_rx.await.ok();
    }
    let _ = pacer.join();
    let Paced {
        unsent: (_, unsent),
        lag: send_lag,
        nice,
    } = paced.unwrap_or_else(|| Paced::none(total));
    // Answers still missing are errors; a late one is not counted in the next round.
    pool.round.fetch_add(1, Ordering::AcqRel);
    let tally = std::mem::take(&mut *lock(&pool.tally));
    let counted = total - counted_from;
    let missing = counted.saturating_sub(tally.samples.len() as u64 + tally.errors + unsent);
    Latency {
        samples: tally.samples,
        errors: tally.errors + unsent + missing,
        sent: total,
        send_lag,
        pacer_nice: nice,
    }
}

/// Requests per second with `connections` connections back to back for `duration`, after a
/// one-second warm-up.
pub(crate) async fn saturate(target: &Target, connections: usize, duration: Duration) -> f64 {
    let warm_until = Instant::now() + Duration::from_secs(1);
    let end = warm_until + duration;
    let done = Arc::new(AtomicU64::new(0));
    let request: Arc<[u8]> = target.request().into();
    let mut workers = Vec::new();
    for _ in 0..connections {
        let (addr, request, done) = (target.addr, request.clone(), done.clone());
        workers.push(tokio::spawn(async move {
            let mut buf = Vec::with_capacity(4096);
            'connection: while Instant::now() < end {
                let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                loop {
                    let now = Instant::now();
                    if now >= end {
                        break 'connection;
                    }
                    if stream.write_all(&request).await.is_err() {
                        continue 'connection;
                    }
                    match read_answer(&mut stream, &mut buf).await {
                        Ok(true) if now >= warm_until => {
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(_) => {}
                        Err(_) => continue 'connection,
                    }
                }
            }
        }));
    }
    for w in workers {
        let _ = w.await;
    }
    done.load(Ordering::Relaxed) as f64 / duration.as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server on 127.0.0.1 that answers every request head with `answer`, and closes each
    /// connection after its first answer when `once`.
    async fn server(answer: String, once: bool) -> Target {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                let answer = answer.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    loop {
                        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                            if matches!(stream.read_buf(&mut buf).await, Ok(0) | Err(_)) {
                                return;
                            }
                        }
                        buf.clear();
                        if stream.write_all(answer.as_bytes()).await.is_err() || once {
                            return;
                        }
                    }
                });
            }
        });
        Target::new(port, None)
    }

    fn answer(status: u16, body_len: usize) -> String {
        format!(
            "HTTP/1.1 {status} X\r\ncontent-length: {body_len}\r\n\r\n{}",
            "x".repeat(body_len)
        )
    }

    /// One round of `ms` milliseconds at 1,000 requests/s on a fresh pool, no warm-up.
    async fn one_round(target: &Target, ms: u64) -> Latency {
        open_loop(
            &Pool::new(target, None),
            1000,
            Duration::ZERO,
            Duration::from_millis(ms),
        )
        .await
    }

    #[tokio::test]
    async fn the_pacer_runs_at_the_pools_nice_value() {
        let target = server(answer(200, BODY_LEN), false).await;
        // A nice value above the one this thread (and so the pacer) starts with can always be
        // set; the pacer reads back the one it got.
        let asked = (rustix::process::getpriority_process(None).unwrap() + 3).min(19);
        let round = open_loop(
            &Pool::new(&target, Some(asked)),
            1000,
            Duration::ZERO,
            Duration::from_millis(20),
        )
        .await;
        let ran_at = Nice {
            now: asked,
            refused: None,
        };
        assert_eq!(round.pacer_nice, Some(ran_at));
        assert_eq!(round.samples.len(), 20);
    }

    #[tokio::test]
    async fn every_request_of_a_round_is_timed_on_kept_alive_connections() {
        let target = server(answer(200, BODY_LEN), false).await;
        let pool = Pool::new(&target, None);
        let mut round = open_loop(
            &pool,
            1000,
            Duration::from_millis(20),
            Duration::from_millis(100),
        )
        .await;
        assert_eq!(
            (round.samples.len(), round.errors, round.sent),
            (100, 0, 120)
        );
        assert_eq!(round.send_lag.len(), 100);
        assert!(round.us(0.5) > 0.0);
        // The next round reuses the connections the first one opened.
        let open = lock(&pool.idle).len();
        assert!(open >= 1);
        let again = open_loop(&pool, 1000, Duration::ZERO, Duration::from_millis(50)).await;
        assert_eq!((again.samples.len(), again.errors), (50, 0));
        assert!(probe(&target).await);
    }

    #[tokio::test]
    async fn a_wrong_status_or_body_length_is_an_error() {
        for wrong in [answer(503, BODY_LEN), answer(200, 10)] {
            let target = server(wrong, false).await;
            let round = one_round(&target, 30).await;
            assert_eq!((round.samples.len(), round.errors), (0, 30));
            assert!(!probe(&target).await);
            assert_eq!(saturate(&target, 2, Duration::from_millis(50)).await, 0.0);
        }
    }

    #[tokio::test]
    async fn a_connection_closed_while_idle_is_not_written_to_again() {
        // Each connection serves one request: without leaving closed ones behind, requests
        // written to them would never be answered and the round would wait out STRAGGLERS.
        let target = server(answer(200, BODY_LEN), true).await;
        let pool = Pool::new(&target, None);
        let started = Instant::now();
        let round = open_loop(&pool, 200, Duration::ZERO, Duration::from_millis(200)).await;
        assert!(
            started.elapsed() < STRAGGLERS / 2,
            "took {:?}",
            started.elapsed()
        );
        assert_eq!(round.samples.len() as u64 + round.errors, 40);
        assert!(
            round.samples.len() >= 38,
            "{} answered",
            round.samples.len()
        );
    }

    #[tokio::test]
    async fn a_target_that_is_not_there_fails_every_request_at_once() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let target = Target::new(port, Some("app"));
        assert_eq!(target.request(), b"GET / HTTP/1.1\r\nHost: app\r\n\r\n");
        let started = Instant::now();
        let round = one_round(&target, 20).await;
        assert_eq!((round.samples.len(), round.errors), (0, 20));
        assert!(started.elapsed() < STRAGGLERS / 2);
    }

    #[test]
    fn quantiles_take_the_sample_at_or_above_the_rank() {
        let mut samples: Vec<Duration> = (1..=100).rev().map(Duration::from_micros).collect();
        assert_eq!(quantile_us(&mut samples, 0.5), 50.0);
        assert_eq!(quantile_us(&mut samples, 0.99), 99.0);
        assert_eq!(quantile_us(&mut samples, 1.0), 100.0);
        assert_eq!(quantile_us(&mut [], 0.5), 0.0);
    }
}
