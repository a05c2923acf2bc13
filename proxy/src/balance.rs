//! Choosing among a service's live instances by their load as this sidecar sees it: the power
//! of two choices over each instance's cost, a peak-EWMA estimate of its time to answer times
//! its requests in flight plus one (the cost linkerd's balancer uses). A slow or busy instance
//! gets fewer requests. An estimate decays while its instance is not chosen, so one that was
//! slow is tried again after a while and shows what it has become. An instance that refuses a
//! connection, or answers with gateway failures (502, 503, 504) several times in a row, is
//! passed over for a while (fast failures must not look like a fast instance), and for twice
//! as long, up to a minute, each time it fails again before it answers well.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::StatusCode;

/// How failing instances are treated (the `[balance]` section): gateway failures in a row
/// after which an instance is passed over (5 by default, as in Envoy's outlier detection),
/// and for how long.
pub use crate::config::Balance as Policy;

/// What an instance is assumed to take before its first answer: modest, so that a new
/// instance is neither flooded nor starved.
const DEFAULT_RTT: Duration = Duration::from_millis(30);
/// How fast an estimate forgets: a sample's weight falls to 1/e after this long.
const DECAY: Duration = Duration::from_secs(10);

/// One instance's load: kept across registry updates for as long as the instance is listed.
#[derive(Debug)]
pub(crate) struct Load {
    pending: AtomicU32,
    state: Mutex<Estimate>,
}

#[derive(Debug)]
struct Estimate {
    /// Time to answer, in nanoseconds, as of `at`.
    rtt: f64,
    at: Instant,
    ejected_until: Option<Instant>,
    /// Gateway failures since the last other answer.
    failures: u32,
    /// Times passed over since the last good answer: each time lasts twice as long as the
    /// one before, and while it is not 0, one failure is enough.
    ejections: u32,
}

/// The longest pass-over, unless `pass_over_for` itself is longer: an instance that comes back
/// at the same address waits no longer than this for traffic.
const LONGEST_PASS_OVER: Duration = Duration::from_secs(60);

/// Passes the instance over: for `policy.pass_over_for`, doubled for each time it was passed
/// over since its last good answer, up to a minute. True when it was not passed over already.
fn pass_over(e: &mut Estimate, now: Instant, policy: &Policy) -> bool {
    let fresh = e.ejected_until.is_none_or(|until| until <= now);
    let doubled = policy
        .pass_over_for
        .saturating_mul(1u32 << e.ejections.min(16));
    let longest = LONGEST_PASS_OVER.max(policy.pass_over_for);
    e.ejected_until = Some(now + doubled.min(longest));
    e.ejections = e.ejections.saturating_add(1);
    e.failures = 0;
    fresh
}

/// The weight an estimate made `age` ago keeps.
fn kept(age: Duration) -> f64 {
    (-age.as_secs_f64() / DECAY.as_secs_f64()).exp()
}

impl Load {
    pub(crate) fn new(now: Instant) -> Load {
        Load {
            pending: AtomicU32::new(0),
            state: Mutex::new(Estimate {
                rtt: DEFAULT_RTT.as_nanos() as f64,
                at: now,
                ejected_until: None,
                failures: 0,
                ejections: 0,
            }),
        }
    }

    /// Time to answer as estimated at `now` (decayed since the last answer) times the
    /// requests in flight plus one.
    fn cost(&self, now: Instant) -> f64 {
        let pending = f64::from(self.pending.load(Ordering::Relaxed));
        let rtt = self
            .state
            .lock()
            .map_or(DEFAULT_RTT.as_nanos() as f64, |e| {
                e.rtt * kept(now.saturating_duration_since(e.at))
            });
        rtt * (pending + 1.0)
    }

