//! Reporting progress to an Asya gateway, as Asya's sidecar does (`ASYA_GATEWAY_URL`).
//!
//! Asya's sidecar posts `received`, `processing` and `completed` for each envelope to
//! `POST {gateway}/envelopes/{id}/progress` (`actors`, `current_actor_idx`, `status`,
//! `message`), and registers each fan-out child with `POST {gateway}/envelopes`
//! (`id`, `parent_id`, `actors`, `current`) before it is routed. These are the same
//! requests, with the same quirk kept: `completed` carries the route as the results
//! leave the actor (its `current` already advanced), so the gateway's percentages read
//! as they do under Asya's sidecar.
//!
//! Asya's sidecar posts inline, and a slow gateway slows its messages; here the hop
//! only queues the report (bounded, [`QUEUE`]) and one task sends them in order,
//! retrying a failed post a few times. A full queue drops the report and counts it
//! (`wasya_gateway_reports_total{result="dropped"}`): progress is advisory, the
//! envelope is not.

use super::{EndStatus, ProgressEvent, ProgressReporter, Reporter, Stage};
use crate::envelope::Envelope;
use crate::metrics::metrics;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Reports waiting to be sent, at most.
const QUEUE: usize = 4096;
/// Tries per report, the pause between them, and the time each may take (Asya's
/// sidecar: 5 tries, 200 ms apart, 5 s each).
const TRIES: usize = 5;
const PAUSE: Duration = Duration::from_millis(200);
const TIMEOUT: Duration = Duration::from_secs(5);

/// One request to the gateway.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub path: String,
    pub body: Value,
}

/// The requests Asya's sidecar would make for one event.
pub fn reports_of(event: &ProgressEvent) -> Vec<Report> {
    let progress = |actors: &[String], index: usize, status: &str, message: String| Report {
        path: format!("/envelopes/{}/progress", event.hop.envelope_id),
        body: json!({
            "actors": actors,
            "current_actor_idx": index,
            "status": status,
            "message": message,
        }),
    };
    match event.stage {
        Stage::Received => vec![progress(
            &event.hop.route,
            event.hop.index,
            "received",
            format!("Received message in {}", event.hop.actor),
        )],
        Stage::Processing => vec![progress(
            &event.hop.route,
            event.hop.index,
            "processing",
            format!("Processing in {}", event.hop.actor),
        )],
        // Asya's sidecar reports no progress for a failed call: its error-end does.
        Stage::Failed => Vec::new(),
        Stage::Completed => {
            let mut reports: Vec<Report> = event
                .children
                .iter()
                .filter(|child| **child != event.hop.envelope_id)
                .map(|child| Report {
                    path: "/envelopes".to_owned(),
                    body: json!({
                        "id": child,
                        "parent_id": event.hop.envelope_id,
                        "actors": event.hop.route,
                        "current": event.hop.index + 1,
                    }),
                })
                .collect();
            reports.push(progress(
                &event.hop.route,
                event.hop.index + 1,
                "completed",
                format!("Completed processing in {}", event.hop.actor),
            ));
            reports
        }
    }
}

/// The request Asya's end-actor sidecar makes when an envelope ends
/// (`POST /envelopes/{id}/final`): the result for happy-end; for error-end the error,
/// its details and where in the route it happened.
pub fn final_report(envelope: &Envelope, end: EndStatus, result: &Value) -> Report {
    let mut body = json!({
        "id": envelope.id,
        "status": end.as_str(),
        "timestamp": humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
    });
    match end {
        EndStatus::Succeeded => {
            body["progress"] = json!(1.0);
            if !result.is_null() {
                body["result"] = result.clone();
            }
        }
        EndStatus::Failed => {
            if let Some(error) = envelope.payload.get("error").and_then(Value::as_str) {
                body["error"] = json!(error);
            }
            if let Some(details) = envelope.payload.get("details") {
                body["error_details"] = details.clone();
            }
            if !envelope.route.actors.is_empty() {
                body["actors"] = json!(envelope.route.actors);
                body["current_actor_idx"] = json!(envelope.route.current);
                if let Some(actor) = envelope.route.current_actor() {
                    body["current_actor_name"] = json!(actor);
                }
            }
        }
    }
    Report {
        path: format!("/envelopes/{}/final", envelope.id),
        body,
    }
}

/// A reporter that posts to an Asya gateway in the background.
pub struct AsyaGateway {
    queue: mpsc::Sender<Report>,
    /// The task that posts them, flushed at stop.
    sender: crate::background::Flushed,
}

impl AsyaGateway {
    /// Starts the task that posts to the gateway at `url` (`http://…`); on the current
    /// tokio runtime.
    pub fn start(url: &str) -> Reporter {
        let (queue, reports) = mpsc::channel(QUEUE);
        let base = url.trim_end_matches('/').to_owned();
        let sender = crate::background::Flushed::spawn(|finish| send_all(base, reports, finish));
        tracing::info!(gateway = url, "progress is reported to an Asya gateway");
        Reporter(Arc::new(AsyaGateway { queue, sender }))
    }
}

impl AsyaGateway {
    fn queue(&self, report: Report) {
        if self.queue.try_send(report).is_err() {
            metrics()
                .gateway_reports
                .with_label_values(&["dropped"])
                .inc();
        }
    }
}

