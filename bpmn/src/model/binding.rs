//! HTTP bindings: which requests between services are a BPMN message, and where the message's
//! correlation key is found. Written in a model as `flowmesh:http` on `bpmn:message` (see
//! docs/bindings.md); the sidecars match their traffic against them.

use std::collections::BTreeMap;

use super::Pos;
use crate::feel::{Context, Expression, Value};

/// The `flowmesh:` extension namespace.
pub const FLOWMESH_NS: &str = "https://flowmesh.dev/schema/bpmn/1.0";

/// One `flowmesh:http` element.
#[derive(Clone, Debug)]
pub struct HttpBinding {
    /// The `bpmn:message`'s name: what the observation delivers.
    pub message: String,
    pub message_id: String,
    /// The service whose API the route belongs to.
    pub service: String,
    /// Upper-case HTTP method.
    pub method: String,
    pub path: PathTemplate,
    pub key: KeySource,
    /// FEEL over `path`, `query`, `headers` and `body` giving a context of message variables;
    /// without it the path parameters are the variables.
    pub variables: Option<Expression>,
    pub pos: Pos,
}

/// Where the correlation key comes from.
#[derive(Clone, Debug)]
pub enum KeySource {
    Path(String),
    Header(String),
    Query(String),
    Feel(Expression),
}

impl KeySource {
    /// `path:NAME`, `header:NAME`, `query:NAME`, or `=FEEL`.
    pub fn parse(text: &str) -> Result<KeySource, String> {
        let t = text.trim();
        if let Some(feel) = t.strip_prefix('=') {
            return Expression::parse(feel)
                .map(KeySource::Feel)
                .map_err(|e| format!("key '{t}': {e}"));
        }
        let (kind, name) = t.split_once(':').ok_or_else(|| {
            format!("key '{t}' names no source; write path:NAME, header:NAME, query:NAME or =FEEL")
        })?;
        let name = name.trim();
        if name.is_empty() {
            return Err(format!("key '{t}' names no field after '{kind}:'"));
        }
        match kind.trim() {
            "path" => Ok(KeySource::Path(name.to_owned())),
            "header" => Ok(KeySource::Header(name.to_ascii_lowercase())),
            "query" => Ok(KeySource::Query(name.to_owned())),
            other => Err(format!(
                "key source '{other}' is unknown; use path, header, query, or =FEEL"
            )),
        }
    }
}

/// A route path such as `/orders/{orderId}/items`: literal segments and `{name}` parameters,
/// each one whole segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathTemplate {
    source: String,
    segments: Vec<Segment>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
}

impl PathTemplate {
    pub fn parse(text: &str) -> Result<PathTemplate, String> {
        let rest = text.strip_prefix('/').ok_or_else(|| {
            format!("path '{text}' does not start with '/'; write it as the app sees it, e.g. /orders/{{id}}")
        })?;
        let mut segments = Vec::new();
        let mut names = Vec::new();
        for s in rest.split('/') {
            if let Some(name) = s.strip_prefix('{').and_then(|n| n.strip_suffix('}')) {
                if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                    return Err(format!(
                        "path '{text}': parameter '{{{name}}}' must be a name of letters, digits and _"
                    ));
                }
                if names.contains(&name) {
                    return Err(format!("path '{text}' names '{{{name}}}' twice"));
                }
                names.push(name);
                segments.push(Segment::Param(name.to_owned()));
            } else if s.contains('{') || s.contains('}') {
                return Err(format!(
                    "path '{text}': segment '{s}' mixes text and a parameter; a parameter is a whole segment"
                ));
            } else {
                segments.push(Segment::Literal(s.to_owned()));
            }
        }
        Ok(PathTemplate {
            source: text.to_owned(),
            segments,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Number of segments: requests with another count never match.
    pub fn len(&self) -> usize {
        self.segments.len()
    }

    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    pub fn has_param(&self, name: &str) -> bool {
        self.segments
            .iter()
            .any(|s| matches!(s, Segment::Param(n) if n == name))
    }

    /// The parameters, when `path` (without query) matches.
    pub fn matches(&self, path: &str) -> Option<BTreeMap<String, String>> {
        let rest = path.strip_prefix('/')?;
        let mut params = BTreeMap::new();
        let mut parts = rest.split('/');
        for segment in &self.segments {
            let part = parts.next()?;
            match segment {
                Segment::Literal(l) if l == part => {}
                Segment::Literal(_) => return None,
                Segment::Param(_) if part.is_empty() => return None,
                Segment::Param(name) => {
                    params.insert(name.clone(), percent_decode(part));
                }
            }
        }
        parts.next().is_none().then_some(params)
    }
}

/// `%XX` decoding (and `+` as space when `plus` is set, as in query strings); invalid escapes
/// stay as they are.
pub fn percent_decode_with(text: &str, plus: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' if plus => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn percent_decode(text: &str) -> String {
    percent_decode_with(text, false)
}

/// A query string as name → first value.
pub fn query_params(query: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.entry(percent_decode_with(k, true))
            .or_insert_with(|| percent_decode_with(v, true));
    }
    out
}

/// What a request offers to a key or variables expression.
pub struct RequestView<'a> {
    pub params: &'a BTreeMap<String, String>,
    pub query: &'a BTreeMap<String, String>,
    /// Lower-case names.
    pub headers: &'a BTreeMap<String, String>,
    /// The JSON body, when the binding reads it and it was JSON.
    pub body: Option<&'a serde_json::Value>,
}

