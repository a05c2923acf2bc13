//! Hop-by-hop headers (RFC 9110 §7.6.1): they describe one connection, so a proxy drops them
//! before it forwards a message: the fixed set below and every field the `Connection` header
//! names. An upgrade (`Connection: upgrade` with `Upgrade`) is the one exception: the proxy
//! keeps it so that the upstream can agree to switch protocols.

use hyper::HeaderMap;
use hyper::header::{self, HeaderName, HeaderValue};

/// Whether a field is hop-by-hop by its name alone (RFC 9110 §7.6.1 and the fields older
/// clients send); `Connection` names the others. `Connection` and `Upgrade` are among them:
/// an upgrade puts them back.
pub(crate) fn always_hop(name: &[u8]) -> bool {
    let is = |hop: &[u8]| name.eq_ignore_ascii_case(hop);
    // By length first: most names are none of these and fail on it.
    match name.len() {
        2 => is(b"te"),
        7 => is(b"upgrade") || is(b"trailer"),
        10 => is(b"connection") || is(b"keep-alive"),
        16 => is(b"proxy-connection"),
        17 => is(b"transfer-encoding"),
        18 => is(b"proxy-authenticate"),
        19 => is(b"proxy-authorization"),
        _ => false,
    }
}

/// What the tokens of `Connection` fields say, read as the fields are parsed.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ConnectionTokens {
    pub close: bool,
    pub keep_alive: bool,
    pub upgrade: bool,
    /// Other tokens: names of fields that are hop-by-hop on this message.
    pub names_fields: bool,
}

impl ConnectionTokens {
    /// Notes the tokens of one `Connection` field value.
    pub(crate) fn read(&mut self, value: &[u8]) {
        for token in value.split(|b| *b == b',') {
            let token = token.trim_ascii();
            if token.eq_ignore_ascii_case(b"close") {
                self.close = true;
            } else if token.eq_ignore_ascii_case(b"keep-alive") {
                self.keep_alive = true;
            } else if token.eq_ignore_ascii_case(b"upgrade") {
                self.upgrade = true;
            } else if !token.is_empty() {
                self.names_fields = true;
            }
        }
    }
}

/// Whether the message asks to upgrade the connection (WebSocket and the like).
pub fn wants_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && connection_tokens(headers).any(|t| t.eq_ignore_ascii_case("upgrade"))
}

fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &str> + '_ {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Removes the hop-by-hop fields; with `keep_upgrade`, an upgrade request or answer keeps
/// `Connection: upgrade` and `Upgrade`.
pub fn strip(headers: &mut HeaderMap, keep_upgrade: bool) {
    // Most messages carry none, or only `Connection: keep-alive`: one pass over the names
    // present (comparisons of known names) finds them, gathered on the stack (the map cannot
    // change while its keys are read; there are at most as many as `always_hop` knows).
    let mut hop = [NO_FIELD; HOP_FIELDS];
    let mut n = 0;
    for name in headers
        .keys()
        .filter(|name| always_hop(name.as_str().as_bytes()))
    {
        if n < HOP_FIELDS {
            hop[n] = Some(name.clone());
            n += 1;
        }
    }
    if n == 0 {
        return;
    }
    let upgrade = keep_upgrade && wants_upgrade(headers);
    // `Connection` rarely names other fields: its usual tokens name nothing that is left, and
    // an upgrade keeps the `Upgrade` it names.
    let names_a_field = |t: &str| {
        !(t.eq_ignore_ascii_case("keep-alive")
            || t.eq_ignore_ascii_case("close")
            || (upgrade && t.eq_ignore_ascii_case("upgrade")))
    };
    if connection_tokens(headers).any(names_a_field) {
        let named: Vec<HeaderName> = connection_tokens(headers)
            .filter(|t| names_a_field(t))
            .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
            .collect();
        for name in named {
            headers.remove(name);
        }
    }
    for name in hop.into_iter().flatten() {
        if upgrade && (name == header::CONNECTION || name == header::UPGRADE) {
            continue;
        }
        headers.remove(name);
    }
    if upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

/// How many distinct names [`always_hop`] knows.
const HOP_FIELDS: usize = 9;
const NO_FIELD: Option<HeaderName> = None;

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn fixed_and_named_hop_fields_go_end_to_end_fields_stay() {
        let mut h = headers(&[
            ("connection", "keep-alive, X-Trace-Hop"),
            ("connection", "close"),
            ("keep-alive", "timeout=5"),
            ("x-trace-hop", "1"),
            ("te", "trailers"),
            ("transfer-encoding", "chunked"),
            ("proxy-authorization", "Basic x"),
            ("upgrade", "websocket"),
            ("content-type", "application/json"),
            ("x-order-id", "4711"),
        ]);
        strip(&mut h, true);
        // The order of different fields carries no meaning (RFC 9110 §5.3).
        let mut left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        left.sort_unstable();
        assert_eq!(left, ["content-type", "x-order-id"]);
    }

    #[test]
    fn a_hop_field_alone_goes_and_a_message_without_any_stays_as_it_is() {
        let mut h = headers(&[("keep-alive", "timeout=5"), ("x-order-id", "4711")]);
        strip(&mut h, false);
        let left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["x-order-id"]);

        let mut h = headers(&[("te", "trailers")]);
        strip(&mut h, false);
        assert!(h.is_empty());

        let mut h = headers(&[("content-type", "text/plain"), ("x-order-id", "4711")]);
        let before = h.clone();
        strip(&mut h, true);
        assert_eq!(h, before);
    }

    #[test]
    fn an_upgrade_keeps_connection_upgrade_and_upgrade() {
        let mut h = headers(&[
            ("connection", "Upgrade, keep-alive"),
            ("upgrade", "websocket"),
            ("sec-websocket-key", "abc"),
        ]);
        assert!(wants_upgrade(&h));
        strip(&mut h, true);
        assert_eq!(h["connection"], "upgrade");
        assert_eq!(h["upgrade"], "websocket");
        assert_eq!(h["sec-websocket-key"], "abc");

        let mut plain = headers(&[("connection", "Upgrade"), ("upgrade", "websocket")]);
        strip(&mut plain, false);
        assert!(plain.is_empty());
    }
}
