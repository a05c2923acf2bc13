//! What a sidecar's local API tells the monitor about its processes, and the one piece of
//! arithmetic both sides share: duration histograms, which add up across sidecars, so the
//! control plane can say the p95 of a whole mesh without seeing single durations.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `GET /v1/models` on a sidecar's local API.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SidecarModels {
    pub service: String,
    pub models: Vec<ModelStats>,
}

/// One deployed version of a process, as one sidecar ran it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelStats {
    pub process: String,
    pub version: u32,
    pub deployed_at: String,
    pub instances: StateCounts,
    /// By element id.
    pub elements: BTreeMap<String, ElementStats>,
    /// How often each sequence flow was taken, by flow id.
    #[serde(default)]
    pub flows: BTreeMap<String, u64>,
}

/// Instances by state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateCounts {
    pub active: u64,
    pub completed: u64,
    pub incident: u64,
    pub cancelled: u64,
}

impl StateCounts {
    pub fn add(&mut self, other: &StateCounts) {
        self.active += other.active;
        self.completed += other.completed;
        self.incident += other.incident;
        self.cancelled += other.cancelled;
    }

    pub fn total(&self) -> u64 {
        self.active + self.completed + self.incident + self.cancelled
    }
}

/// One element of one process version.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ElementStats {
    /// Element instances in it now.
    pub active: u64,
    pub completed: u64,
    pub terminated: u64,
    /// Incidents ever raised on it.
    pub incidents: u64,
    /// Mean time from activation to completion or termination, in milliseconds.
    pub avg_ms: Option<f64>,
    /// 95th percentile of the same, from `durations`.
    #[serde(default)]
    pub p95_ms: Option<f64>,
    #[serde(default)]
    pub durations: Histogram,
}

impl ElementStats {
    /// Adds another sidecar's numbers for the same element.
    pub fn add(&mut self, other: &ElementStats) {
        let ended = self.durations.count() + other.durations.count();
        self.avg_ms = match (self.avg_ms, other.avg_ms) {
            (Some(a), Some(b)) if ended > 0 => Some(
                (a * self.durations.count() as f64 + b * other.durations.count() as f64)
                    / ended as f64,
            ),
            (a, b) => a.or(b),
        };
        self.active += other.active;
        self.completed += other.completed;
        self.terminated += other.terminated;
        self.incidents += other.incidents;
        self.durations.add(&other.durations);
        self.p95_ms = self.durations.quantile(0.95);
    }
}

/// Counts of durations in logarithmic buckets: four per doubling, so a quantile read from it
/// is off by at most one bucket's width (19%; `quantile` interpolates within the bucket), in a
/// few dozen numbers whatever the count. Bucket 0 holds durations under 1 ms.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Histogram(pub BTreeMap<u16, u64>);

const PER_DOUBLING: f64 = 4.0;

impl Histogram {
    fn bucket(ms: u64) -> u16 {
        if ms == 0 {
            return 0;
        }
        // ms ≥ 1: 1 + floor(4·log2(ms)), so [1, 2^(1/4)) is bucket 1.
        (1.0 + (PER_DOUBLING * (ms as f64).log2()).floor()).min(f64::from(u16::MAX)) as u16
    }

    /// The range of durations bucket `b` holds, in ms.
    fn range(b: u16) -> (f64, f64) {
        if b == 0 {
            return (0.0, 1.0);
        }
        let lo = 2f64.powf(f64::from(b - 1) / PER_DOUBLING);
        let hi = 2f64.powf(f64::from(b) / PER_DOUBLING);
        (lo, hi)
    }

    pub fn record(&mut self, ms: u64) {
        *self.0.entry(Self::bucket(ms)).or_default() += 1;
    }

    pub fn add(&mut self, other: &Histogram) {
        for (b, n) in &other.0 {
            *self.0.entry(*b).or_default() += n;
        }
    }

    pub fn count(&self) -> u64 {
        self.0.values().sum()
    }

