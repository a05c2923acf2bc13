//! Responses the proxy changes: broker addresses become sidecar listeners (Metadata,
//! FindCoordinator in both forms, DescribeCluster, Produce's node endpoints), and ApiVersions
//! advertises what [`versions`](super::versions) allows. Everything else passes byte for byte.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, DescribeClusterResponse, FindCoordinatorResponse,
    MetadataResponse, ProduceResponse, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes, VersionRange};

use super::versions;

#[derive(Debug, thiserror::Error)]
#[error("cannot {action} a {api:?} v{version} response: {message}")]
pub struct Error {
    action: &'static str,
    api: ApiKey,
    version: i16,
    message: String,
}

/// Where a broker is reached through the sidecar; `None` when no listener could be opened for
/// it (the response is then refused rather than let the client go around the sidecar).
pub trait Addresses {
    fn local(&self, node: i32, host: &str, port: i32) -> Option<(String, i32)>;
}

fn decode<T: Decodable>(
    frame: &Bytes,
    api: ApiKey,
    version: i16,
) -> Result<(ResponseHeader, T), Error> {
    let fail = |message: String| Error {
        action: "read",
        api,
        version,
        message,
    };
    let mut buf = frame.clone();
    let header = ResponseHeader::decode(&mut buf, api.response_header_version(version))
        .map_err(|e| fail(e.to_string()))?;
    let body = T::decode(&mut buf, version).map_err(|e| fail(e.to_string()))?;
    Ok((header, body))
}

fn encode<T: Encodable>(
    header: &ResponseHeader,
    body: &T,
    api: ApiKey,
    version: i16,
) -> Result<Bytes, Error> {
    let fail = |message: String| Error {
        action: "write",
        api,
        version,
        message,
    };
    let mut out = BytesMut::new();
    header
        .encode(&mut out, api.response_header_version(version))
        .map_err(|e| fail(e.to_string()))?;
    body.encode(&mut out, version)
        .map_err(|e| fail(e.to_string()))?;
    Ok(out.freeze())
}

fn swap(
    addresses: &dyn Addresses,
    node: i32,
    host: &mut StrBytes,
    port: &mut i32,
    (api, version): (ApiKey, i16),
) -> Result<(), Error> {
    if node < 0 || host.is_empty() {
        return Ok(());
    }
    let (h, p) = addresses
        .local(node, host.as_str(), *port)
        .ok_or_else(|| Error {
            action: "rewrite",
            api,
            version,
            message: format!(
                "no sidecar listener for broker {node} at {}:{port}",
                host.as_str()
            ),
        })?;
    *host = StrBytes::from_string(h);
    *port = p;
    Ok(())
}

/// Whether responses of `api` at `version` may be changed here (and must be read whole).
pub fn rewrites(api: ApiKey, version: i16) -> bool {
    match api {
        ApiKey::ApiVersions
        | ApiKey::Metadata
        | ApiKey::FindCoordinator
        | ApiKey::DescribeCluster => true,
        ApiKey::Produce => version >= 10,
        _ => false,
    }
}

/// The response to send the client instead of `frame`, or `None` to send `frame` itself.
pub fn response(
    api: ApiKey,
    version: i16,
    frame: &Bytes,
    addresses: &dyn Addresses,
) -> Result<Option<Bytes>, Error> {
    let at = (api, version);
    match api {
        ApiKey::ApiVersions => api_versions(frame, version),
        ApiKey::Metadata => {
            let (h, mut b): (_, MetadataResponse) = decode(frame, api, version)?;
            for broker in &mut b.brokers {
                swap(
                    addresses,
                    broker.node_id.0,
                    &mut broker.host,
                    &mut broker.port,
                    at,
                )?;
            }
            encode(&h, &b, api, version).map(Some)
        }
        ApiKey::FindCoordinator => {
            let (h, mut b): (_, FindCoordinatorResponse) = decode(frame, api, version)?;
            swap(addresses, b.node_id.0, &mut b.host, &mut b.port, at)?;
            for c in &mut b.coordinators {
                swap(addresses, c.node_id.0, &mut c.host, &mut c.port, at)?;
            }
            encode(&h, &b, api, version).map(Some)
        }
        ApiKey::DescribeCluster => {
            let (h, mut b): (_, DescribeClusterResponse) = decode(frame, api, version)?;
            for broker in &mut b.brokers {
                swap(
                    addresses,
                    broker.broker_id.0,
                    &mut broker.host,
                    &mut broker.port,
                    at,
                )?;
            }
            encode(&h, &b, api, version).map(Some)
        }
        // Node endpoints ride in Produce responses from v10, and only when a leader moved.
        ApiKey::Produce if version >= 10 => {
            let (h, mut b): (_, ProduceResponse) = decode(frame, api, version)?;
            if b.node_endpoints.is_empty() {
                return Ok(None);
            }
            for n in &mut b.node_endpoints {
                swap(addresses, n.node_id.0, &mut n.host, &mut n.port, at)?;
            }
            encode(&h, &b, api, version).map(Some)
        }
        _ => Ok(None),
    }
}

