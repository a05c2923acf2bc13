//! Where a request goes in the mesh. Outbound: the app names a service (absolute-form
//! `http://inventory/...` as sent with `HTTP_PROXY`, or `Host: inventory`), and the request
//! goes to a live instance of that service's sidecar, marked with the target and the caller;
//! one that refuses the connection, or whose app does, passes the request on to another.
//! Mesh: a peer's request is checked to be meant for this service, unmarked, and handed to the
//! app.

use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::http::uri::Authority;
use hyper::{Method, Request, Response, StatusCode};

use crate::body::{self, Body};
use crate::forward::{Forwarder, Unreachable};
use crate::hop;
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::server::Caller;
use crate::untouched::untouched;

/// How many instances one request may be offered to when they refuse the connection.
const MAX_TRIES: usize = 3;

/// The service a request is for, on the mesh.
pub const SERVICE_HEADER: &str = "x-flowmesh-service";
/// The service that sent it.
pub const FROM_HEADER: &str = "x-flowmesh-from";
/// On another sidecar's answer: its app refused the connection, so the app saw nothing of the
/// request, and the calling sidecar may pass it on as if the instance had refused it.
pub const APP_UNREACHABLE_HEADER: &str = "x-flowmesh-app-unreachable";

/// The mesh side's answer as it goes back to the calling sidecar: marked when the app refused
/// the connection, and never carrying a mark the app made itself (a forged one would make
/// the caller send again a request the app did see).
pub fn mark_answer(answer: &mut Response<Body>) {
    answer.headers_mut().remove(APP_UNREACHABLE_HEADER);
    if answer.extensions().get::<Unreachable>().is_some() {
        answer
            .headers_mut()
            .insert(APP_UNREACHABLE_HEADER, HeaderValue::from_static("1"));
    }
}

/// Drops the mesh's own fields: an app must not forge them, an app must not see them.
pub fn unmark(headers: &mut HeaderMap) {
    // Nearly always absent: a scan of the names costs less than looking up both.
    if headers
        .keys()
        .any(|name| name.as_str().starts_with("x-flowmesh-"))
    {
        headers.remove(SERVICE_HEADER);
        headers.remove(FROM_HEADER);
    }
}

