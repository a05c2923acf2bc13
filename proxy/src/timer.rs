//! The sidecar's timers: [`flowmesh_control_plane::timer`], which the control-plane client the
//! sidecar uses shares, and librdkafka's runtime on the same thread.

use std::future::Future;
use std::time::Duration;

pub use flowmesh_control_plane::timer::*;
use tokio::time::Sleep;

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
