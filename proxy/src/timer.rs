//! The sidecar's timers: [`flowmesh_control_plane::timer`], which the control-plane client the
//! sidecar uses shares; deadlines moved on per request; and librdkafka's runtime on the same
//! thread.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

pub use flowmesh_control_plane::timer::*;
use tokio::time::{Instant, Sleep};

/// A deadline moved on often (for each request on a kept connection), kept by one timer that is
/// re-armed only when it comes up before the deadline: moving the deadline later is a store,
/// where moving the timer converts the instant to the timer wheel's ticks each time. Polled
/// again by the task it already wakes, while its timer is armed, it answers at once: the timer
/// holds that task's waker until it fires.
#[derive(Debug)]
pub struct Deadline {
    timer: Pin<Box<Sleep>>,
    due: Instant,
    /// The waker the armed timer holds.
    wakes: Option<Waker>,
}

impl Deadline {
    pub fn new(due: Instant) -> Deadline {
        Deadline {
            timer: Box::pin(sleep_until(due)),
            due,
            wakes: None,
        }
    }

    /// Moves the deadline to `due`, earlier or later.
    pub fn set(&mut self, due: Instant) {
        if due < self.timer.deadline() {
            self.timer.as_mut().reset(due);
            self.wakes = None;
        }
        self.due = due;
    }

    /// Ready once the deadline has passed; until then, wakes `cx` when it passes.
    pub fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if let Some(wakes) = &self.wakes
            && wakes.will_wake(cx.waker())
            && !self.timer.is_elapsed()
        {
            return Poll::Pending;
        }
        loop {
            if self.timer.as_mut().poll(cx).is_pending() {
                self.wakes = Some(cx.waker().clone());
                return Poll::Pending;
            }
            self.wakes = None;
            if self.timer.deadline() >= self.due {
                return Poll::Ready(());
            }
            let due = self.due;
            self.timer.as_mut().reset(due);
        }
    }
}

/// librdkafka's runtime for its futures' own timers (the producer's retry when its queue is
/// full, the consumer's keep-alive), ticking on the timer thread once it is started.
pub struct KafkaRuntime;

impl rdkafka::util::AsyncRuntime for KafkaRuntime {
    type Delay = Sleep;

    fn spawn<T>(task: T)
    where
        T: Future<Output = ()> + Send + 'static,
    {
        tokio::spawn(task);
    }

    fn delay_for(duration: Duration) -> Sleep {
        sleep(duration)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_deadline_passes_when_set_not_when_first_armed() {
        let begun = Instant::now();
        let mut deadline = Deadline::new(begun + Duration::from_millis(5));
        deadline.set(begun + Duration::from_millis(40));
        std::future::poll_fn(|cx| deadline.poll(cx)).await;
        assert!(begun.elapsed() >= Duration::from_millis(40));

        // Earlier than the timer is armed for: the timer moves back.
        let begun = Instant::now();
        let mut deadline = Deadline::new(begun + Duration::from_secs(3600));
        deadline.set(begun + Duration::from_millis(5));
        std::future::poll_fn(|cx| deadline.poll(cx)).await;
        assert!(begun.elapsed() < Duration::from_secs(60));

        // Polled by another task, the deadline wakes that one.
        struct Flag(std::sync::atomic::AtomicBool);
        impl futures_util::task::ArcWake for Flag {
            fn wake_by_ref(flag: &std::sync::Arc<Self>) {
                flag.0.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let (first, second) = (
            std::sync::Arc::new(Flag(false.into())),
            std::sync::Arc::new(Flag(false.into())),
        );
        let mut deadline = Deadline::new(Instant::now() + Duration::from_millis(5));
        for flag in [&first, &second] {
            let waker = futures_util::task::waker(flag.clone());
            assert!(deadline.poll(&mut Context::from_waker(&waker)).is_pending());
        }
        let woken = Instant::now() + Duration::from_secs(10);
        while !second.0.load(std::sync::atomic::Ordering::SeqCst) {
            assert!(Instant::now() < woken, "the second poller is woken");
            sleep(Duration::from_millis(1)).await;
        }

        // Passed deadlines stay passed until moved on.
        let mut passed = Deadline::new(Instant::now());
        std::future::poll_fn(|cx| passed.poll(cx)).await;
        std::future::poll_fn(|cx| passed.poll(cx)).await;
        passed.set(Instant::now() + Duration::from_secs(3600));
        let waker = std::task::Waker::noop();
        assert!(passed.poll(&mut Context::from_waker(waker)).is_pending());
    }

    #[test]
    fn librdkafka_timers_tick_on_a_runtime_without_a_time_driver() {
        start().expect("timer thread");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let (tx, rx) = tokio::sync::oneshot::channel();
            <KafkaRuntime as rdkafka::util::AsyncRuntime>::spawn(async move {
                <KafkaRuntime as rdkafka::util::AsyncRuntime>::delay_for(Duration::from_millis(5))
                    .await;
                let _ = tx.send(());
            });
            rx.await.expect("the spawned delay ends");
        });
    }
}
