//! The process's operational metrics, rendered for Prometheus by `GET /metrics`.
//!
//! One set per process ([`metrics`]), written by whichever crate sees the event: the server
//! (requests), the core (gate decisions, consent changes, scans, checkpoints), the store
//! (commit batches, audit appends). Counting is an atomic add; rendering takes a snapshot.
//!
//! What a label may hold, and nothing else: an HTTP method and status, a route's *template*
//! (`/v1/subjects/{subject_id}/records/{collection}`, never the path itself), an action name
//! or a scanner entity fixed in code, a decision, a storage backend, and a purpose that the
//! caller checked against the registry (anything else is `(other)`). Every label type below is
//! `&'static str` except the route, the purpose and the entity, built only by [`route_label`],
//! [`Purpose`] and the scanner's own entity names: a subject id, a value, a key or a principal cannot reach a label, so no scrape
//! can reveal one, and a caller cannot grow the series without bound.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The content type of [`render`]'s text (OpenMetrics, which Prometheus reads natively).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A purpose name fit for a label: one the registry declares, or `other`.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct Purpose(String);

impl Purpose {
    /// `name` if `declared` says the registry has it (the caller's check), else `(other)`;
    /// `(none)` for no purpose. The parentheses keep both apart from any registry name.
    #[must_use]
    pub fn checked(name: Option<&str>, declared: impl Fn(&str) -> bool) -> Self {
        match name {
            None => Self("(none)".to_owned()),
            Some(n) if declared(n) => Self(n.to_owned()),
            Some(_) => Self("(other)".to_owned()),
        }
    }
}

impl prometheus_client::encoding::EncodeLabelValue for Purpose {
    fn encode(&self, encoder: &mut prometheus_client::encoding::LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        self.0.as_str().encode(encoder)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: String,
}

/// An access decision as the metrics count it, made with its audit entry and counted when
/// that entry is written (a decision built but never logged, say an `allow` prepared
/// before a check that then refuses, is not counted).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Decision {
    action: &'static str,
    purpose: Purpose,
    decision: &'static str,
}

impl Decision {
    /// `action` is a name fixed in code; `purpose` checked against the registry.
    #[must_use]
    pub fn new(action: &'static str, purpose: Purpose, allowed: bool) -> Self {
        Self {
            action,
            purpose,
            decision: if allowed { "allow" } else { "deny" },
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConsentLabels {
    kind: &'static str,
    purpose: Purpose,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BackendLabels {
    backend: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EntityLabels {
    /// An entity type of the scanner's configuration (built in or declared at start), which
    /// is all a finding can name: never text from a request.
    entity: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Every family, registered once.
struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_seconds: HistogramFamily<RouteLabels>,
    decisions: Family<Decision, Counter>,
    consent_changes: Family<ConsentLabels, Counter>,
    audit_appends: Counter,
    checkpoint_age: Gauge<f64, AtomicU64>,
    /// When the log was last seen covered by a signed checkpoint, ms since the epoch (0: never).
    last_checkpoint_ms: AtomicI64,
    batch_ops: HistogramFamily<BackendLabels>,
    batch_seconds: HistogramFamily<BackendLabels>,
    scanned_bytes: Counter,
    findings: Family<EntityLabels, Counter>,
    /// One rendering at a time: each sets the checkpoint age for its own `now` first.
    rendering: std::sync::Mutex<()>,
}

/// Seconds, from 0.25 ms to about 8 s.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

/// Writes per batch: 1 to 512.
fn batch_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 10))
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let mut registry = Registry::with_prefix("custodia");
    let requests = Family::default();
    registry.register(
        "http_requests",
        "HTTP requests answered, by method, route template and status",
        Family::clone(&requests),
    );
    let request_seconds: HistogramFamily<RouteLabels> = Family::new_with_constructor(latency_histogram);
    registry.register(
        "http_request_duration_seconds",
        "Time to answer an HTTP request, by method and route template",
        Family::clone(&request_seconds),
    );
    let decisions = Family::default();
    registry.register(
        "gate_decisions",
        "Access decisions written to the audit log, by action, purpose and decision (allow or deny)",
        Family::clone(&decisions),
    );
    let consent_changes = Family::default();
    registry.register(
        "consent_changes",
        "Consent ledger entries appended, by kind (consent, objection, sale_opt_out, ...), purpose and state (on: given or raised; off: withdrawn)",
        Family::clone(&consent_changes),
    );
    let audit_appends = Counter::default();
    registry.register(
        "audit_appends",
        "Audit log entries written (inside their transaction)",
        audit_appends.clone(),
    );
    let checkpoint_age = Gauge::<f64, AtomicU64>::default();
    registry.register(
        "audit_checkpoint_age_seconds",
        "Seconds since every audit entry was last covered by a signed checkpoint (checked every second; NaN before the first check): growing means entries stay unsigned",
        checkpoint_age.clone(),
    );
    let batch_ops: HistogramFamily<BackendLabels> = Family::new_with_constructor(batch_histogram);
    registry.register(
        "store_commit_batch_size",
        "Writes committed together in one transaction (group commit), by backend",
        Family::clone(&batch_ops),
    );
    let batch_seconds: HistogramFamily<BackendLabels> = Family::new_with_constructor(latency_histogram);
    registry.register(
        "store_commit_duration_seconds",
        "Time to run and commit one batch of writes, by backend",
        Family::clone(&batch_seconds),
    );
    let scanned_bytes = Counter::default();
    registry.register(
        "scanner_bytes",
        "Bytes of text scanned for personal data",
        scanned_bytes.clone(),
    );
    let findings = Family::default();
    registry.register(
        "scanner_findings",
        "Personal data found by the scanner, by entity",
        Family::clone(&findings),
    );
    Metrics {
        registry,
        requests,
        request_seconds,
        decisions,
        consent_changes,
        audit_appends,
        checkpoint_age,
        last_checkpoint_ms: AtomicI64::new(0),
        batch_ops,
        batch_seconds,
        scanned_bytes,
        findings,
        rendering: std::sync::Mutex::new(()),
    }
});

/// An HTTP method as a label: the standard ones by name, anything else `other`.
fn method_label(method: &str) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE",
    ];
    KNOWN.into_iter().find(|m| *m == method).unwrap_or("other")
}

