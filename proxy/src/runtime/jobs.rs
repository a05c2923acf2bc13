//! Performing jobs against the local app, as `[jobs]` says: an HTTP call with the job and its
//! variables; a 2xx JSON object completes the job with those variables, a 4xx
//! `{"error": "CODE"}` throws that BPMN error, anything else fails the attempt and the engine
//! retries it after a backoff until the retries are spent, then raises an incident. A job
//! type without an entry is an incident that says so. Each call carries the job key as
//! `Idempotency-Key`, the same key on every attempt and after a restart.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use flowmesh_bpmn::engine::{Command, JobActivation};
use flowmesh_bpmn::feel::{Context, Value};
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, StatusCode};
use tokio::sync::Semaphore;

use super::bus::{Bus, CloudEvent};
use super::core::{Queue, Work};
use super::index::Place;
use crate::config::JobSpec;
use crate::metrics::Metrics;

/// Jobs performed at the same time at most.
const CONCURRENT: usize = 256;
/// Largest answer read from the app.
const MAX_ANSWER: usize = 4 * 1024 * 1024;
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// How a job attempt ended, as the engine is told.
#[derive(Debug, PartialEq)]
pub(crate) enum Outcome {
    Complete(Context),
    Error { code: String, message: String },
    Fail(String),
}

#[derive(Clone)]
pub(crate) struct Worker {
    inner: Arc<Inner>,
}

struct Inner {
    me: String,
    app: SocketAddr,
    jobs: BTreeMap<String, JobSpec>,
    client: super::HttpClient,
    queue: Queue,
    metrics: Metrics,
    running: Semaphore,
    in_flight: Mutex<HashSet<u64>>,
    bus: Arc<dyn Bus>,
}

impl Worker {
    pub(crate) fn new(
        me: &str,
        app: SocketAddr,
        jobs: BTreeMap<String, JobSpec>,
        queue: Queue,
        metrics: Metrics,
        bus: Arc<dyn Bus>,
    ) -> Worker {
        let client = super::http_client();
        Worker {
            inner: Arc::new(Inner {
                me: me.to_owned(),
                app,
                jobs,
                client,
                queue,
                metrics,
                running: Semaphore::new(CONCURRENT),
                in_flight: Mutex::new(HashSet::new()),
                bus,
            }),
        }
    }

    /// Performs `job` in its own task (a job already being performed is not started twice).
    pub(crate) fn start(&self, job: JobActivation, place: Option<Place>) {
        let fresh = self
            .inner
            .in_flight
            .lock()
            .map(|mut f| f.insert(job.key))
            .unwrap_or(true);
        if !fresh {
            return;
        }
        let worker = self.clone();
        tokio::spawn(async move {
            let Ok(_permit) = worker.inner.running.acquire().await else {
                return;
            };
            let key = job.key;
            let command = worker.perform(&job, place.as_ref()).await;
            worker.report(command).await;
            if let Ok(mut f) = worker.inner.in_flight.lock() {
                f.remove(&key);
            }
        });
    }

