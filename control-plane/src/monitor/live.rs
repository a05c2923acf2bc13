//! Live pages: server-sent events that carry a view again whenever it changed, checked every
//! `live_interval`. The pages' script applies them; without script the pages still show
//! what was true when they were loaded.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;

use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};

use super::{Error, Shared, VersionQuery, bad_query};

type View = Pin<Box<dyn Future<Output = serde_json::Value> + Send>>;

/// Sends `event` with the view `view()` makes, at once and then whenever it changes.
fn changes(
    monitor: Shared,
    event: &'static str,
    view: impl Fn(Shared) -> View + Send + Sync + 'static,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let view = std::sync::Arc::new(view);
    stream::unfold(
        (monitor, None::<serde_json::Value>, view),
        move |(monitor, mut last, view)| async move {
            loop {
                if last.is_some() {
                    crate::timer::sleep(monitor.options.live_interval).await;
                }
                let now = view(monitor.clone()).await;
                if last.as_ref() != Some(&now) {
                    let e = Event::default().event(event).data(now.to_string());
                    return Some((Ok(e), (monitor, Some(now), view)));
                }
                last = Some(now);
            }
        },
    )
}

fn sse(s: impl Stream<Item = Result<Event, Infallible>> + Send + 'static) -> Response {
    Sse::new(s).keep_alive(KeepAlive::default()).into_response()
}

pub(super) async fn models(State(m): State<Shared>) -> Response {
    sse(changes(m, "models", |m| {
        Box::pin(async move { serde_json::to_value(m.models().await).unwrap_or_default() })
    }))
}

pub(super) async fn model(
    State(m): State<Shared>,
    Path(process): Path<String>,
    q: Result<Query<VersionQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Error> {
    let Query(q) = q.map_err(bad_query)?;
    // Refuse an unknown process at once rather than streaming errors.
    let version = m.deployed(&process, q.version).await?.version;
    Ok(sse(changes(m, "model", move |m| {
        let process = process.clone();
        Box::pin(async move {
            match m.model(&process, Some(version)).await {
                Ok((view, _)) => serde_json::to_value(view).unwrap_or_default(),
                Err(e) => serde_json::json!({"error": e.to_string()}),
            }
        })
    })))
}

pub(super) async fn instance(State(m): State<Shared>, Path(id): Path<String>) -> Response {
    sse(changes(m, "instance", move |m| {
        let id = id.clone();
        Box::pin(async move {
            match m.instance(&id).await {
                Ok((body, _)) => body,
                Err(e) => serde_json::json!({"error": e.to_string()}),
            }
        })
    }))
}