/// A route as a label: the template the router matched (`None`: no route matched, whatever
/// the path was).
#[must_use]
pub fn route_label(template: Option<&str>) -> String {
    template.unwrap_or("(no route)").to_owned()
}

/// An answered HTTP request. A method the route does not serve (405) is counted under one
/// route label, `(method not allowed)`: otherwise anyone could make a series for every
/// method of every route.
pub fn http_request(method: &str, route: String, status: u16, seconds: f64) {
    let method = method_label(method);
    let route = if status == 405 {
        "(method not allowed)".to_owned()
    } else {
        route
    };
    // Each request: one label allocation (the route), read-locked lookups of existing series.
    let labels = RouteLabels { method, route };
    METRICS.request_seconds.get_or_create(&labels).observe(seconds);
    METRICS
        .requests
        .get_or_create(&RequestLabels {
            method,
            route: labels.route,
            status,
        })
        .inc();
}

/// Audit entries written: `n` of them, with the decisions among them.
pub fn audit_written<'a>(n: usize, decisions: impl IntoIterator<Item = &'a Decision>) {
    METRICS.audit_appends.inc_by(u64::try_from(n).unwrap_or(u64::MAX));
    for decision in decisions {
        METRICS.decisions.get_or_create(decision).inc();
    }
}

/// A consent ledger entry of `kind` (a name fixed in code) appended.
pub fn consent_change(kind: &'static str, purpose: Purpose, on: bool) {
    let state = if on { "on" } else { "off" };
    METRICS
        .consent_changes
        .get_or_create(&ConsentLabels { kind, purpose, state })
        .inc();
}

/// At `at_ms` (milliseconds since the epoch) every audit entry this process knows of was
/// covered by a signed checkpoint (one just signed, or nothing new to sign).
pub fn checkpoint_covered(at_ms: i64) {
    METRICS.last_checkpoint_ms.fetch_max(at_ms, Ordering::Relaxed);
}

/// A batch of `ops` writes committed (or rolled back) on `backend` in `seconds`.
pub fn commit_batch(backend: &'static str, ops: usize, seconds: f64) {
    let labels = BackendLabels { backend };
    METRICS.batch_ops.get_or_create(&labels).observe(ops as f64);
    METRICS.batch_seconds.get_or_create(&labels).observe(seconds);
}