    async fn perform(&self, job: &JobActivation, place: Option<&Place>) -> Command {
        let trace = place.map(Place::traceparent);
        let trace = trace.as_deref();
        let inner = &self.inner;
        let Some(spec) = inner.jobs.get(&job.job_type) else {
            inner.metrics.job(&job.job_type, "no_worker");
            return Command::FailJob {
                key: job.key,
                retries: 0,
                backoff_ms: 0,
                message: format!(
                    "no worker for job type '{}': the [jobs] section of the sidecar of service '{}' has no entry for it; add one (for example \"{}\" = {{ http = \"POST /jobs/{}\" }}), restart the sidecar and resolve this incident",
                    job.job_type, inner.me, job.job_type, job.job_type
                ),
            };
        };
        let outcome = match (&spec.http, &spec.publish) {
            (Some(target), _) => {
                let call = self.call(job, &target.method, &target.path, trace);
                match crate::timer::timeout(spec.timeout, call).await {
                    Ok(outcome) => outcome,
                    Err(_) => Outcome::Fail(format!(
                        "the app did not answer {} {} within {:?} (jobs.\"{}\".timeout)",
                        target.method, target.path, spec.timeout, job.job_type
                    )),
                }
            }
            (None, Some(p)) => {
                let publish = self.publish(job, &p.topic, &p.event_type, place);
                match crate::timer::timeout(spec.timeout, publish).await {
                    Ok(outcome) => outcome,
                    Err(_) => Outcome::Fail(format!(
                        "publishing to topic '{}' took longer than {:?} (jobs.\"{}\".timeout)",
                        p.topic, spec.timeout, job.job_type
                    )),
                }
            }
            (None, None) => Outcome::Fail("the job has no way to be performed".to_owned()),
        };
        let name = match &outcome {
            Outcome::Complete(_) => "completed",
            Outcome::Error { .. } => "error",
            Outcome::Fail(_) => "failed",
        };
        inner.metrics.job(&job.job_type, name);
        match outcome {
            Outcome::Complete(variables) => Command::CompleteJob {
                key: job.key,
                variables,
            },
            Outcome::Error { code, message } => Command::ThrowError {
                key: job.key,
                code,
                message,
                variables: Context::new(),
            },
            Outcome::Fail(message) => {
                let retries = job.retries.saturating_sub(1);
                let attempt = spec
                    .retries
                    .unwrap_or(job.retries)
                    .saturating_sub(job.retries);
                let backoff = spec
                    .backoff
                    .saturating_mul(1u32 << attempt.min(16))
                    .min(MAX_BACKOFF);
                tracing::debug!(job = job.key, retries, "job failed: {message}");
                Command::FailJob {
                    key: job.key,
                    retries,
                    backoff_ms: u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX),
                    message,
                }
            }
        }
    }

    /// A publishing job: one CloudEvent with the job's variables as data, its id made from the
    /// job key (a retry publishes the same event), in order per process instance.
    async fn publish(
        &self,
        job: &JobActivation,
        topic: &str,
        event_type: &str,
        place: Option<&Place>,
    ) -> Outcome {
        let mut event = CloudEvent::new(
            &format!("job-{}", job.key),
            &format!("/flowmesh/{}", self.inner.me),
            event_type,
            Value::Context(job.variables.clone()).to_json(),
        );
        event.set("partitionkey", &job.instance.to_string());
        if let Some(p) = place {
            event.set("traceparent", &p.traceparent());
            // Receivers remember the trace under the subject: a reply that carries the
            // business key but no traceparent joins the same trace.
            if let Some(key) = &p.business_key {
                event.set("subject", key);
            }
        }
        match self.inner.bus.publish(topic, event).await {
            Ok(()) => Outcome::Complete(Context::new()),
            Err(e) => Outcome::Fail(format!("publishing to topic '{topic}' failed: {e}")),
        }
    }

    async fn call(
        &self,
        job: &JobActivation,
        method: &str,
        path: &str,
        trace: Option<&str>,
    ) -> Outcome {
        let inner = &self.inner;
        let body = serde_json::json!({
            "job": {
                "key": job.key.to_string(),
                "type": job.job_type,
                "retries": job.retries,
                "process": job.process_id,
                "version": job.version,
                "element": job.element_id,
                "instance": job.instance.to_string(),
            },
            "variables": Value::Context(job.variables.clone()).to_json(),
            "headers": job.headers.iter().cloned().collect::<BTreeMap<String, String>>(),
        });
        let Ok(method) = Method::from_bytes(method.as_bytes()) else {
            return Outcome::Fail(format!("'{method}' is not an HTTP method"));
        };
        let mut request = Request::builder()
            .method(method)
            .uri(format!("http://{}{}", inner.app, path))
            .header("content-type", "application/json")
            .header("idempotency-key", job.key.to_string());
        if let Some(t) = trace {
            request = request.header("traceparent", t);
        }
        let request = match request.body(Full::new(Bytes::from(body.to_string()))) {
            Ok(r) => r,
            Err(e) => return Outcome::Fail(format!("cannot build the job request: {e}")),
        };
        let answer = match inner.client.request(request).await {
            Ok(a) => a,
            Err(e) => {
                return Outcome::Fail(format!(
                    "the app at {} cannot be reached for {path}: {e}",
                    inner.app
                ));
            }
        };
        let status = answer.status();
        let bytes = match Limited::new(answer.into_body(), MAX_ANSWER).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => return Outcome::Fail(format!("reading the app's answer failed: {e}")),
        };
        outcome(status, &bytes, path)
    }

    /// Hands a job's result to the engine, waiting while its queue is full.
    async fn report(&self, command: Command) {
        let mut wait = Duration::from_millis(10);
        let mut work = Work::new(vec![command]);
        loop {
            match self.inner.queue.run_or_keep(work).await {
                Ok(results) => {
                    if let Some(Err(rejected)) = results.first() {
                        // The job ended meanwhile (its instance was cancelled, say).
                        tracing::debug!("job result not taken: {rejected}");
                    }
                    return;
                }
                Err((super::Error::Busy, Some(back))) => {
                    crate::timer::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(1));
                    work = back;
                }
                Err((e, _)) => {
                    tracing::warn!("job result lost until restart: {e}");
                    return;
                }
            }
        }
    }
}

