//! The operations endpoint of `serve`: `GET /healthz`, `GET /metrics`, and the
//! read API `GET /v1/state/{tenant}/{view}` (the JSON of `govledger state VIEW
//! --tenant T --json`).

use crate::metrics::Metrics;
use crate::serve::SharedAdmission;
use crate::views::{document, View};
use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::json;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

/// Serves `/healthz` (200 `ok` while the consumer runs and NATS is connected, 503
/// otherwise), `/metrics`
/// (Prometheus text) and, given the shared state, `/v1/state/{tenant}/{view}` on
/// `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    state: Option<SharedAdmission>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let health = metrics.clone();
    let app = Router::new()
        .route(
            "/healthz",
            get(move || {
                let m = health.clone();
                async move {
                    if m.ready() {
                        (StatusCode::OK, "ok\n")
                    } else if !m.connected() {
                        (StatusCode::SERVICE_UNAVAILABLE, "nats disconnected\n")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "not consuming\n")
                    }
                }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let m = metrics.clone();
                async move { ([("content-type", "text/plain; version=0.0.4")], m.render()) }
            }),
        );
    let app = match state {
        Some(st) => app.route(
            "/v1/state/{tenant}/{view}",
            get(move |Path((tenant, view)): Path<(String, String)>| {
                let st = st.clone();
                async move { state_view(&st, &tenant, &view) }
            }),
        ),
        None => app,
    };
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

fn json_response(code: StatusCode, body: &serde_json::Value) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        format!("{body}\n"),
    )
        .into_response()
}

/// `GET /v1/state/{tenant}/{view}`: 200 with the view, 400 for a malformed tenant,
/// 404 for an unknown view.
fn state_view(st: &SharedAdmission, tenant: &str, view: &str) -> Response {
    if let Err(e) = govledger_schemas::TenantId::validate(tenant) {
        return json_response(StatusCode::BAD_REQUEST, &json!({"error": e.to_string()}));
    }
    let Some(view) = View::parse(view) else {
        let known: Vec<&str> = View::ALL.iter().map(|v| v.as_str()).collect();
        return json_response(
            StatusCode::NOT_FOUND,
            &json!({"error": format!("unknown view {view:?}; one of {}", known.join(", "))}),
        );
    };
    let adm = st.read().unwrap_or_else(|e| e.into_inner());
    json_response(StatusCode::OK, &document(&adm, view, Some(tenant), None))
}

/// Binds the address, so that a taken port is an error at start-up.
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}