/// `bytes` of text scanned, with a finding of each entity type in `findings`.
pub fn scanned<'a>(bytes: usize, findings: impl IntoIterator<Item = &'a str>) {
    METRICS.scanned_bytes.inc_by(u64::try_from(bytes).unwrap_or(u64::MAX));
    for entity in findings {
        METRICS
            .findings
            .get_or_create(&EntityLabels {
                entity: entity.to_owned(),
            })
            .inc();
    }
}

/// Every family in the text format, the checkpoint age computed for `now_ms`.
#[must_use]
pub fn render(now_ms: i64) -> String {
    // A poisoned lock only means another rendering panicked; the counters are intact.
    let _one_at_a_time = METRICS
        .rendering
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let last = METRICS.last_checkpoint_ms.load(Ordering::Relaxed);
    let age = if last > 0 {
        (now_ms.saturating_sub(last) as f64 / 1000.0).max(0.0)
    } else {
        f64::NAN
    };
    METRICS.checkpoint_age.set(age);
    let mut out = String::new();
    // Writing to a String cannot fail; an encoder error would leave a partial text, which
    // is still well-formed up to its last family.
    let _ = prometheus_client::encoding::text::encode(&mut out, &METRICS.registry);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_hold_only_what_they_may() {
        let declared = |p: &str| p == "order_fulfillment";
        assert_eq!(
            Purpose::checked(Some("order_fulfillment"), declared).0,
            "order_fulfillment"
        );
        assert_eq!(Purpose::checked(Some("alice@example.com"), declared).0, "(other)");
        assert_eq!(Purpose::checked(None, declared).0, "(none)");
        assert_eq!(method_label("GET"), "GET");
        assert_eq!(method_label("X-ALICE"), "other");
        assert_eq!(route_label(None), "(no route)");
    }

    #[test]
    fn every_family_renders() {
        http_request("GET", route_label(Some("/v1/health")), 200, 0.001);
        audit_written(
            3,
            &[Decision::new(
                "record.read",
                Purpose::checked(Some("p"), |_| true),
                true,
            )],
        );
        consent_change("consent", Purpose::checked(Some("p"), |_| true), false);
        commit_batch("sqlite", 4, 0.002);
        scanned(100, ["EMAIL_ADDRESS"]);
        let before = render(1_000);
        assert!(before.contains("custodia_audit_checkpoint_age_seconds NaN"), "{before}");
        checkpoint_covered(1_000);
        let text = render(3_500);
        for family in [
            "custodia_http_requests_total{method=\"GET\",route=\"/v1/health\",status=\"200\"}",
            "custodia_http_request_duration_seconds_bucket{le=",
            "custodia_gate_decisions_total{action=\"record.read\",purpose=\"p\",decision=\"allow\"}",
            "custodia_consent_changes_total{kind=\"consent\",purpose=\"p\",state=\"off\"}",
            "custodia_audit_appends_total",
            "custodia_audit_checkpoint_age_seconds 2.5",
            "custodia_store_commit_batch_size_bucket{le=",
            "custodia_store_commit_duration_seconds_count{backend=\"sqlite\"}",
            "custodia_scanner_bytes_total",
            "custodia_scanner_findings_total{entity=\"EMAIL_ADDRESS\"}",
        ] {
            assert!(text.contains(family), "{family} missing from:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }

    /// The Grafana dashboard in the repository queries only series that exist.
    #[test]
    fn the_dashboard_names_only_rendered_series() {
        http_request("GET", route_label(None), 404, 0.001);
        audit_written(1, &[Decision::new("x", Purpose::checked(None, |_| false), false)]);
        consent_change("consent", Purpose::checked(None, |_| false), true);
        commit_batch("sqlite", 1, 0.001);
        scanned(1, ["EMAIL_ADDRESS"]);
        let text = render(0);
        let dashboard = include_str!("../../../docs/grafana/custodia-dashboard.json");
        let mut names = 0;
        for (at, _) in dashboard.match_indices("custodia_") {
            let name: String = dashboard[at..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            names += 1;
            assert!(
                text.lines()
                    .any(|l| l.starts_with(&name) && l[name.len()..].starts_with(['{', ' '])),
                "the dashboard queries {name}, which is not rendered"
            );
        }
        assert!(names >= 10, "{names}");
    }
}
