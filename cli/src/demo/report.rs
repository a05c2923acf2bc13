//! What the demo shows: each order's outcome, progress while a stage runs (a bar on a
//! terminal, plain lines otherwise), and the table at the end of a stage.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::stage::Stage;
use crate::table;

/// How one order's process instance ended (nothing yet: `end` is `None`).
#[derive(Clone, Debug, Default)]
pub(crate) struct Outcome {
    pub(crate) end: Option<String>,
    pub(crate) compensated: bool,
    pub(crate) overdue: bool,
    pub(crate) version: u32,
    pub(crate) latency_ms: i64,
    /// Instances of the process this order has (more than one: it ran twice).
    pub(crate) instances: usize,
    pub(crate) trace_id: Option<String>,
}

impl Outcome {
    /// From `GET /v1/instances/{key}` of a completed instance.
    pub(crate) fn of(instance: &Value) -> Outcome {
        let history = instance["history"].as_array().cloned().unwrap_or_default();
        let completed = |element: &str| {
            history
                .iter()
                .any(|h| h["element"] == element && h["event"] == "completed")
        };
        let end = history
            .iter()
            .rev()
            .find(|h| {
                h["type"] == "endEvent"
                    && h["event"] == "completed"
                    && h["element"] != "overdue-notified"
            })
            .and_then(|h| h["element"].as_str())
            .map(str::to_owned);
        let at = |k: &str| {
            instance[k]
                .as_str()
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                .map(|t| t.as_millisecond())
        };
        Outcome {
            end,
            compensated: completed("refund-payment"),
            overdue: completed("overdue-notified"),
            version: u32::try_from(instance["version"].as_u64().unwrap_or(0)).unwrap_or(0),
            latency_ms: match (at("started_at"), at("ended_at")) {
                (Some(s), Some(e)) => e - s,
                _ => 0,
            },
            instances: 1,
            trace_id: instance["trace_id"].as_str().map(str::to_owned),
        }
    }
}

/// The progress of a stage.
pub(crate) struct Progress {
    stage: &'static str,
    orders: u64,
    placed: u64,
    tty: bool,
    started: Instant,
    last: Instant,
}

impl Progress {
    pub(crate) fn new(stage: &'static str, orders: u64, tty: bool) -> Progress {
        let now = Instant::now();
        Progress {
            stage,
            orders,
            placed: 0,
            tty,
            started: now,
            last: now,
        }
    }

    pub(crate) fn placed(&mut self, n: u64) {
        self.placed = n;
    }

    fn line(&self, outcomes: &BTreeMap<u64, Outcome>) -> String {
        let done = outcomes.values().filter(|o| o.end.is_some()).count();
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        format!(
            "{}: placed {}/{}, ended {done} ({:.1}/s)",
            self.stage,
            self.placed,
            self.orders,
            done as f64 / secs
        )
    }

    pub(crate) fn show(&mut self, outcomes: &BTreeMap<u64, Outcome>) {
        let every = if self.tty {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(2)
        };
        if self.last.elapsed() < every {
            return;
        }
        self.last = Instant::now();
        let line = self.line(outcomes);
        if self.tty {
            let done = outcomes.values().filter(|o| o.end.is_some()).count() as u64;
            let width = 30u64;
            let filled = (done * width / self.orders.max(1)).min(width) as usize;
            print!(
                "\r  [{}{}] {line}   ",
                "#".repeat(filled),
                "-".repeat(width as usize - filled)
            );
            let _ = std::io::stdout().flush();
        } else {
            println!("  {line}");
        }
    }

    pub(crate) fn finish(&mut self, outcomes: &BTreeMap<u64, Outcome>) {
        let line = self.line(outcomes);
        if self.tty {
            println!("\r  [{}] {line}   ", "#".repeat(30));
        } else {
            println!("  {line}");
        }
    }
}

/// The end of a stage, as a table.
pub(crate) struct StageReport {
    stage: Stage,
    took: Duration,
    rows: Vec<(u64, Outcome, super::stage::Expect)>,
    v2: Option<u32>,
    /// Stage change: the rollout weights each order was placed under.
    weights: BTreeMap<u64, &'static str>,
    elements: Vec<(u32, String, u64)>,
}

