//! The written value: the same ~1 KiB for both systems.

/// A sidecar registration as a control plane would hold it: named addresses, ~1 KiB of JSON.
pub(crate) fn addresses() -> serde_json::Map<String, serde_json::Value> {
    (0..32)
        .map(|i| {
            (
                format!("endpoint-{i:02}"),
                serde_json::Value::String(format!("10.20.{}.{}:15001", i / 8, 100 + i)),
            )
        })
        .collect()
}

/// The registration body flowmesh receives and the value etcd stores.
pub(crate) fn registration() -> String {
    serde_json::json!({ "addresses": addresses(), "lease_seconds": 3600 }).to_string()
}
