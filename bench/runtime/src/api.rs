//! JSON over HTTP to flowmesh's APIs for the benchmarks that drive a running mesh: one
//! request, its JSON answer, or a sentence with the status and body when it was refused.

use std::time::Duration;

use bytes::Bytes;
use flowmesh_control_plane::http::HttpClient;
use hyper::Method;

pub(crate) async fn call(
    http: &HttpClient,
    method: Method,
    url: &str,
    body: &str,
) -> Result<serde_json::Value, String> {
    let reply = http
        .send(
            method,
            url,
            &[("content-type", "application/json")],
            Bytes::from(body.to_owned()),
            Duration::from_secs(30),
        )
        .await
        .map_err(|e| e.to_string())?;
    let json = serde_json::from_slice(&reply.body).unwrap_or(serde_json::Value::Null);
    if reply.status.is_success() {
        Ok(json)
    } else {
        Err(format!("{url}: {} {json}", reply.status))
    }
}