/// The service an app's request names: the absolute-form URI's host, else `Host`, without a
/// port, lower-cased.
pub fn target_service<B>(request: &Request<B>) -> Option<String> {
    let host = match request.uri().host() {
        Some(h) => h.to_owned(),
        None => {
            let value = request.headers().get(header::HOST)?.to_str().ok()?;
            let authority: Authority = value.parse().ok()?;
            authority.host().to_owned()
        }
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    (!host.is_empty()).then_some(host)
}

#[derive(Clone)]
pub struct Outbound {
    pub me: String,
    pub registry: Registry,
    pub forwarder: Forwarder,
    pub metrics: Metrics,
}

impl Outbound {
    /// Sends an app's request to a live instance of the service it names; the answer, and
    /// the service for metrics.
    pub async fn handle(
        &self,
        mut request: Request<Body>,
        caller: Caller,
    ) -> (Response<Body>, String) {
        if request.method() == Method::CONNECT {
            let answer = body::error(
                StatusCode::METHOD_NOT_ALLOWED,
                "connect_not_supported",
                "the outbound proxy carries plain HTTP; send the request itself (HTTP_PROXY=http://this-address), not a CONNECT tunnel",
            );
            return (answer, "other".to_owned());
        }
        let Some(service) = target_service(&request) else {
            let answer = body::error(
                StatusCode::BAD_REQUEST,
                "no_target",
                "the request names no service: send it as http://SERVICE/path (HTTP_PROXY) or with Host: SERVICE",
            );
            return (answer, "other".to_owned());
        };
        let headers = request.headers_mut();
        unmark(headers);
        if let (Ok(to), Ok(from)) = (
            HeaderValue::from_str(&service),
            HeaderValue::from_str(&self.me),
        ) {
            headers.insert(SERVICE_HEADER, to);
            headers.insert(FROM_HEADER, from);
        }
        // An instance that refused the connection, or whose app did, saw nothing of the
        // request: it goes to another instance, as long as nothing has read its body (an
        // upgrade never does).
        let tries = self.registry.count(&service).min(MAX_TRIES);
        let upgrade = hop::wants_upgrade(request.headers());
        let mut tried = 1;
        loop {
            let pick = match self.registry.pick(&service) {
                Ok(p) => p,
                Err(e) => {
                    let answer = body::error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "no_instance",
                        e.to_string(),
                    );
                    return (answer, service);
                }
            };
            let Ok(upstream) = Authority::try_from(pick.instance.mesh.to_string()) else {
                let answer = body::error(
                    StatusCode::BAD_GATEWAY,
                    "bad_instance",
                    format!("instance {} has an unusable mesh address", pick.instance.id),
                );
                return (answer, service);
            };
            let (sent, spare) = if tried < tries && !upgrade {
                let (parts, body) = request.into_parts();
                let (body, reclaim) = untouched(body);
                (
                    Request::from_parts(parts.clone(), body),
                    Some((parts, reclaim)),
                )
            } else {
                (request, None)
            };
            let mut answer = self
                .forwarder
                .forward(sent, &upstream, caller.clone())
                .await;
            let app_unreachable = answer
                .headers_mut()
                .remove(APP_UNREACHABLE_HEADER)
                .is_some();
            if answer.extensions().get::<Unreachable>().is_none() && !app_unreachable {
                if pick.answered(answer.status()) {
                    self.metrics.passed_over(&service, "failures");
                    tracing::warn!(
                        %service,
                        instance = %pick.instance.id,
                        mesh = %pick.instance.mesh,
                        status = answer.status().as_u16(),
                        "the instance answered with gateway failures too many times in a row; passed over for a while"
                    );
                }
                return (answer, service);
            }
            // Said once per pass-over, not for each request that meets the instance while
            // every instance is passed over.
            if pick.refused() {
                let (reason, what) = if app_unreachable {
                    (
                        "app_unreachable",
                        "the instance's app refused the connection",
                    )
                } else {
                    ("refused", "the instance refused the connection")
                };
                self.metrics.passed_over(&service, reason);
                tracing::warn!(
                    %service,
                    instance = %pick.instance.id,
                    mesh = %pick.instance.mesh,
                    "{what}; passed over for a while"
                );
            }
            let again = spare
                .and_then(|(parts, reclaim)| Some(Request::from_parts(parts, reclaim.take()?)));
            let Some(again) = again else {
                return (answer, service);
            };
            self.metrics.passed_on(&service);
            request = again;
            tried += 1;
        }
    }
}

/// The refusal of a peer's request that is not for `me`; `None` when it is.
pub fn mesh_refusal<B>(request: &Request<B>, me: &str) -> Option<Response<Body>> {
    match request
        .headers()
        .get(SERVICE_HEADER)
        .and_then(|v| v.to_str().ok())
    {
        Some(target) if target.eq_ignore_ascii_case(me) => None,
        Some(target) => Some(body::error(
            StatusCode::MISDIRECTED_REQUEST,
            "misdirected",
            format!("this sidecar serves '{me}', not '{target}'; the registry may be stale"),
        )),
        None => Some(body::error(
            StatusCode::MISDIRECTED_REQUEST,
            "not_from_the_mesh",
            format!(
                "the mesh port takes requests from other sidecars (with {SERVICE_HEADER}); callers use the inbound port"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_comes_from_the_absolute_uri_or_host() {
        let absolute = Request::get("http://Inventory:8080/items")
            .body(())
            .unwrap();
        assert_eq!(target_service(&absolute).as_deref(), Some("inventory"));
        let origin = Request::get("/items")
            .header("host", "shipping.")
            .body(())
            .unwrap();
        assert_eq!(target_service(&origin).as_deref(), Some("shipping"));
        let none = Request::get("/items").body(()).unwrap();
        assert_eq!(target_service(&none), None);
    }
}
