//! Which API versions the sidecar advertises (ApiVersions): the broker's ranges, narrowed to
//! what the proxy can parse where it has to parse, and without the APIs that would lead a
//! client past the sidecar.

use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::VersionRange;

/// Produce v13 and Fetch v13 name topics by id only; Fetch v16 carries broker endpoints in
/// every response. Capping both keeps topic names in every request and lets Fetch responses
/// pass byte for byte.
pub const PRODUCE_MAX: i16 = 12;
pub const FETCH_MAX: i16 = 12;

/// How the proxy treats an API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Treatment {
    /// Responses are rewritten (broker addresses): only versions the proxy can parse.
    Rewritten,
    /// Passed on, with the versions that the proxy parses for observation capped, and the
    /// versions it cannot pass raised.
    Passed { min: Option<i16>, max: Option<i16> },
    /// Not advertised, refused if asked: it carries broker addresses the proxy does not
    /// rewrite (KRaft quorum and share-group APIs), or it is only spoken between brokers.
    Withheld,
}

pub fn treatment(key: ApiKey) -> Treatment {
    match key {
        ApiKey::Metadata
        | ApiKey::FindCoordinator
        | ApiKey::DescribeCluster
        | ApiKey::ApiVersions => Treatment::Rewritten,
        ApiKey::Produce => Treatment::Passed {
            min: None,
            max: Some(PRODUCE_MAX),
        },
        ApiKey::Fetch => Treatment::Passed {
            min: None,
            max: Some(FETCH_MAX),
        },
        // v0 is followed by raw SASL tokens outside Kafka's framing; v1 wraps them in
        // SaslAuthenticate requests, which pass like any other.
        ApiKey::SaslHandshake => Treatment::Passed {
            min: Some(1),
            max: None,
        },
        ApiKey::Vote
        | ApiKey::BeginQuorumEpoch
        | ApiKey::EndQuorumEpoch
        | ApiKey::DescribeQuorum
        | ApiKey::FetchSnapshot
        | ApiKey::UpdateRaftVoter
        | ApiKey::AddRaftVoter
        | ApiKey::RemoveRaftVoter
        | ApiKey::ShareFetch
        | ApiKey::ShareAcknowledge
        | ApiKey::Envelope
        | ApiKey::WriteTxnMarkers
        | ApiKey::AlterPartition
        | ApiKey::BrokerRegistration
        | ApiKey::BrokerHeartbeat
        | ApiKey::ControllerRegistration => Treatment::Withheld,
        _ => Treatment::Passed {
            min: None,
            max: None,
        },
    }
}

/// Whether a request of `key` at `version` may pass (the client stays within what was
/// advertised, whatever the broker offers).
pub fn allowed(key: ApiKey, version: i16) -> bool {
    match treatment(key) {
        Treatment::Withheld => false,
        Treatment::Rewritten => {
            let ours = key.valid_versions();
            (ours.min..=ours.max).contains(&version)
        }
        Treatment::Passed { min, max } => {
            min.is_none_or(|m| version >= m) && max.is_none_or(|m| version <= m)
        }
    }
}

/// The range advertised for `key` when the broker offers `broker`; `None`: not advertised.
///
/// Minimum versions are the broker's own for passed APIs, except Produce's, which is always 0:
/// older librdkafka releases derive their compression support from Produce v0–v2 being
/// offered, and silently stop compressing against brokers (Kafka 4) that dropped them. A
/// client uses the highest version anyway.
pub fn advertised(key: ApiKey, broker: VersionRange) -> Option<VersionRange> {
    if key == ApiKey::Produce {
        let max = broker.max.min(PRODUCE_MAX);
        return (max >= 0).then_some(VersionRange { min: 0, max });
    }
    let range = match treatment(key) {
        Treatment::Withheld => return None,
        Treatment::Rewritten => broker.intersect(&key.valid_versions()),
        Treatment::Passed { min, max } => VersionRange {
            min: min.map_or(broker.min, |m| broker.min.max(m)),
            max: max.map_or(broker.max, |m| broker.max.min(m)),
        },
    };
    (!range.is_empty()).then_some(range)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(min: i16, max: i16) -> VersionRange {
        VersionRange { min, max }
    }

    #[test]
    fn produce_starts_at_0_and_is_capped() {
        assert_eq!(advertised(ApiKey::Produce, r(0, 13)), Some(r(0, 12)));
        assert_eq!(
            advertised(ApiKey::Produce, r(3, 11)),
            Some(r(0, 11)),
            "never above 0"
        );
        assert_eq!(advertised(ApiKey::Fetch, r(4, 17)), Some(r(4, 12)));
        assert_eq!(advertised(ApiKey::ListOffsets, r(1, 99)), Some(r(1, 99)));
        assert_eq!(advertised(ApiKey::SaslHandshake, r(0, 1)), Some(r(1, 1)));
        assert_eq!(advertised(ApiKey::SaslHandshake, r(0, 0)), None);
    }

    #[test]
    fn rewritten_apis_are_only_what_the_proxy_parses() {
        let ours = ApiKey::Metadata.valid_versions();
        assert_eq!(
            advertised(ApiKey::Metadata, r(0, ours.max + 5)),
            Some(r(ours.min.max(0), ours.max))
        );
        assert_eq!(advertised(ApiKey::DescribeQuorum, r(0, 2)), None);
        assert_eq!(advertised(ApiKey::ShareFetch, r(0, 1)), None);
    }
}