fn quantile(sorted: &[i64], q: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

impl StageReport {
    pub(crate) fn new(
        stage: Stage,
        took: Duration,
        outcomes: &BTreeMap<u64, Outcome>,
        v2: Option<u32>,
        weights: BTreeMap<u64, &'static str>,
        before: &BTreeMap<(u32, String), u64>,
        after: &BTreeMap<(u32, String), u64>,
    ) -> StageReport {
        let rows = outcomes
            .iter()
            .map(|(n, o)| {
                let on_v2 = v2.is_some_and(|v| o.version == v);
                (*n, o.clone(), stage.expect(*n, on_v2))
            })
            .collect();
        let elements = after
            .iter()
            .filter_map(|((v, e), count)| {
                let delta = count - before.get(&(*v, e.clone())).copied().unwrap_or(0);
                (delta > 0).then(|| (*v, e.clone(), delta))
            })
            .collect();
        StageReport {
            stage,
            took,
            rows,
            v2,
            weights,
            elements,
        }
    }

    /// Every order's outcome, for `--report`.
    pub(crate) fn json(&self) -> serde_json::Value {
        let orders: Vec<serde_json::Value> = self
            .rows
            .iter()
            .map(|(n, o, e)| {
                serde_json::json!({
                    "order": format!("order-{n}"),
                    "ok": StageReport::as_expected(o, e),
                    "end": o.end,
                    "compensated": o.compensated,
                    "overdue": o.overdue,
                    "version": o.version,
                    "instances": o.instances,
                    "latency_ms": o.latency_ms,
                    "trace_id": o.trace_id,
                    "weights": self.weights.get(n),
                    "expected": {"end": e.end, "compensated": e.compensated, "overdue": e.overdue},
                })
            })
            .collect();
        let elements: Vec<serde_json::Value> = self
            .elements
            .iter()
            .map(|(v, e, n)| serde_json::json!({"version": v, "element": e, "completed": n}))
            .collect();
        serde_json::json!({
            "stage": self.stage.name(),
            "process": self.stage.process(),
            "seconds": self.took.as_secs_f64(),
            "failed": self.failed(),
            "orders": orders,
            "elements": elements,
        })
    }

    fn as_expected(o: &Outcome, e: &super::stage::Expect) -> bool {
        o.end.as_deref() == Some(e.end)
            && o.compensated == e.compensated
            && o.overdue == e.overdue
            && o.instances == 1
    }

    /// Orders that did not reach their expected end.
    pub(crate) fn failed(&self) -> usize {
        self.rows
            .iter()
            .filter(|(_, o, e)| !StageReport::as_expected(o, e))
            .count()
    }

    pub(crate) fn table(&self) -> String {
        let ended: Vec<&Outcome> = self
            .rows
            .iter()
            .map(|(_, o, _)| o)
            .filter(|o| o.end.is_some())
            .collect();
        let completed = ended
            .iter()
            .filter(|o| matches!(o.end.as_deref(), Some("order-delivered" | "order-done")))
            .count();
        let compensated = ended.iter().filter(|o| o.compensated).count();
        let cancelled = ended
            .iter()
            .filter(|o| o.end.as_deref() == Some("order-cancelled"))
            .count();
        let overdue = ended.iter().filter(|o| o.overdue).count();
        let mut latencies: Vec<i64> = ended.iter().map(|o| o.latency_ms).collect();
        latencies.sort_unstable();
        let mut out = format!(
            "\nstage {} done in {:.1} s\n",
            self.stage.name(),
            self.took.as_secs_f64()
        );
        out.push_str(&table::render(
            &[
                "ORDERS",
                "COMPLETED",
                "CANCELLED",
                "COMPENSATED",
                "OVERDUE",
                "FAILED",
                "P50 MS",
                "P99 MS",
            ],
            &[vec![
                self.rows.len().to_string(),
                completed.to_string(),
                cancelled.to_string(),
                compensated.to_string(),
                overdue.to_string(),
                self.failed().to_string(),
                quantile(&latencies, 0.5).to_string(),
                quantile(&latencies, 0.99).to_string(),
            ]],
        ));
        if let Some(v2) = self.v2 {
            let on_v2 = self.rows.iter().filter(|(_, o, _)| o.version == v2).count();
            out.push_str(&format!(
                "versions: {} orders on v{}, {on_v2} on v{v2} (first half at 50/50, second at 0/100)\n",
                self.rows.len() - on_v2,
                v2 - 1
            ));
        }
        let rows: Vec<Vec<String>> = self
            .elements
            .iter()
            .map(|(v, e, n)| {
                vec![
                    format!("{} v{v}", self.stage.process()),
                    e.clone(),
                    n.to_string(),
                ]
            })
            .collect();
        out.push_str(&table::render(&["PROCESS", "ELEMENT", "COMPLETED"], &rows));
        for (n, o, e) in &self.rows {
            if !StageReport::as_expected(o, e) {
                out.push_str(&format!(
                    "  order-{n}: expected end {} (compensated {}, overdue {}), got {} (compensated {}, overdue {}, {} instances)\n",
                    e.end,
                    e.compensated,
                    e.overdue,
                    o.end.as_deref().unwrap_or("no end yet"),
                    o.compensated,
                    o.overdue,
                    o.instances
                ));
            }
        }
        out
    }
}