/// What an app's answer means for the job.
pub(crate) fn outcome(status: StatusCode, body: &[u8], path: &str) -> Outcome {
    let text = || String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
    if status.is_success() {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Outcome::Complete(Context::new());
        }
        return match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(json @ serde_json::Value::Object(_)) => match Value::from_json(&json) {
                Value::Context(c) => Outcome::Complete(c),
                _ => Outcome::Complete(Context::new()),
            },
            _ => Outcome::Fail(format!(
                "the app answered {path} with {status} but its body is not a JSON object of output variables: {}",
                text()
            )),
        };
    }
    if status.is_client_error()
        && let Ok(serde_json::Value::Object(o)) = serde_json::from_slice::<serde_json::Value>(body)
        && let Some(code) = o.get("error").and_then(|c| c.as_str())
        && !code.is_empty()
    {
        return Outcome::Error {
            code: code.to_owned(),
            message: o
                .get("message")
                .and_then(|m| m.as_str())
                .unwrap_or_default()
                .to_owned(),
        };
    }
    Outcome::Fail(format!("the app answered {path} with {status}: {}", text()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_map_to_outcomes() {
        let ok = outcome(StatusCode::OK, br#"{"paid": true}"#, "/p");
        assert!(matches!(ok, Outcome::Complete(c) if c.contains_key("paid")));
        assert_eq!(
            outcome(StatusCode::NO_CONTENT, b"", "/p"),
            Outcome::Complete(Context::new())
        );
        assert_eq!(
            outcome(
                StatusCode::UNPROCESSABLE_ENTITY,
                br#"{"error": "CARD_EXPIRED", "message": "expired"}"#,
                "/p"
            ),
            Outcome::Error {
                code: "CARD_EXPIRED".into(),
                message: "expired".into()
            }
        );
        assert!(
            matches!(outcome(StatusCode::OK, b"[1]", "/p"), Outcome::Fail(m) if m.contains("not a JSON object"))
        );
        assert!(
            matches!(outcome(StatusCode::BAD_REQUEST, b"nope", "/p"), Outcome::Fail(m) if m.contains("400"))
        );
        assert!(matches!(
            outcome(StatusCode::SERVICE_UNAVAILABLE, br#"{"error":"X"}"#, "/p"),
            Outcome::Fail(_)
        ));
    }
}
