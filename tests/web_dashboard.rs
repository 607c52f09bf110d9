//! The dashboard's figures, pausing blocking, and the Prometheus metrics over
//! real HTTP.

mod support;

use serde_json::json;
use support::web::*;

#[tokio::test]
async fn pause_and_resume_blocking() {
    let (b, mut c) = ready(|_| {}).await;
    assert_eq!(c.get("/api/v1/pause").await.json()["paused"], false);
    let r = c.send("POST", "/api/v1/pause", json!({"minutes": 5})).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["paused"], true);
    // Five minutes from when it was asked, give or take the request itself.
    let until = r.json()["until_ms"].as_i64().expect("until_ms");
    let now = glory_hole::clock::now_ms();
    assert!(
        (now + 290_000..=now + 300_000).contains(&until),
        "paused until {until}, now {now}"
    );
    assert!(c.get("/").await.body.contains("Blocking is paused"));
    assert_eq!(
        c.send("POST", "/api/v1/pause", json!({"minutes": 100000}))
            .await
            .status,
        422
    );
    assert_eq!(
        c.send("POST", "/api/v1/pause", json!({})).await.json()["until_ms"],
        serde_json::Value::Null
    );
    assert_eq!(
        c.send("DELETE", "/api/v1/pause", json!({})).await.json()["paused"],
        false
    );
    assert!(!b.backend.pause_status_for_test());
}

trait PauseForTest {
    fn pause_status_for_test(&self) -> bool;
}
impl PauseForTest for TestBackend {
    fn pause_status_for_test(&self) -> bool {
        self.paused.lock().unwrap().paused
    }
}

#[tokio::test]
async fn prometheus_metrics_are_off_by_default_and_token_only() {
    let (_b, mut c) = ready(|_| {}).await;
    let tok = c
        .send("POST", "/api/v1/tokens", json!({"name": "prom"}))
        .await
        .json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let mut prom = Client::new(&c.base.clone());
    prom.bearer = Some(tok.clone());
    assert_eq!(prom.get("/metrics").await.status, 404);

    let (b, mut c) = ready(|cfg| cfg.web.metrics = true).await;
    b.backend.record("a.example", "192.168.1.2", "blocked");
    assert_eq!(
        c.get("/metrics").await.status,
        401,
        "a browser session must not read metrics"
    );
    assert_eq!(Client::new(&b.base()).get("/metrics").await.status, 401);
    let tok = c
        .send("POST", "/api/v1/tokens", json!({"name": "prom"}))
        .await
        .json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let mut prom = Client::new(&b.base());
    prom.bearer = Some(tok);
    let r = prom.get("/metrics").await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").starts_with("text/plain"));
    assert!(r.body.contains("glory_hole_blocked_24h 1\n"), "{}", r.body);
    // The query log lost nothing (benches/soak.sh reads these).
    for lost in [
        "querylog_dropped_events_total",
        "querylog_dropped_rows_total",
    ] {
        assert!(
            r.body.contains(&format!("glory_hole_{lost} 0\n")),
            "{}",
            r.body
        );
    }
}
