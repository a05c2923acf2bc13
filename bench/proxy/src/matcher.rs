//! The cost of matching a request against the deployed HTTP bindings, with hundreds of them:
//! nanoseconds per lookup, next to the microseconds a hop costs.

use std::time::Instant;

use flowmesh_bpmn::model::{HttpBinding, KeySource, PathTemplate, Pos};
use flowmesh_proxy::observe::Rules;

pub(crate) const SERVICES: usize = 50;
pub(crate) const ROUTES: usize = 10;

fn binding(service: usize, route: usize) -> HttpBinding {
    // Shapes vary in length and parameter position, as real APIs do.
    let path = match route % 4 {
        0 => format!("/api/r{route}/{{id}}"),
        1 => format!("/api/r{route}/{{id}}/items"),
        2 => format!("/r{route}"),
        _ => format!("/api/v1/r{route}/{{id}}/sub/{{sub}}"),
    };
    HttpBinding {
        message: format!("M{service}-{route}"),
        message_id: format!("M{service}-{route}"),
        service: format!("service-{service}"),
        method: if route.is_multiple_of(2) {
            "POST"
        } else {
            "PUT"
        }
        .to_owned(),
        path: PathTemplate::parse(&path).unwrap_or_else(|e| panic!("{e}")),
        key: KeySource::Path("id".to_owned()),
        variables: None,
        pos: Pos { line: 1, col: 1 },
    }
}

/// Nanoseconds per lookup over a mix of matching and non-matching requests.
pub(crate) fn ns_per_lookup() -> (usize, f64) {
    let rules = Rules::new((0..SERVICES).flat_map(|s| (0..ROUTES).map(move |r| binding(s, r))));
    let requests: Vec<(String, &str, String)> = (0..1000)
        .map(|i| {
            let (s, r) = (i % SERVICES, (i / SERVICES) % ROUTES);
            let method = if r.is_multiple_of(2) { "POST" } else { "PUT" };
            let path = match (i % 3, r % 4) {
                (0, _) => format!("/unbound/{i}"),
                (_, 0) => format!("/api/r{r}/{i}"),
                (_, 1) => format!("/api/r{r}/{i}/items"),
                (_, 2) => format!("/r{r}"),
                _ => format!("/api/v1/r{r}/{i}/sub/x"),
            };
            (format!("service-{s}"), method, path)
        })
        .collect();
    let rounds = 1000;
    let started = Instant::now();
    let mut hits = 0usize;
    for _ in 0..rounds {
        for (service, method, path) in &requests {
            hits += usize::from(rules.find(service, method, path).is_some());
        }
    }
    let ns = started.elapsed().as_nanos() as f64 / (rounds * requests.len()) as f64;
    assert!(hits > 0, "the benchmark's requests never matched");
    (rules.len(), (ns * 10.0).round() / 10.0)
}
