//! Prometheus metrics: HTTP requests by route and status, a latency histogram, and the
//! job queue's depth by state (read from the database at each scrape, so every node
//! reports the same figure).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// A recorder owned by one server instance (not the process-global one), so that
/// several instances in one process, as in tests, keep separate figures.
#[derive(Clone)]
pub struct Metrics {
    recorder: Arc<PrometheusRecorder>,
    handle: PrometheusHandle,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("http_request_duration_seconds".into()),
                &LATENCY_BUCKETS,
            )
            .expect("the bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        Self {
            recorder: Arc::new(recorder),
            handle,
        }
    }

    /// Runs `f` with this instance's recorder behind the `metrics` macros.
    pub fn with<T>(&self, f: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(self.recorder.as_ref(), f)
    }

    pub fn set_job_depth(&self, state: &'static str, depth: i64) {
        self.with(|| gauge!("ee_jobs", "state" => state).set(depth as f64));
    }

    /// Sets the infrastructure gauges from the snapshot the metrics job computed.
    pub fn set_infrastructure(&self, snapshot: &serde_json::Value) {
        let text = |v: &serde_json::Value| v.as_str().unwrap_or("none").to_owned();
        self.with(|| {
            for row in snapshot["ips_by_state"].as_array().into_iter().flatten() {
                gauge!("ee_ips", "tenant" => text(&row["tenant_id"]), "state" => text(&row["state"]))
                    .set(row["count"].as_f64().unwrap_or(0.0));
            }
            for ip in snapshot["ips"].as_array().into_iter().flatten() {
                let labels = [("ip", text(&ip["ip"])), ("tenant", text(&ip["tenant_id"]))];
                // -1: no warm-up limit (an ACTIVE IP).
                gauge!("ee_ip_daily_quota", &labels).set(ip["daily_quota"].as_f64().unwrap_or(-1.0));
                gauge!("ee_ip_sent_today", &labels).set(ip["sent_today"].as_f64().unwrap_or(0.0));
                gauge!("ee_ip_blacklisted", &labels).set(if ip["blacklisted"] == true { 1.0 } else { 0.0 });
            }
            for domain in snapshot["domains"].as_array().into_iter().flatten() {
                // 1 ok, 0 failing, -1 never checked.
                let ok = domain["dns_ok"].as_f64().unwrap_or(-1.0);
                gauge!("ee_domain_dns_ok", "domain" => text(&domain["domain"]), "tenant" => text(&domain["tenant_id"])).set(ok);
            }
            if let Some(at) = snapshot["generated_at"].as_f64() {
                gauge!("ee_infrastructure_snapshot_timestamp_seconds").set(at / 1000.0);
            }
        });
    }

    /// PowerMTA's gauges from the last poll of its management interface (a figure it did
    /// not give is left out rather than reported as 0).
    pub fn set_pmta(&self, poll: &serde_json::Value) {
        if poll["configured"] != true {
            return;
        }
        let text = |v: &serde_json::Value| v.as_str().unwrap_or("none").to_owned();
        self.with(|| {
            let up = poll["reachable"] == true;
            gauge!("ee_pmta_up").set(if up { 1.0 } else { 0.0 });
            if let Some(at) = poll["polled_at"].as_f64() {
                gauge!("ee_pmta_polled_timestamp_seconds").set(at / 1000.0);
            }
            if !up {
                return;
            }
            let status = &poll["status"];
            let totals = &status["totals"];
            for (name, value) in [
                ("ee_pmta_queued_recipients", &totals["queued_recipients"]),
                ("ee_pmta_queued_domains", &totals["queued_domains"]),
                ("ee_pmta_queued_kilobytes", &totals["queued_kb"]),
                (
                    "ee_pmta_smtp_out_connections",
                    &totals["smtp_out_connections"],
                ),
                (
                    "ee_pmta_smtp_in_connections",
                    &totals["smtp_in_connections"],
                ),
                (
                    "ee_pmta_out_recipients_last_hour",
                    &totals["out_last_hour"]["recipients"],
                ),
                (
                    "ee_pmta_out_recipients_last_minute",
                    &totals["out_last_minute"]["recipients"],
                ),
            ] {
                if let Some(v) = value.as_f64() {
                    gauge!(name).set(v);
                }
            }
            for q in status["queues"].as_array().into_iter().flatten() {
                let labels = [("domain", text(&q["domain"])), ("vmta", text(&q["vmta"]))];
                if let Some(v) = q["recipients"].as_f64() {
                    gauge!("ee_pmta_queue_recipients", &labels).set(v);
                }
                if let Some(v) = q["connections"].as_f64() {
                    gauge!("ee_pmta_queue_connections", &labels).set(v);
                }
                gauge!("ee_pmta_queue_backoff", &labels).set(if q["mode"] == "backoff" {
                    1.0
                } else {
                    0.0
                });
                gauge!("ee_pmta_queue_paused", &labels).set(if q["paused"] == true {
                    1.0
                } else {
                    0.0
                });
            }
            for v in status["vmtas"].as_array().into_iter().flatten() {
                let labels = [("vmta", text(&v["name"]))];
                if let Some(n) = v["recipients"].as_f64() {
                    gauge!("ee_pmta_vmta_recipients", &labels).set(n);
                }
                if let Some(n) = v["connections"].as_f64() {
                    gauge!("ee_pmta_vmta_connections", &labels).set(n);
                }
            }
            for d in status["domains"].as_array().into_iter().flatten() {
                let labels = [("domain", text(&d["name"]))];
                if let Some(n) = d["recipients"].as_f64() {
                    gauge!("ee_pmta_domain_recipients", &labels).set(n);
                }
            }
        });
    }

    /// The outcome of each scheduled job's last run.
    pub fn set_job_run(&self, job: &'static str, succeeded: bool, finished_at_ms: Option<i64>) {
        self.with(|| {
            gauge!("ee_scheduled_job_last_run_ok", "job" => job).set(if succeeded {
                1.0
            } else {
                0.0
            });
            if let Some(at) = finished_at_ms {
                gauge!("ee_scheduled_job_last_run_timestamp_seconds", "job" => job)
                    .set(at as f64 / 1000.0);
            }
        });
    }

    /// The health job's checks: `ee_health_check_ok{check}` (1 or 0) and, where measured,
    /// `ee_health_check_value{check}` (a share, or the backlog's count).
    pub fn set_health(&self, result: &serde_json::Value) {
        self.with(|| {
            for c in result["checks"].as_array().into_iter().flatten() {
                let check = c["check"].as_str().unwrap_or("unknown").to_owned();
                gauge!("ee_health_check_ok", "check" => check.clone()).set(if c["ok"] == true {
                    1.0
                } else {
                    0.0
                });
                if let Some(v) = c["value"].as_f64() {
                    gauge!("ee_health_check_value", "check" => check).set(v);
                }
            }
        });
    }

    /// The delivery counters per tenant, from the reports' counters (every node reads the
    /// same figures): `ee_sent_total`, `ee_delivered_total`, `ee_bounced_total{class}`,
    /// `ee_complained_total`, `ee_opened_total{machine}`, `ee_clicked_total{machine}`,
    /// `ee_unsubscribed_total`.
    /// Traffic shaping: the states in force by provider and action (every pair reported,
    /// 0 included, so a state that ends shows as 0), and deferrals by recipient provider
    /// and IP.
    pub fn set_shaping(
        &self,
        active: &[ee_core::shaping::Active],
        deferred: &[(String, String, i64)],
    ) {
        use ee_core::shaping::ActionKind;
        self.with(|| {
            let mut providers: Vec<&str> = active.iter().map(|a| a.provider.as_str()).collect();
            providers.extend(["gmail", "yahoo", "microsoft"]);
            providers.sort_unstable();
            providers.dedup();
            for provider in providers {
                for kind in ActionKind::ALL {
                    let n = active
                        .iter()
                        .filter(|a| a.provider == provider && a.action.kind() == Some(kind))
                        .count();
                    gauge!("ee_shaping_active", "provider" => provider.to_owned(), "action" => kind.as_str())
                        .set(n as f64);
                }
            }
            for (provider, ip, n) in deferred {
                counter!("ee_deferred_total", "provider" => provider.clone(), "ip_id" => ip.clone())
                    .absolute((*n).max(0) as u64);
            }
        });
    }

    pub fn set_delivery(&self, totals: &[(String, String, i64)]) {
        self.with(|| {
            for (tenant, name, n) in totals {
                let n = (*n).max(0) as u64;
                let tenant = tenant.clone();
                let counter = match name.as_str() {
                    "sent" => counter!("ee_sent_total", "tenant" => tenant),
                    "delivered" => counter!("ee_delivered_total", "tenant" => tenant),
                    "complained" => counter!("ee_complained_total", "tenant" => tenant),
                    "unsubscribed" => counter!("ee_unsubscribed_total", "tenant" => tenant),
                    "bounced_hard" | "bounced_soft" | "bounced_block" | "bounced_other" => {
                        let class = name.trim_start_matches("bounced_").to_owned();
                        counter!("ee_bounced_total", "tenant" => tenant, "class" => class)
                    }
                    "opened" => {
                        counter!("ee_opened_total", "tenant" => tenant, "machine" => "false")
                    }
                    "opened_machine" => {
                        counter!("ee_opened_total", "tenant" => tenant, "machine" => "true")
                    }
                    "clicked" => {
                        counter!("ee_clicked_total", "tenant" => tenant, "machine" => "false")
                    }
                    "clicked_machine" => {
                        counter!("ee_clicked_total", "tenant" => tenant, "machine" => "true")
                    }
                    _ => continue,
                };
                counter.absolute(n);
            }
        });
    }

    /// What feedback strangers sent is kept for a look, capped (oldest dropped first):
    /// `ee_feedback_unmatched_kept{kind="event"|"mail"}` and
    /// `ee_feedback_unmatched_kept_bytes` (the unreadable mail's kept text).
    pub fn set_feedback_kept(&self, events: i64, mail: i64, mail_bytes: i64) {
        self.with(|| {
            gauge!("ee_feedback_unmatched_kept", "kind" => "event").set(events as f64);
            gauge!("ee_feedback_unmatched_kept", "kind" => "mail").set(mail as f64);
            gauge!("ee_feedback_unmatched_kept_bytes").set(mail_bytes as f64);
        });
    }

    pub fn render(&self) -> String {
        self.handle.run_upkeep();
        self.handle.render()
    }
}

/// The method as a label: the standard ones by name, anything else as `other`, so a
/// client inventing methods cannot create series.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Counts each request and observes its latency, labelled by the matched route
/// (not the raw path, which would explode the label set).
pub async fn track(State(metrics): State<Metrics>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let elapsed = started.elapsed().as_secs_f64();
    metrics.with(|| {
        counter!("http_requests_total", "method" => method, "route" => route.clone(), "status" => status)
            .increment(1);
        histogram!("http_request_duration_seconds", "method" => method, "route" => route).record(elapsed);
    });
    response
}