impl ProgressReporter for AsyaGateway {
    fn report(&self, event: &ProgressEvent) {
        for report in reports_of(event) {
            self.queue(report);
        }
    }

    fn ended(&self, envelope: &Envelope, end: EndStatus, result: &Value) {
        self.queue(final_report(envelope, end, result));
    }

    fn flush(&self, within: Duration) -> futures::future::BoxFuture<'_, ()> {
        Box::pin(async move {
            if !self.sender.flush(within).await {
                tracing::warn!(
                    "progress reports still queued for the gateway after {within:?} were not sent"
                );
            }
        })
    }
}

/// Posts the reports in order until `finish`, then what is still queued, then ends.
async fn send_all(
    base: String,
    mut reports: mpsc::Receiver<Report>,
    finish: tokio_util::sync::CancellationToken,
) {
    let client = match reqwest::Client::builder().timeout(TIMEOUT).build() {
        Ok(client) => client,
        Err(error) => {
            tracing::warn!(%error, "cannot build the gateway's HTTP client; progress is not reported");
            return;
        }
    };
    loop {
        let report = tokio::select! {
            biased;
            report = reports.recv() => report,
            _ = finish.cancelled() => reports.try_recv().ok(),
        };
        let Some(report) = report else {
            return;
        };
        let url = format!("{base}{}", report.path);
        let mut last_error = String::new();
        let mut sent = false;
        for attempt in 0..TRIES {
            if attempt > 0 {
                tokio::time::sleep(PAUSE).await;
            }
            match client.post(&url).json(&report.body).send().await {
                Ok(response) if response.status().is_success() => {
                    sent = true;
                    break;
                }
                Ok(response) => last_error = format!("answered {}", response.status()),
                Err(error) => last_error = crate::error_chain::chain(&error).to_string(),
            }
        }
        let result = if sent { "sent" } else { "failed" };
        metrics().gateway_reports.with_label_values(&[result]).inc();
        if !sent {
            tracing::warn!(
                url,
                error = last_error,
                "a progress report did not reach the gateway"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::event::{At, Hop};

    fn event(stage: Stage, children: &[&str]) -> ProgressEvent {
        let hop = Hop {
            envelope_id: "e".into(),
            branch: String::new(),
            actor: "a".into(),
            index: 0,
            route: vec!["a".into(), "b".into()],
        };
        let mut event = ProgressEvent::new(Arc::new(hop), stage, At::now());
        event.children = children.iter().map(|child| (*child).to_owned()).collect();
        event
    }

    #[test]
    fn a_hop_is_reported_as_asyas_sidecar_reports_it() {
        let received = reports_of(&event(Stage::Received, &[]));
        assert_eq!(received.len(), 1);
        assert_eq!(received[0].path, "/envelopes/e/progress");
        assert_eq!(received[0].body["status"], "received");
        assert_eq!(received[0].body["current_actor_idx"], 0);
        assert_eq!(received[0].body["actors"], json!(["a", "b"]));
        let completed = reports_of(&event(Stage::Completed, &[]));
        assert_eq!(completed[0].body["status"], "completed");
        assert_eq!(completed[0].body["current_actor_idx"], 1);
        assert!(reports_of(&event(Stage::Failed, &[])).is_empty());
    }

    #[test]
    fn an_end_is_reported_as_asyas_end_actor_reports_it() {
        let mut envelope = Envelope {
            id: "e".into(),
            parent_id: None,
            route: crate::envelope::Route {
                actors: vec!["a".into(), "b".into()],
                current: 2,
                metadata: None,
            },
            headers: Default::default(),
            payload: json!({"n": 1}),
        };
        let done = final_report(&envelope, EndStatus::Succeeded, &json!({"n": 1}));
        assert_eq!(done.path, "/envelopes/e/final");
        assert_eq!(done.body["status"], "succeeded");
        assert_eq!(done.body["progress"], 1.0);
        assert_eq!(done.body["result"], json!({"n": 1}));
        assert!(done.body["timestamp"].as_str().unwrap().ends_with('Z'));
        envelope.route.current = 1;
        envelope.payload = json!({"error": "processing_error", "details": {"message": "bad"}});
        let failed = final_report(&envelope, EndStatus::Failed, &Value::Null);
        assert_eq!(failed.body["status"], "failed");
        assert_eq!(failed.body["error"], "processing_error");
        assert_eq!(failed.body["error_details"], json!({"message": "bad"}));
        assert_eq!(failed.body["current_actor_idx"], 1);
        assert_eq!(failed.body["current_actor_name"], "b");
        assert!(failed.body.get("result").is_none());
    }

    #[test]
    fn fan_out_children_are_registered_before_the_completion() {
        let reports = reports_of(&event(Stage::Completed, &["e", "e-1", "e-2"]));
        let paths: Vec<&str> = reports.iter().map(|report| report.path.as_str()).collect();
        assert_eq!(
            paths,
            vec!["/envelopes", "/envelopes", "/envelopes/e/progress"]
        );
        assert_eq!(
            reports[0].body,
            json!({"id": "e-1", "parent_id": "e", "actors": ["a", "b"], "current": 1})
        );
    }
}