    /// The duration below which a share `q` (0..=1) of the recorded ones fall, interpolated
    /// within its bucket; `None` when nothing was recorded.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * total as f64).max(1.0);
        let mut seen = 0u64;
        for (b, n) in &self.0 {
            if (seen + n) as f64 >= rank {
                let (lo, hi) = Self::range(*b);
                let within = (rank - seen as f64) / *n as f64;
                return Some(lo + (hi - lo) * within);
            }
            seen += n;
        }
        self.0.keys().last().map(|b| Self::range(*b).1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_close_to_the_truth() {
        let mut h = Histogram::default();
        for ms in 1..=1000u64 {
            h.record(ms);
        }
        let p95 = h.quantile(0.95).expect("recorded");
        assert!((p95 - 950.0).abs() / 950.0 < 0.1, "p95 {p95}");
        let p50 = h.quantile(0.5).expect("recorded");
        assert!((p50 - 500.0).abs() / 500.0 < 0.1, "p50 {p50}");
        assert_eq!(Histogram::default().quantile(0.5), None);
    }

    #[test]
    fn histograms_add_up_across_sidecars() {
        let (mut a, mut b, mut both) = (
            Histogram::default(),
            Histogram::default(),
            Histogram::default(),
        );
        for ms in [0, 3, 70, 70, 5000] {
            a.record(ms);
            both.record(ms);
        }
        for ms in [1, 90, 120_000] {
            b.record(ms);
            both.record(ms);
        }
        a.add(&b);
        assert_eq!(a, both);
        assert_eq!(a.count(), 8);
        let json = serde_json::to_string(&a).expect("serializes");
        let back: Histogram = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, a);
    }

    #[test]
    fn element_stats_merge_means_by_weight() {
        let mut a = ElementStats {
            avg_ms: Some(10.0),
            completed: 1,
            ..ElementStats::default()
        };
        a.durations.record(10);
        let mut b = ElementStats {
            avg_ms: Some(40.0),
            completed: 3,
            ..ElementStats::default()
        };
        for _ in 0..3 {
            b.durations.record(40);
        }
        a.add(&b);
        assert_eq!(a.completed, 4);
        assert_eq!(a.avg_ms, Some(32.5));
        assert!(a.p95_ms.is_some());
    }
}

/// How one sidecar answered the monitor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SidecarStatus {
    pub service: String,
    pub instance: String,
    /// Its local API, as it registered it.
    pub address: String,
    /// `ok`, `unreachable` (registered, but did not answer in time or at all) or `gone` (its
    /// registration ended: it stopped or its lease ran out).
    pub state: String,
    /// Why it is not `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub took_ms: u64,
}

/// `GET /v1/monitor/models`: every process with its versions and instance counts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelsView {
    pub models: Vec<ProcessView>,
    pub sidecars: Vec<SidecarStatus>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessView {
    pub process: String,
    pub owner: String,
    /// Summed over versions.
    pub instances: StateCounts,
    pub versions: Vec<VersionView>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VersionView {
    pub version: u32,
    pub deployed_at: String,
    pub instances: StateCounts,
}

/// `GET /v1/monitor/models/{process}`: one version's numbers, merged over its sidecars.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelView {
    pub process: String,
    pub version: u32,
    /// Every deployed version, oldest first.
    pub versions: Vec<u32>,
    pub owner: String,
    pub instances: StateCounts,
    pub elements: BTreeMap<String, ElementStats>,
    pub flows: BTreeMap<String, FlowView>,
    pub sidecars: Vec<SidecarStatus>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FlowView {
    pub taken: u64,
    /// `taken` over the version's instances, at most 1.
    pub share: f64,
}

/// One row of `GET /v1/monitor/models/{process}/instances`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InstanceSummary {
    /// `KEY@SIDECAR`: instance keys are per sidecar, so the mesh-wide id names both.
    pub id: String,
    pub key: String,
    pub sidecar: String,
    pub process: String,
    pub version: u32,
    pub state: String,
    pub business_key: Option<String>,
    pub started_at: String,
    pub ended_at: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InstancesView {
    pub items: Vec<InstanceSummary>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next: Option<String>,
    pub sidecars: Vec<SidecarStatus>,
}
