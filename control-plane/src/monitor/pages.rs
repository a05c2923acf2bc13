//! The monitor's HTML: plain server-rendered pages that work without script (the script only
//! keeps numbers live), readable at 1280×800, with no external fonts or files.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use flowmesh_bpmn::model::Definitions;
use flowmesh_bpmn::render::{self, ElementMarks, FlowMarks, Overlay, Passed, escape};
use flowmesh_proto::monitor::{SidecarStatus, StateCounts};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;

use super::data::InstanceFilter;
use super::{Error, Shared, bad_query};

const STYLE: &str = include_str!("monitor.css");
const SCRIPT: &str = include_str!("monitor.js");

pub(super) async fn stylesheet() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response()
}

pub(super) async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
        .into_response()
}

fn url(part: &str) -> String {
    utf8_percent_encode(part, NON_ALPHANUMERIC).to_string()
}

/// The page around `main`: title, header with the way back, stylesheet, script. `live` is the
/// event stream the script follows.
fn page(title: &str, crumbs: &[(String, String)], live: Option<&str>, main: &str) -> Html<String> {
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{} · flowmesh monitor</title><link rel="stylesheet" href="/ui/monitor.css"></head><body{}><header><a class="brand" href="/ui/">flowmesh monitor</a><nav aria-label="Breadcrumb">"#,
        escape(title),
        live.map(|l| format!(r#" data-live="{}""#, escape(l)))
            .unwrap_or_default()
    );
    for (href, label) in crumbs {
        let _ = write!(
            out,
            r#" / <a href="{}">{}</a>"#,
            escape(href),
            escape(label)
        );
    }
    let _ = write!(
        out,
        r#"</nav></header><main>{main}</main><script src="/ui/monitor.js" defer></script></body></html>"#
    );
    Html(out)
}

/// An error as a page: what went wrong and the way back.
fn error_page(e: &Error) -> Response {
    let status = match e {
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::Invalid(_) => StatusCode::BAD_REQUEST,
        Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    let main = format!(
        r#"<h1>{}</h1><p class="problem" role="alert">{}</p><p><a href="/ui/">Back to the models</a></p>"#,
        status.canonical_reason().unwrap_or("Error"),
        escape(&e.to_string())
    );
    (status, page("Error", &[], None, &main)).into_response()
}

/// Says which sidecars answered; the script keeps it current.
fn sidecars(out: &mut String, statuses: &[SidecarStatus]) {
    let missing: Vec<&SidecarStatus> = statuses.iter().filter(|s| s.state != "ok").collect();
    let class = if missing.is_empty() { "ok" } else { "warn" };
    let _ = write!(
        out,
        r#"<div id="sidecars" class="sidecars {class}" role="status" aria-live="polite">"#
    );
    out.push_str(&escape(&sidecar_text(statuses)));
    out.push_str("</div>");
}

/// The same sentence the script writes (monitor.js `sidecarText`).
fn sidecar_text(statuses: &[SidecarStatus]) -> String {
    let missing: Vec<&SidecarStatus> = statuses.iter().filter(|s| s.state != "ok").collect();
    if statuses.is_empty() {
        return "No sidecar of the owning services is registered: no instance can be shown.".into();
    }
    if missing.is_empty() {
        return if statuses.len() == 1 {
            "The sidecar answered.".to_owned()
        } else {
            format!("All {} sidecars answered.", statuses.len())
        };
    }
    let names: Vec<String> = missing
        .iter()
        .map(|s| {
            format!(
                "{} ({}: {})",
                s.instance,
                s.state,
                s.detail.as_deref().unwrap_or("no detail")
            )
        })
        .collect();
    format!(
        "{} of {} sidecars did not answer: {}. Their instances are not counted here.",
        missing.len(),
        statuses.len(),
        names.join("; ")
    )
}

fn counts(out: &mut String, c: &StateCounts) {
    let _ = write!(
        out,
        r#"<dl class="counts"><div><dt>Active</dt><dd data-count="active">{}</dd></div><div><dt>Completed</dt><dd data-count="completed">{}</dd></div><div><dt>With incidents</dt><dd data-count="incident">{}</dd></div><div><dt>Cancelled</dt><dd data-count="cancelled">{}</dd></div></dl>"#,
        c.active, c.completed, c.incident, c.cancelled
    );
}

/// A duration in the unit that reads best.
fn duration(ms: f64) -> String {
    if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else if ms < 60_000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else if ms < 3_600_000.0 {
        format!("{:.1} min", ms / 60_000.0)
    } else if ms < 86_400_000.0 {
        format!("{:.1} h", ms / 3_600_000.0)
    } else {
        format!("{:.1} d", ms / 86_400_000.0)
    }
}

/// An RFC 3339 time as "2026-11-26 15:19:27 UTC".
fn time(text: &str) -> String {
    let t = text.replace('T', " ");
    let t = t.trim_end_matches('Z');
    t.split('.').next().unwrap_or(t).to_owned() + " UTC"
}

/// The same to the millisecond, for a history where many steps share a second.
fn time_ms(text: &str) -> String {
    let t = text.replace('T', " ");
    let t = t.trim_end_matches('Z');
    match t.split_once('.') {
        Some((whole, frac)) => format!("{whole}.{:0<3.3}", frac),
        None => format!("{t}.000"),
    }
}

fn element_name(defs: &Definitions, id: &str) -> String {
    for p in &defs.processes {
        if let Some(i) = p.element_by_id(id) {
            return p.element(i).name.clone().unwrap_or_else(|| id.to_owned());
        }
        if p.flow_by_id(id).is_some() {
            return format!("flow {id}");
        }
    }
    id.to_owned()
}

pub(super) async fn models(State(m): State<Shared>) -> Response {
    let view = m.models().await;
    let mut main = String::from("<h1>Models</h1>");
    sidecars(&mut main, &view.sidecars);
    if view.models.is_empty() {
        main.push_str("<p>No model is deployed yet. Deploy one with <code>flowmesh deploy FILE.bpmn --owner SERVICE</code>.</p>");
    } else {
        main.push_str(r#"<table class="models"><caption>Deployed processes and their instances over all sidecars</caption><thead><tr><th scope="col">Process</th><th scope="col">Owner</th><th scope="col">Versions</th><th scope="col" class="num">Active</th><th scope="col" class="num">Completed</th><th scope="col" class="num">With incidents</th></tr></thead><tbody>"#);
        for p in &view.models {
            let versions: Vec<String> = p
                .versions
                .iter()
                .map(|v| {
                    format!(
                        r#"<a href="/ui/models/{}?version={}" title="deployed {}">v{}</a>"#,
                        url(&p.process),
                        v.version,
                        escape(&time(&v.deployed_at)),
                        v.version
                    )
                })
                .collect();
            let _ = write!(
                main,
                r#"<tr data-process="{pid}"><th scope="row"><a href="/ui/models/{purl}">{pid}</a></th><td>{owner}</td><td>{versions}</td><td class="num" data-count="active">{}</td><td class="num" data-count="completed">{}</td><td class="num" data-count="incident">{}</td></tr>"#,
                p.instances.active,
                p.instances.completed,
                p.instances.incident,
                pid = escape(&p.process),
                purl = url(&p.process),
                owner = escape(&p.owner),
                versions = versions.join(" "),
            );
        }
        main.push_str("</tbody></table>");
    }
    page("Models", &[], Some("/v1/monitor/live"), &main).into_response()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ModelQuery {
    version: Option<u32>,
    state: Option<String>,
    business_key: Option<String>,
    cursor: Option<String>,
}

pub(super) async fn model(
    State(m): State<Shared>,
    Path(process): Path<String>,
    q: Result<Query<ModelQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = match q {
        Ok(Query(q)) => q,
        Err(e) => return error_page(&bad_query(e)),
    };
    let (view, deployed) = match m.model(&process, q.version).await {
        Ok(v) => v,
        Err(e) => return error_page(&e),
    };
    let state = q.state.clone().filter(|s| !s.is_empty());
    let filter = InstanceFilter {
        version: Some(view.version),
        state: state.clone(),
        business_key: q.business_key.clone(),
        limit: Some(25),
        cursor: q.cursor.clone(),
    };
    let list = m.instances(&process, &filter).await;
    let defs = &deployed.definitions;
    let mut overlay = Overlay {
        badges: true,
        ..Overlay::default()
    };
    for (id, s) in &view.elements {
        let mut title = format!(
            "active {}, completed {}, terminated {}, incidents {}",
            s.active, s.completed, s.terminated, s.incidents
        );
        if let (Some(avg), Some(p95)) = (s.avg_ms, s.p95_ms) {
            let _ = write!(
                title,
                "\ntime spent: average {}, p95 {}",
                duration(avg),
                duration(p95)
            );
        }
        overlay.elements.insert(
            id.clone(),
            ElementMarks {
                active: s.active,
                completed: s.completed,
                incidents: s.incidents,
                passed: None,
                title: Some(title),
            },
        );
    }
    for (id, f) in &view.flows {
        overlay.flows.insert(
            id.clone(),
            FlowMarks {
                share: Some(f.share),
                taken: false,
                title: Some(format!(
                    "taken {} times ({:.0}% of the instances)",
                    f.taken,
                    f.share * 100.0
                )),
            },
        );
    }
    let mut main = String::new();
    let _ = write!(
        main,
        r#"<h1>{} <span class="version">version {}</span></h1><p class="meta">Owned by <strong>{}</strong>. Versions: "#,
        escape(&process),
        view.version,
        escape(&view.owner)
    );
    for v in &view.versions {
        if *v == view.version {
            let _ = write!(main, r#"<strong aria-current="page">v{v}</strong> "#);
        } else {
            let _ = write!(
                main,
                r#"<a href="/ui/models/{}?version={v}">v{v}</a> "#,
                url(&process)
            );
        }
    }
    main.push_str("</p>");
    sidecars(&mut main, &view.sidecars);
    counts(&mut main, &view.instances);
    let _ = write!(
        main,
        r#"<figure class="diagram" aria-label="Diagram of {} with the number of instances on each element">{}<figcaption>Badges: <span class="key active">active</span> <span class="key completed">completed</span> <span class="key incidents">incidents</span>. Sequence flows are thicker and bluer the more instances took them. Hover an element for its times.</figcaption></figure>"#,
        escape(&process),
        render::svg(defs, &overlay)
    );
    // The same numbers as a table, for reading and for screen readers.
    main.push_str(r#"<details class="elements"><summary>Elements: counts and time spent</summary><table><thead><tr><th scope="col">Element</th><th scope="col" class="num">Active</th><th scope="col" class="num">Completed</th><th scope="col" class="num">Incidents</th><th scope="col" class="num">Average</th><th scope="col" class="num">p95</th></tr></thead><tbody>"#);
    let mut rows: BTreeMap<String, String> = BTreeMap::new();
    for (id, s) in &view.elements {
        let name = element_name(defs, id);
        rows.insert(
            format!("{name}\u{0}{id}"),
            format!(
                r#"<tr data-element="{}"><th scope="row">{}</th><td class="num" data-stat="active">{}</td><td class="num" data-stat="completed">{}</td><td class="num" data-stat="incidents">{}</td><td class="num">{}</td><td class="num">{}</td></tr>"#,
                escape(id),
                escape(&name),
                s.active,
                s.completed,
                s.incidents,
                s.avg_ms.map(duration).unwrap_or_default(),
                s.p95_ms.map(duration).unwrap_or_default()
            ),
        );
    }
    for r in rows.values() {
        main.push_str(r);
    }
    main.push_str("</tbody></table></details>");
    instance_list(
        &mut main,
        &process,
        view.version,
        &q,
        state.as_deref(),
        list,
    );
    let title = format!("{process} v{}", view.version);
    let live = format!(
        "/v1/monitor/models/{}/live?version={}",
        url(&process),
        view.version
    );
    page(
        &title,
        &[(format!("/ui/models/{}", url(&process)), process.clone())],
        Some(&live),
        &main,
    )
    .into_response()
}

fn instance_list(
    main: &mut String,
    process: &str,
    version: u32,
    q: &ModelQuery,
    state: Option<&str>,
    list: Result<flowmesh_proto::monitor::InstancesView, Error>,
) {
    main.push_str(r#"<section class="instances" aria-labelledby="instances-h"><h2 id="instances-h">Instances</h2>"#);
    let _ = write!(
        main,
        r#"<form method="get" action="/ui/models/{}" class="filters"><input type="hidden" name="version" value="{version}"><label>State <select name="state"><option value="">any</option>"#,
        url(process)
    );
    for s in ["active", "incident", "completed", "cancelled"] {
        let _ = write!(
            main,
            r#"<option value="{s}"{}>{s}</option>"#,
            if state == Some(s) { " selected" } else { "" }
        );
    }
    let _ = write!(
        main,
        r#"</select></label> <label>Business key <input type="search" name="business_key" value="{}"></label> <button type="submit">Filter</button></form>"#,
        escape(q.business_key.as_deref().unwrap_or_default())
    );
    match list {
        Err(e) => {
            let _ = write!(
                main,
                r#"<p class="problem" role="alert">{}</p>"#,
                escape(&e.to_string())
            );
        }
        Ok(list) if list.items.is_empty() => {
            main.push_str("<p>No instance matches.</p>");
        }
        Ok(list) => {
            main.push_str(r#"<table><thead><tr><th scope="col">Instance</th><th scope="col">Business key</th><th scope="col">State</th><th scope="col">Started</th><th scope="col">Ended</th><th scope="col">Sidecar</th></tr></thead><tbody>"#);
            for i in &list.items {
                let _ = write!(
                    main,
                    r#"<tr><th scope="row"><a href="/ui/instances/{}">{}</a></th><td>{}</td><td><span class="state {}">{}</span></td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
                    url(&i.id),
                    escape(&i.key),
                    escape(i.business_key.as_deref().unwrap_or("")),
                    escape(&i.state),
                    escape(&i.state),
                    escape(&time(&i.started_at)),
                    escape(&i.ended_at.as_deref().map(time).unwrap_or_default()),
                    escape(&i.sidecar)
                );
            }
            main.push_str("</tbody></table>");
            if let Some(next) = &list.next {
                let mut href = format!("/ui/models/{}?version={version}", url(process));
                if let Some(s) = state {
                    let _ = write!(href, "&state={}", url(s));
                }
                if let Some(b) = q.business_key.as_deref().filter(|b| !b.is_empty()) {
                    let _ = write!(href, "&business_key={}", url(b));
                }
                let _ = write!(href, "&cursor={}", url(next));
                let _ = write!(
                    main,
                    r#"<p class="paging"><a rel="next" href="{}">Next page</a></p>"#,
                    escape(&href)
                );
            }
        }
    }
    main.push_str("</section>");
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct InstanceQuery {
    retried: Option<String>,
}

pub(super) async fn instance(
    State(m): State<Shared>,
    Path(id): Path<String>,
    Query(q): Query<InstanceQuery>,
) -> Response {
    let body = match m.instance(&id).await {
        Ok((b, _)) => b,
        Err(e) => return error_page(&e),
    };
    let process = body["process"].as_str().unwrap_or_default().to_owned();
    let version = body["version"].as_u64().and_then(|v| u32::try_from(v).ok());
    let deployed = match m.deployed(&process, version).await {
        Ok(d) => d,
        Err(e) => return error_page(&e),
    };
    let defs = &deployed.definitions;
    let strs = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let active: HashSet<String> = strs(&body["active_elements"]).into_iter().collect();
    let incidents = body["incidents"].as_array().cloned().unwrap_or_default();
    let stuck: HashSet<String> = incidents
        .iter()
        .filter_map(|i| i["element"].as_str().map(str::to_owned))
        .collect();
    let history = body["history"].as_array().cloned().unwrap_or_default();
    let mut overlay = Overlay::default();
    for h in &history {
        let (Some(el), Some(event)) = (h["element"].as_str(), h["event"].as_str()) else {
            continue;
        };
        if event == "taken" {
            overlay.flows.insert(
                el.to_owned(),
                FlowMarks {
                    taken: true,
                    ..FlowMarks::default()
                },
            );
        } else {
            overlay.elements.entry(el.to_owned()).or_default().passed = Some(Passed::Taken);
        }
    }
    for el in &active {
        overlay.elements.entry(el.clone()).or_default().passed = Some(Passed::Active);
    }
    for el in &stuck {
        overlay.elements.entry(el.clone()).or_default().passed = Some(Passed::Incident);
    }
    let state = body["state"].as_str().unwrap_or_default();
    let mut main = format!(
        r#"<span id="shown" hidden data-shown="{}/{}/{}"></span>"#,
        escape(body["state"].as_str().unwrap_or_default()),
        history.len(),
        incidents.len()
    );
    let _ = write!(
        main,
        r#"<h1>{} <span class="version">instance {}</span> <span class="state {}" data-field="state">{}</span></h1><dl class="facts">"#,
        escape(&process),
        escape(body["key"].as_str().unwrap_or_default()),
        escape(state),
        escape(state),
    );
    let fact = |main: &mut String, k: &str, v: &str| {
        let _ = write!(main, "<div><dt>{}</dt><dd>{}</dd></div>", escape(k), v);
    };
    fact(
        &mut main,
        "Business key",
        &escape(body["business_key"].as_str().unwrap_or("—")),
    );
    fact(
        &mut main,
        "Model",
        &format!(
            r#"<a href="/ui/models/{}?version={}">{} v{}</a>"#,
            url(&process),
            deployed.version,
            escape(&process),
            deployed.version
        ),
    );
    fact(
        &mut main,
        "Started",
        &escape(&time(body["started_at"].as_str().unwrap_or_default())),
    );
    fact(
        &mut main,
        "Ended",
        &escape(
            &body["ended_at"]
                .as_str()
                .map(time)
                .unwrap_or_else(|| "—".into()),
        ),
    );
    fact(
        &mut main,
        "Sidecar",
        &escape(&format!(
            "{} ({})",
            body["sidecar"].as_str().unwrap_or_default(),
            body["service"].as_str().unwrap_or_default()
        )),
    );
    let trace = match (body["trace_url"].as_str(), body["trace_id"].as_str()) {
        (Some(u), Some(t)) => format!(
            r#"<a href="{}" rel="external">{}</a>"#,
            escape(u),
            escape(t)
        ),
        (None, Some(t)) => format!(
            "<code>{}</code> (set <code>--trace-url</code> to link to your tracing UI)",
            escape(t)
        ),
        _ => "—".into(),
    };
    fact(&mut main, "Trace", &trace);
    main.push_str("</dl>");
    if let Some(r) = q.retried.as_deref() {
        let _ = write!(
            main,
            r#"<p class="notice" role="status">Incident {} was resolved; the instance continues.</p>"#,
            escape(r)
        );
    }
    let _ = write!(
        main,
        r#"<figure class="diagram" aria-label="Diagram of {} with this instance's path">{}<figcaption><span class="key taken">path taken</span> <span class="key active">active now</span> <span class="key incident">incident</span></figcaption></figure>"#,
        escape(&process),
        render::svg(defs, &overlay)
    );
    main.push_str(r#"<section aria-labelledby="inc-h"><h2 id="inc-h">Incidents</h2>"#);
    if incidents.is_empty() {
        main.push_str("<p>None open.</p>");
    } else {
        main.push_str("<ul class=\"incidents\">");
        for i in &incidents {
            let inc = i["id"].as_str().unwrap_or_default();
            let el = i["element"].as_str().unwrap_or_default();
            let _ = write!(
                main,
                r#"<li data-incident="{inc_e}"><p><strong>{}</strong> at <em>{}</em> since {}: {}</p><form method="post" action="/ui/instances/{}/incidents/{}/retry"><button type="submit">Retry</button></form></li>"#,
                escape(i["kind"].as_str().unwrap_or_default()),
                escape(&element_name(defs, el)),
                escape(&time(i["created_at"].as_str().unwrap_or_default())),
                escape(i["message"].as_str().unwrap_or_default()),
                url(&id),
                url(inc),
                inc_e = escape(inc),
            );
        }
        main.push_str("</ul>");
    }
    main.push_str("</section>");
    main.push_str(
        r#"<div class="columns"><section aria-labelledby="vars-h"><h2 id="vars-h">Variables</h2>"#,
    );
    match body["variables"].as_object() {
        Some(vars) if !vars.is_empty() => {
            main.push_str(r#"<table class="variables"><thead><tr><th scope="col">Name</th><th scope="col">Value</th></tr></thead><tbody>"#);
            for (k, v) in vars {
                let _ = write!(
                    main,
                    "<tr><th scope=\"row\">{}</th><td><code>{}</code></td></tr>",
                    escape(k),
                    escape(&v.to_string())
                );
            }
            main.push_str("</tbody></table>");
        }
        _ => main.push_str("<p>None.</p>"),
    }
    main.push_str(r#"</section><section aria-labelledby="hist-h"><h2 id="hist-h">History</h2><ol class="timeline">"#);
    for h in history
        .iter()
        .filter(|h| h["event"].as_str() != Some("taken"))
    {
        let el = h["element"].as_str().unwrap_or_default();
        let _ = write!(
            main,
            r#"<li><time>{}</time> <span class="what">{}</span> <span class="event {}">{}</span></li>"#,
            escape(&time_ms(h["at"].as_str().unwrap_or_default())),
            escape(&element_name(defs, el)),
            escape(h["event"].as_str().unwrap_or_default()),
            escape(h["event"].as_str().unwrap_or_default()),
        );
    }
    main.push_str("</ol></section></div>");
    let title = format!("{process} {id}");
    let live = format!("/v1/monitor/instances/{}/live", url(&id));
    page(
        &title,
        &[
            (
                format!("/ui/models/{}?version={}", url(&process), deployed.version),
                process.clone(),
            ),
            (format!("/ui/instances/{}", url(&id)), id.clone()),
        ],
        Some(&live),
        &main,
    )
    .into_response()
}

/// The retry button: resolves the incident through the owning sidecar, then back to the
/// instance (POST, redirect, GET: a reload does not retry twice).
pub(super) async fn retry(
    State(m): State<Shared>,
    Path((id, incident)): Path<(String, String)>,
) -> Response {
    match m.resolve(&id, &incident).await {
        Ok(()) => Redirect::to(&format!(
            "/ui/instances/{}?retried={}",
            url(&id),
            url(&incident)
        ))
        .into_response(),
        Err(e) => error_page(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_times_read_well() {
        assert_eq!(duration(850.0), "850 ms");
        assert_eq!(duration(2400.0), "2.4 s");
        assert_eq!(duration(90_000.0), "1.5 min");
        assert_eq!(duration(7_200_000.0), "2.0 h");
        assert_eq!(duration(172_800_000.0), "2.0 d");
        assert_eq!(time("2026-11-26T15:19:27.123Z"), "2026-11-26 15:19:27 UTC");
        assert_eq!(time_ms("2026-11-26T15:19:27.1Z"), "2026-11-26 15:19:27.100");
        assert_eq!(time_ms("2026-11-26T15:19:27Z"), "2026-11-26 15:19:27.000");
    }

    #[test]
    fn the_sidecar_sentence_names_the_missing_ones() {
        let ok = SidecarStatus {
            service: "payment".into(),
            instance: "payment-1".into(),
            address: "127.0.0.1:1".into(),
            state: "ok".into(),
            detail: None,
            took_ms: 1,
        };
        let down = SidecarStatus {
            instance: "payment-2".into(),
            state: "unreachable".into(),
            detail: Some("Connection refused".into()),
            ..ok.clone()
        };
        assert_eq!(
            sidecar_text(std::slice::from_ref(&ok)),
            "The sidecar answered."
        );
        assert_eq!(
            sidecar_text(&[ok, down]),
            "1 of 2 sidecars did not answer: payment-2 (unreachable: Connection refused). Their instances are not counted here."
        );
    }
}