    /// Takes in an answer that took `rtt`: a slower one than the estimate replaces it at
    /// once (the peak), a faster one moves it by the weight the old estimate has lost. True
    /// when this answer, a gateway failure, makes too many in a row: the instance is then
    /// passed over. Once passed over, an instance is on probation until it answers well: its
    /// next failure passes it over again, for twice as long.
    fn answered(&self, rtt: Duration, failed: bool, now: Instant, policy: &Policy) -> bool {
        let sample = rtt.as_nanos() as f64;
        let Ok(mut e) = self.state.lock() else {
            return false;
        };
        let w = kept(now.saturating_duration_since(e.at));
        e.rtt = if sample > e.rtt {
            sample
        } else {
            e.rtt * w + sample * (1.0 - w)
        };
        e.at = now;
        if !failed {
            e.failures = 0;
            e.ejections = 0;
            return false;
        }
        e.failures += 1;
        let enough = if e.ejections > 0 {
            1
        } else {
            policy.pass_over_after_failures
        };
        if policy.pass_over_after_failures == 0 || e.failures < enough {
            return false;
        }
        pass_over(&mut e, now, policy);
        true
    }

    /// Passes the instance over after a refused connection; true when it was not already.
    fn eject(&self, now: Instant, policy: &Policy) -> bool {
        self.state
            .lock()
            .is_ok_and(|mut e| pass_over(&mut e, now, policy))
    }

    /// What an operator sees of this load at `now`: requests in flight, the decayed answer
    /// time estimate, and how much longer the instance is passed over.
    pub(crate) fn seen(&self, now: Instant) -> Seen {
        let in_flight = self.pending.load(Ordering::Relaxed);
        let Ok(e) = self.state.lock() else {
            return Seen {
                in_flight,
                answer_ms: DEFAULT_RTT.as_secs_f64() * 1e3,
                passed_over_ms: 0,
            };
        };
        Seen {
            in_flight,
            answer_ms: e.rtt * kept(now.saturating_duration_since(e.at)) / 1e6,
            passed_over_ms: e.ejected_until.map_or(0, |until| {
                until.saturating_duration_since(now).as_millis() as u64
            }),
        }
    }

    #[cfg(test)]
    fn ejected_until(&self, until: Option<Instant>) {
        if let Ok(mut e) = self.state.lock() {
            e.ejected_until = until;
        }
    }

    fn ejected(&self, now: Instant) -> bool {
        self.state
            .lock()
            .is_ok_and(|e| e.ejected_until.is_some_and(|until| until > now))
    }
}

/// One instance's load as the local API shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Seen {
    /// Requests sent to it and not yet answered.
    pub in_flight: u32,
    /// The estimate of its time to answer, in milliseconds.
    pub answer_ms: f64,
    /// How much longer it is passed over (after a refused connection or gateway failures), in
    /// milliseconds; 0 when it is not.
    pub passed_over_ms: u64,
}

/// The index of the item to send to: of two drawn at random among those not ejected (all, if
/// every one is), the one with the lower cost. `None` when there are none.
pub(crate) fn choose<T>(items: &[T], load: impl Fn(&T) -> &Load, now: Instant) -> Option<usize> {
    match items.len() {
        0 => return None,
        1 => return Some(0),
        _ => {}
    }
    let live = items.iter().filter(|i| !load(i).ejected(now)).count();
    let eligible = |i: &T| live == 0 || !load(i).ejected(now);
    let n = if live == 0 { items.len() } else { live };
    if n == 1 {
        return items.iter().position(eligible);
    }
    let a = fastrand::usize(..n);
    let mut b = fastrand::usize(..n - 1);
    if b >= a {
        b += 1;
    }
    // The a-th and b-th eligible items.
    let mut at = items
        .iter()
        .enumerate()
        .filter(|(_, i)| eligible(i))
        .map(|(k, _)| k);
    let (first, second) = if a < b { (a, b) } else { (b, a) };
    let low = at.nth(first)?;
    let high = at.nth(second - first - 1)?;
    let (x, y) = if a < b { (low, high) } else { (high, low) };
    // Ties go to the first drawn, itself random.
    Some(if load(&items[y]).cost(now) < load(&items[x]).cost(now) {
        y
    } else {
        x
    })
}

/// A request on its way to a chosen instance: counted in flight until dropped. Tell it how the
/// request went with [`Sent::answered`] or [`Sent::refused`].
#[derive(Debug)]
pub(crate) struct Sent {
    load: Arc<Load>,
    start: Instant,
    policy: Policy,
}

impl Sent {
    pub(crate) fn new(load: Arc<Load>, policy: Policy) -> Sent {
        load.pending.fetch_add(1, Ordering::Relaxed);
        Sent {
            load,
            start: Instant::now(),
            policy,
        }
    }

