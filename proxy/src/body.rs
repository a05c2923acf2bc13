//! The one body type the proxy hands around (streamed, boxed), and its JSON error answers.

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::{Response, StatusCode, header};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A streamed body whose errors are boxed.
pub type Body = BoxBody<Bytes, BoxError>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// An empty body (a boxed zero-sized body: no allocation).
pub fn empty() -> Body {
    http_body_util::Empty::new()
        .map_err(|never| match never {})
        .boxed()
}

/// A refusal or failure of the proxy's own, as `{"error", "detail"}` (the sidecar's answers
/// look like the control plane's).
pub fn error(status: StatusCode, error: &str, detail: impl Into<String>) -> Response<Body> {
    let body = flowmesh_proto::error::ErrorBody {
        error: error.to_owned(),
        detail: detail.into(),
    };
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let mut response = Response::new(full(bytes));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}
