//! The operator's dashboard cannot drift from the metrics: every metric that
//! `deploy/grafana/parley.json` queries is in a running server's `/metrics` (after a
//! little traffic, so that histograms have samples) and in docs/operations.md.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::helpers::spawn_app;

const DASHBOARD: &str = include_str!("../../deploy/grafana/parley.json");
const OPERATIONS: &str = include_str!("../../docs/operations.md");

/// Every `parley_…` name in the dashboard's queries.
fn queried_metrics() -> BTreeSet<String> {
    let dashboard: Value = serde_json::from_str(DASHBOARD).expect("the dashboard is JSON");
    let mut exprs = Vec::new();
    collect_exprs(&dashboard, &mut exprs);
    assert!(
        exprs.len() >= 15,
        "the dashboard has its queries: {exprs:?}"
    );
    let mut names = BTreeSet::new();
    for expr in exprs {
        let mut rest = expr.as_str();
        while let Some(at) = rest.find("parley_") {
            let tail = &rest[at..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            names.insert(tail[..end].to_owned());
            rest = &tail[end..];
        }
    }
    names
}

fn collect_exprs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            if let Some(Value::String(expr)) = map.get("expr") {
                out.push(expr.clone());
            }
            map.values().for_each(|v| collect_exprs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}

/// A histogram's series name without `_bucket`, `_sum` or `_count`.
fn family(name: &str) -> &str {
    ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .unwrap_or(name)
}

#[tokio::test]
async fn every_metric_the_dashboard_queries_is_exported_and_documented() {
    let app = spawn_app().await;
    // Traffic that records every histogram: a send (send latency, commit, batch size),
    // its live delivery to a connected recipient, HTTP requests.
    let ada = app.new_user("Ada").await;
    let bob = app.new_user("Bob").await;
    let mut to_bob = app.connect(&bob.token).await;
    let mut from_ada = app.connect(&ada.token).await;
    from_ada
        .send_to(&bob.id, "for the dashboard", "dash-1")
        .await;
    assert_eq!(from_ada.recv().await["type"], "ack");
    assert_eq!(to_bob.recv().await["type"], "message");

    let res = app.get("/metrics", None).await;
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    let exported: BTreeSet<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();

    let queried = queried_metrics();
    let missing: Vec<_> = queried
        .iter()
        .filter(|m| !exported.contains(m.as_str()))
        .collect();
    assert!(missing.is_empty(), "queried but not exported: {missing:?}");
    let undocumented: Vec<_> = queried
        .iter()
        .filter(|m| !OPERATIONS.contains(&format!("`{}`", family(m))))
        .collect();
    assert!(
        undocumented.is_empty(),
        "queried but not in docs/operations.md: {undocumented:?}"
    );
    // What the issue asks the dashboard to show.
    for needed in [
        "parley_sessions_open",
        "parley_actors_alive",
        "parley_messages_rejected_total",
        "parley_persistence_commit_seconds_bucket",
        "parley_delivery_latency_seconds_bucket",
        "parley_persistence_queue_messages",
        "parley_signals_shed_total",
        "parley_rate_limit_hits_total",
        "parley_actor_restarts_total",
    ] {
        assert!(queried.contains(needed), "the dashboard shows {needed}");
    }
}