    /// The instance answered with `status` (the head of its answer arrived): the time it
    /// took is a sample. True when the answer got the instance passed over (the last of too
    /// many gateway failures in a row).
    pub(crate) fn answered(&self, status: StatusCode) -> bool {
        let now = Instant::now();
        let failed = matches!(
            status,
            StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT
        );
        self.load.answered(
            now.saturating_duration_since(self.start),
            failed,
            now,
            &self.policy,
        )
    }

    /// The instance refused the connection: it is passed over for a while. True when it was
    /// not passed over already (it can be picked while it is, when every instance is).
    pub(crate) fn refused(&self) -> bool {
        self.load.eject(Instant::now(), &self.policy)
    }
}

impl Drop for Sent {
    fn drop(&mut self) {
        self.load.pending.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The defaults, as the `[balance]` section gives them.
    const P: Policy = Policy {
        pass_over_after_failures: 5,
        pass_over_for: Duration::from_secs(5),
    };

    fn loads(n: usize, now: Instant) -> Vec<Arc<Load>> {
        (0..n).map(|_| Arc::new(Load::new(now))).collect()
    }

    fn counts(items: &[Arc<Load>], now: Instant, draws: usize) -> Vec<usize> {
        let mut seen = vec![0; items.len()];
        for _ in 0..draws {
            seen[choose(items, |l| l, now).unwrap()] += 1;
        }
        seen
    }

    #[test]
    fn a_busy_instance_is_passed_over_for_an_idle_one() {
        let now = Instant::now();
        let items = loads(2, now);
        let _busy = Sent::new(items[0].clone(), P);
        assert_eq!(counts(&items, now, 200), [0, 200]);
    }

    #[test]
    fn alike_instances_share_the_requests() {
        let now = Instant::now();
        let items = loads(3, now);
        let seen = counts(&items, now, 3000);
        // Every one drawn about a third of the time (binomial: 1,000 ± 26 at one sigma).
        assert!(seen.iter().all(|&c| (800..1200).contains(&c)), "{seen:?}");
    }

    #[test]
    fn a_slow_instance_gets_the_requests_only_once_its_estimate_has_decayed() {
        let now = Instant::now();
        let items = loads(2, now);
        items[0].answered(Duration::from_millis(200), false, now, &P);
        items[1].answered(Duration::from_millis(2), false, now, &P);
        assert_eq!(counts(&items, now, 200), [0, 200]);
        // One slow answer is remembered at once; fast ones move the estimate slowly.
        items[1].answered(Duration::from_millis(90), false, now, &P);
        items[1].answered(
            Duration::from_millis(2),
            false,
            now + Duration::from_millis(1),
            &P,
        );
        assert!(items[1].cost(now) > 80e6, "{:?}", items[1]);
        // Untried for a minute, the slow one's estimate has decayed below the other's fresh one.
        let later = now + Duration::from_secs(60);
        items[1].answered(Duration::from_millis(2), false, later, &P);
        assert!(items[0].cost(later) < 1e6, "{:?}", items[0]);
        assert_eq!(counts(&items, later, 200), [200, 0]);
    }

    #[test]
    fn a_refusing_instance_is_passed_over_for_a_while_unless_it_is_the_only_one() {
        let now = Instant::now();
        let items = loads(3, now);
        items[1].eject(now, &P);
        let seen = counts(&items, now, 300);
        assert_eq!(seen[1], 0, "{seen:?}");
        assert!(seen[0] > 0 && seen[2] > 0, "{seen:?}");
        // All refusing: better any of them than none.
        items[0].eject(now, &P);
        items[2].eject(now, &P);
        let seen = counts(&items, now, 300);
        assert!(seen.iter().all(|&c| c > 0), "{seen:?}");
        // Two refusing: the third takes everything.
        items[1].ejected_until(None);
        let seen = counts(&items, now, 300);
        assert_eq!(seen, [0, 300, 0]);
        // And once their time is up, they are back.
        let seen = counts(&items, now + P.pass_over_for, 300);
        assert!(seen.iter().all(|&c| c > 0), "{seen:?}");
        assert_eq!(choose::<Arc<Load>>(&[], |l| l, now), None);
        assert_eq!(choose(&items[..1], |l| l, now), Some(0));
    }

    #[test]
    fn gateway_failures_in_a_row_pass_an_instance_over_other_answers_break_the_row() {
        let now = Instant::now();
        let load = Load::new(now);
        let ms = Duration::from_millis(1);
        for _ in 0..P.pass_over_after_failures - 1 {
            assert!(!load.answered(ms, true, now, &P));
        }
        assert!(!load.answered(ms, false, now, &P));
        for _ in 0..P.pass_over_after_failures - 1 {
            assert!(!load.answered(ms, true, now, &P));
        }
        assert!(!load.ejected(now));
        assert!(load.answered(ms, true, now, &P));
        assert!(load.ejected(now));
        let back = now + P.pass_over_for;
        assert!(!load.ejected(back));
        // On probation: one more failure passes it over again, for twice as long.
        assert!(load.answered(ms, true, back, &P));
        assert!(load.ejected(back + P.pass_over_for * 2 - ms));
        let back = back + P.pass_over_for * 2;
        assert!(!load.ejected(back));
        // A good answer ends the probation: five failures again, for the first time's length.
        assert!(!load.answered(ms, false, back, &P));
        for _ in 0..P.pass_over_after_failures - 1 {
            assert!(!load.answered(ms, true, back, &P));
        }
        assert!(load.answered(ms, true, back, &P));
        assert!(!load.ejected(back + P.pass_over_for));
        let sent = Sent::new(Arc::new(Load::new(now)), P);
        assert!(!sent.answered(StatusCode::NOT_FOUND));
        assert!(!sent.answered(StatusCode::INTERNAL_SERVER_ERROR));
        for _ in 0..P.pass_over_after_failures - 1 {
            assert!(!sent.answered(StatusCode::SERVICE_UNAVAILABLE));
        }
        assert!(sent.answered(StatusCode::GATEWAY_TIMEOUT));
    }

    #[test]
    fn an_instance_that_keeps_refusing_is_passed_over_twice_as_long_each_time_up_to_a_cap() {
        let now = Instant::now();
        let load = Load::new(now);
        let mut at = now;
        for seconds in [5, 10, 20, 40, 60, 60, 60] {
            assert!(load.eject(at, &P), "{seconds}: not passed over before");
            let until = at + Duration::from_secs(seconds);
            assert!(load.ejected(until - Duration::from_millis(1)), "{seconds}");
            assert!(!load.ejected(until), "{seconds}");
            at = until;
        }
        // Refused again while passed over (every instance was): said so.
        assert!(load.eject(at, &P));
        assert!(!load.eject(at, &P));
        // A good answer ends it.
        assert!(!load.answered(Duration::from_millis(1), false, at, &P));
        let later = at + Duration::from_secs(60);
        load.eject(later, &P);
        assert!(!load.ejected(later + P.pass_over_for));
        // A first pass-over longer than the minute is kept as it is.
        let long = Policy {
            pass_over_for: Duration::from_secs(90),
            ..P
        };
        assert!(!load.answered(Duration::from_millis(1), false, later, &P));
        load.eject(later, &long);
        assert!(load.ejected(later + Duration::from_secs(89)));
    }

    #[test]
    fn failures_pass_no_instance_over_when_the_policy_says_never() {
        let now = Instant::now();
        let load = Load::new(now);
        let never = Policy {
            pass_over_after_failures: 0,
            ..P
        };
        for _ in 0..100 {
            assert!(!load.answered(Duration::from_millis(1), true, now, &never));
        }
        assert!(!load.ejected(now));
        // A refused connection still is, for as long as the policy says.
        let longer = Policy {
            pass_over_for: Duration::from_secs(30),
            ..never
        };
        load.eject(now, &longer);
        assert!(load.ejected(now + Duration::from_secs(29)));
        assert!(!load.ejected(now + Duration::from_secs(30)));
    }

    #[test]
    fn a_request_counts_in_flight_until_it_is_dropped() {
        let now = Instant::now();
        let load = Arc::new(Load::new(now));
        let idle = load.cost(now);
        let sent = Sent::new(load.clone(), P);
        assert_eq!(load.cost(now), 2.0 * idle);
        sent.refused();
        assert!(load.ejected(Instant::now()));
        drop(sent);
        assert_eq!(load.cost(now), idle);
    }
}