fn api_versions(frame: &Bytes, version: i16) -> Result<Option<Bytes>, Error> {
    let api = ApiKey::ApiVersions;
    let (h, mut b): (_, ApiVersionsResponse) = match decode(frame, api, version) {
        Ok(decoded) => decoded,
        // A broker that does not speak the client's version answers in v0 with an error: the
        // client retries lower, so that answer passes as it is.
        Err(_) if version > 0 => return Ok(None),
        Err(e) => return Err(e),
    };
    if b.error_code != 0 {
        return Ok(None);
    }
    b.api_keys.retain_mut(|k| {
        let Ok(key) = ApiKey::try_from(k.api_key) else {
            return false;
        };
        let broker = VersionRange {
            min: k.min_version,
            max: k.max_version,
        };
        match versions::advertised(key, broker) {
            Some(r) => {
                k.min_version = r.min;
                k.max_version = r.max;
                true
            }
            None => false,
        }
    });
    encode(&h, &b, api, version).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::BrokerId;
    use kafka_protocol::messages::api_versions_response::ApiVersion;
    use kafka_protocol::messages::metadata_response::MetadataResponseBroker;

    struct Fixed;
    impl Addresses for Fixed {
        fn local(&self, node: i32, _host: &str, _port: i32) -> Option<(String, i32)> {
            Some(("127.0.0.1".into(), 20000 + node))
        }
    }

    #[test]
    fn metadata_brokers_point_at_the_sidecar() {
        for version in [1, 9, 12] {
            let mut body = MetadataResponse::default();
            for n in 1..=3 {
                let mut b = MetadataResponseBroker::default();
                b.node_id = BrokerId(n);
                b.host = StrBytes::from_static_str("kafka-broker.internal");
                b.port = 9092;
                body.brokers.push(b);
            }
            let header = ResponseHeader::default().with_correlation_id(7);
            let frame = encode(&header, &body, ApiKey::Metadata, version).expect("encode");
            let out = response(ApiKey::Metadata, version, &frame, &Fixed)
                .expect("rewrite")
                .expect("changed");
            let (h, b): (_, MetadataResponse) =
                decode(&out, ApiKey::Metadata, version).expect("decode");
            assert_eq!(h.correlation_id, 7);
            let seen: Vec<(String, i32)> = b
                .brokers
                .iter()
                .map(|b| (b.host.as_str().to_owned(), b.port))
                .collect();
            assert_eq!(
                seen,
                vec![
                    ("127.0.0.1".into(), 20001),
                    ("127.0.0.1".into(), 20002),
                    ("127.0.0.1".into(), 20003)
                ]
            );
        }
    }

    #[test]
    fn find_coordinator_errors_keep_their_empty_address() {
        let mut body = FindCoordinatorResponse::default();
        body.error_code = 15;
        body.node_id = BrokerId(-1);
        body.port = -1;
        let header = ResponseHeader::default();
        let frame = encode(&header, &body, ApiKey::FindCoordinator, 2).expect("encode");
        let out = response(ApiKey::FindCoordinator, 2, &frame, &Fixed)
            .expect("rewrite")
            .expect("re-encoded");
        let (_, b): (_, FindCoordinatorResponse) =
            decode(&out, ApiKey::FindCoordinator, 2).expect("decode");
        assert_eq!((b.node_id.0, b.port, b.host.as_str()), (-1, -1, ""));
    }

    #[test]
    fn api_versions_drop_unknown_and_withheld_keys() {
        let mut body = ApiVersionsResponse::default();
        for (key, min, max) in [(0, 3, 13), (1, 4, 17), (55, 0, 2), (999, 0, 1)] {
            let mut v = ApiVersion::default();
            v.api_key = key;
            v.min_version = min;
            v.max_version = max;
            body.api_keys.push(v);
        }
        let header = ResponseHeader::default();
        let frame = encode(&header, &body, ApiKey::ApiVersions, 3).expect("encode");
        let out = response(ApiKey::ApiVersions, 3, &frame, &Fixed)
            .expect("rewrite")
            .expect("changed");
        let (_, b): (_, ApiVersionsResponse) =
            decode(&out, ApiKey::ApiVersions, 3).expect("decode");
        let keys: Vec<(i16, i16, i16)> = b
            .api_keys
            .iter()
            .map(|k| (k.api_key, k.min_version, k.max_version))
            .collect();
        assert_eq!(keys, vec![(0, 0, 12), (1, 4, 12)]);
    }
}
