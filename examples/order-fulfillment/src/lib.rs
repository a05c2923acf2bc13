//! The order-fulfillment example: five small services with their own HTTP APIs (checkout,
//! order, payment, inventory, shipping) that exchange CloudEvents on the topic
//! `flowing-retail` through their sidecar's event API, with the vocabulary of the original
//! flowing-retail demo. `flowmesh demo` runs each as a child process
//! (`flowmesh example-app NAME`) behind its own sidecar.
//!
//! - [`app`]: what every app shares: options, the sidecar client, the event envelope.
//! - [`checkout`], [`payment`], [`inventory`], [`shipping`], [`order`]: one service each.
//! - [`kafka`]: an app's own Kafka client, for the demo on the Kafka bus.
//! - [`models`]: the BPMN models of the demo's stages.

pub mod app;
pub mod checkout;
pub mod inventory;
pub mod kafka;
pub mod models;
pub mod order;
pub mod payment;
pub mod shipping;

pub use app::{Behaviour, Mode, Options};

/// The topic every event of the example travels on.
pub const TOPIC: &str = "flowing-retail";

/// The services, in the order the demo starts them.
pub const SERVICES: [&str; 5] = ["checkout", "order", "payment", "inventory", "shipping"];

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("'{0}' is not an app of the example (checkout, order, payment, inventory, shipping)")]
    UnknownApp(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("the app stopped: {0}")]
    Serve(std::io::Error),
}

/// Runs the app `options.name` until `shutdown` resolves; `bound` learns the address it
/// listens on (port 0 picks a free one).
pub async fn run(
    options: Options,
    bound: impl FnOnce(std::net::SocketAddr),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let app = app::App::new(&options);
    let router = match options.name.as_str() {
        "checkout" => checkout::router(app.clone()),
        "order" => order::router(app.clone()),
        "payment" => payment::router(app.clone()),
        "inventory" => inventory::router(app.clone()),
        "shipping" => shipping::router(app.clone()),
        other => return Err(Error::UnknownApp(other.to_owned())),
    };
    // The demo tells each app where its sidecar is once the sidecar runs.
    let sidecar_app = app.clone();
    let router = router.route(
        "/admin/sidecar",
        axum::routing::put(move |body: String| {
            let app = sidecar_app.clone();
            async move {
                if body.trim().starts_with("http://") {
                    app.set_sidecar(&body);
                    (axum::http::StatusCode::OK, "ok\n")
                } else {
                    (
                        axum::http::StatusCode::BAD_REQUEST,
                        "the body is the sidecar's local API URL (http://...)\n",
                    )
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|source| Error::Listen {
            addr: options.listen,
            source,
        })?;
    let own = listener.local_addr().map_err(Error::Serve)?;
    // On the Kafka bus the demo gives each app its sidecar's Kafka port; every app but
    // checkout then reads the topic with a consumer group of its own.
    let kafka_app = app.clone();
    let name = options.name.clone();
    let router = router.route(
        "/admin/kafka",
        axum::routing::put(move |body: String| {
            let (app, name) = (kafka_app.clone(), name.clone());
            async move {
                let group = format!("{name}-app-{}", std::process::id());
                let consume = (name != "checkout").then_some(own);
                match kafka::Link::connect(body.trim(), &group, consume).await {
                    Ok(link) => {
                        app.set_kafka(link);
                        (axum::http::StatusCode::OK, "ok\n".to_owned())
                    }
                    Err(e) => (axum::http::StatusCode::BAD_GATEWAY, format!("{e}\n")),
                }
            }
        }),
    );
    // The demo switches every app between choreography and orchestration between stages.
    let router = router.route(
        "/admin/mode",
        axum::routing::put(move |body: String| {
            let app = app.clone();
            async move {
                match Mode::parse(&body) {
                    Some(m) => {
                        app.set_mode(m);
                        (axum::http::StatusCode::OK, "ok\n")
                    }
                    None => (
                        axum::http::StatusCode::BAD_REQUEST,
                        "the body is choreography or orchestration\n",
                    ),
                }
            }
        }),
    );
    bound(own);
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(Error::Serve)
}
