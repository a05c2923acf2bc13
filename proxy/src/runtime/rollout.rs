//! Which version a new instance runs when a rollout splits a process between versions: a hash
//! of its business key picks a point in 0..100 and the weights, in version order, cover that
//! range. The same key always lands on the same version while the weights stay; an instance
//! without a key gets a random point.

use std::collections::BTreeMap;

/// FNV-1a, 64 bit: stable across releases and platforms (std's hasher promises neither).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The version for `business_key` under `weights` (version → weight, summing to 100);
/// `None` when no weights are set (then the latest version runs).
pub fn pick(weights: &BTreeMap<u32, u32>, business_key: Option<&str>) -> Option<u32> {
    let total: u64 = weights.values().map(|w| u64::from(*w)).sum();
    if total == 0 {
        return None;
    }
    let point = match business_key {
        Some(k) => fnv1a(k.as_bytes()) % total,
        None => fastrand::u64(0..total),
    };
    let mut covered = 0u64;
    for (version, weight) in weights {
        covered += u64::from(*weight);
        if point < covered {
            return Some(*version);
        }
    }
    weights.keys().next_back().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifty_fifty_splits_keys_and_keeps_each_key_on_its_version() {
        let weights = BTreeMap::from([(1, 50), (2, 50)]);
        let mut on = BTreeMap::<u32, u32>::new();
        for i in 0..2000 {
            let key = format!("order-{i}");
            let v = pick(&weights, Some(&key)).unwrap();
            assert_eq!(pick(&weights, Some(&key)), Some(v));
            *on.entry(v).or_default() += 1;
        }
        assert!((900..=1100).contains(&on[&1]), "{on:?}");
        assert!((900..=1100).contains(&on[&2]), "{on:?}");
    }

    #[test]
    fn a_full_weight_takes_everything_and_no_weights_pick_nothing() {
        let weights = BTreeMap::from([(1, 0), (3, 100)]);
        assert_eq!(pick(&weights, Some("a")), Some(3));
        assert_eq!(pick(&weights, None), Some(3));
        assert_eq!(pick(&BTreeMap::new(), Some("a")), None);
    }
}