fn strings(map: &BTreeMap<String, String>) -> Value {
    Value::Context(
        map.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

impl RequestView<'_> {
    fn context(&self) -> Context {
        let mut c = Context::new();
        c.insert("path".into(), strings(self.params));
        c.insert("query".into(), strings(self.query));
        c.insert("headers".into(), strings(self.headers));
        c.insert(
            "body".into(),
            self.body.map(Value::from_json).unwrap_or(Value::Null),
        );
        c
    }
}

impl HttpBinding {
    /// The correlation key of a matching request, as text; `Err` says why there is none.
    pub fn key(&self, view: &RequestView<'_>) -> Result<String, String> {
        let found = match &self.key {
            KeySource::Path(n) => view.params.get(n).cloned(),
            KeySource::Query(n) => view.query.get(n).cloned(),
            KeySource::Header(n) => view.headers.get(n).cloned(),
            KeySource::Feel(e) => {
                let value = e
                    .evaluate(&view.context(), crate::feel::epoch())
                    .map_err(|err| format!("key expression: {err}"))?
                    .value;
                match value {
                    Value::Null => None,
                    Value::String(s) => Some(s),
                    other => Some(other.to_string()),
                }
            }
        };
        found
            .filter(|k| !k.is_empty())
            .ok_or_else(|| format!("the request carries no key ({})", self.key_text()))
    }

    /// The message variables of a matching request.
    pub fn variables(&self, view: &RequestView<'_>) -> serde_json::Map<String, serde_json::Value> {
        let Some(expr) = &self.variables else {
            return view
                .params
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect();
        };
        match expr.evaluate(&view.context(), crate::feel::epoch()) {
            Ok(e) => match e.value.to_json() {
                serde_json::Value::Object(map) => map,
                _ => serde_json::Map::new(),
            },
            Err(_) => serde_json::Map::new(),
        }
    }

    /// Whether the key or the variables read `part` of a request (`query`, `headers` or
    /// `body`), so that the proxy prepares only what is read.
    pub fn reads(&self, part: &str) -> bool {
        let by_key = match &self.key {
            KeySource::Feel(e) => e.source().contains(part),
            KeySource::Header(_) => part == "headers",
            KeySource::Query(_) => part == "query",
            KeySource::Path(_) => false,
        };
        by_key
            || self
                .variables
                .as_ref()
                .is_some_and(|v| v.source().contains(part))
    }

    /// Whether matching needs the body buffered.
    pub fn reads_body(&self) -> bool {
        self.reads("body")
    }

    fn key_text(&self) -> String {
        match &self.key {
            KeySource::Path(n) => format!("path:{n}"),
            KeySource::Header(n) => format!("header:{n}"),
            KeySource::Query(n) => format!("query:{n}"),
            KeySource::Feel(e) => format!("={}", e.source()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_whole_segments() {
        let t = PathTemplate::parse("/orders/{orderId}/items").unwrap();
        let p = t.matches("/orders/A%2017/items").unwrap();
        assert_eq!(p["orderId"], "A 17");
        assert!(t.matches("/orders//items").is_none());
        assert!(t.matches("/orders/1/items/2").is_none());
        assert!(t.matches("/orders/1").is_none());
        assert!(PathTemplate::parse("orders").is_err());
        assert!(PathTemplate::parse("/o/{a}-x").is_err());
        assert!(PathTemplate::parse("/o/{a}/{a}").is_err());
    }

    #[test]
    fn keys_come_from_every_source() {
        let params = BTreeMap::from([("id".to_owned(), "7".to_owned())]);
        let query = query_params("ref=a+b&x=%41");
        let headers = BTreeMap::from([("x-order".to_owned(), "h9".to_owned())]);
        let body = serde_json::json!({"order": {"id": 42}});
        let view = RequestView {
            params: &params,
            query: &query,
            headers: &headers,
            body: Some(&body),
        };
        let key = |k: &str| {
            let b = HttpBinding {
                message: "m".into(),
                message_id: "m".into(),
                service: "s".into(),
                method: "POST".into(),
                path: PathTemplate::parse("/x/{id}").unwrap(),
                key: KeySource::parse(k).unwrap(),
                variables: None,
                pos: Pos { line: 1, col: 1 },
            };
            b.key(&view)
        };
        assert_eq!(key("path:id").unwrap(), "7");
        assert_eq!(key("query:ref").unwrap(), "a b");
        assert_eq!(key("header:X-Order").unwrap(), "h9");
        assert_eq!(key("=body.order.id").unwrap(), "42");
        assert_eq!(key("=query.x + \"-\" + path.id").unwrap(), "A-7");
        assert!(key("=body.missing").is_err());
        assert!(KeySource::parse("cookie:a").is_err());
        assert!(KeySource::parse("orderId").is_err());
        assert!(KeySource::parse("=body.").is_err());
    }
}
