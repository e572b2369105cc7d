//! The plan's notifications on run events (`spec.notifications`): sent in the background so
//! a slow or broken webhook never delays or fails the run, and recorded in
//! `status.notifications` once the run has finished (the deliveries still in flight are
//! awaited then). A controller that restarts mid-run does not send an event's notification
//! twice, but loses the record of deliveries it had in flight.

use std::sync::Arc;

use lifeboat_api::{NotificationRecord, RunEvent, RunPhase};
use lifeboat_engine::ValidatedNotification;
use tokio::task::JoinHandle;

use super::{Execution, RunError};
use crate::executor::{notify, template_context};

/// The notifications of one execution, and their deliveries in flight.
#[derive(Default)]
pub(super) struct Notifier {
    pub(super) targets: Arc<Vec<ValidatedNotification>>,
    in_flight: Vec<JoinHandle<NotificationRecord>>,
}

impl Execution<'_> {
    /// Whether any of the plan's notifications is sent on `event`.
    pub(super) fn notifies(&self, event: RunEvent) -> bool {
        self.notifier
            .targets
            .iter()
            .any(|n| n.events.contains(&event))
    }

    /// Starts delivering the notifications that `event` sends.
    pub(super) async fn notify(&mut self, event: RunEvent) {
        let targets = self.notifier.targets.clone();
        let wanted: Vec<(usize, &ValidatedNotification)> = targets
            .iter()
            .enumerate()
            .filter(|(_, n)| n.events.contains(&event))
            .collect();
        if wanted.is_empty() {
            return;
        }
        let namespace = self.run.metadata.namespace.clone().unwrap_or_default();
        let sa = self.run.spec.service_account_name.clone();
        let client = self
            .ctx
            .clusters
            .client_for(None, sa.as_deref().map(|sa| (namespace.as_str(), sa)))
            .await;
        let values = self.values();
        for (index, n) in wanted {
            let record =
                move |delivered: bool, attempts: u32, message: String| NotificationRecord {
                    event,
                    index: u32::try_from(index).unwrap_or(u32::MAX),
                    delivered,
                    attempts,
                    message,
                    time: None,
                };
            let body = match n.send.body.render(&template_context(&self.run, &values)) {
                Ok(b) => b,
                Err(e) => {
                    let r = record(false, 0, format!("cannot render the body: {e}"));
                    self.notifier.in_flight.push(tokio::spawn(async move { r }));
                    continue;
                }
            };
            let client = match &client {
                Ok(c) => c.clone(),
                Err(e) => {
                    let r = record(false, 0, format!("no client to read its Secret: {e}"));
                    self.notifier.in_flight.push(tokio::spawn(async move { r }));
                    continue;
                }
            };
            let delivery = format!(
                "{}/{}/{}",
                self.name(),
                event.as_str(),
                self.run.status.as_ref().map_or(1, |s| s.attempt())
            );
            let send = n.send.clone();
            let metrics = self.ctx.metrics.clone();
            let clock = self.ctx.clock.clone();
            let namespace = namespace.clone();
            self.notifier.in_flight.push(tokio::spawn(async move {
                let d =
                    notify::deliver(&client, &namespace, &send, &body, &delivery, &metrics).await;
                NotificationRecord {
                    time: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                        clock.now(),
                    )),
                    ..record(d.delivered, d.attempts, d.message)
                }
            }));
        }
    }

    /// Once the run has finished: sends the notifications of its outcome, waits for every
    /// delivery, and records them.
    pub(super) async fn notify_finished(&mut self) -> Result<(), RunError> {
        let phase = self.run.status.as_ref().map(|s| s.phase);
        let event = match phase {
            Some(RunPhase::Completed) => Some(RunEvent::Completed),
            Some(RunPhase::Failed) => Some(RunEvent::Failed),
            Some(RunPhase::Aborted) => Some(RunEvent::Aborted),
            Some(RunPhase::Cancelled) => Some(RunEvent::Cancelled),
            _ => None,
        };
        if let Some(event) = event {
            self.notify(event).await;
        }
        if self.notifier.in_flight.is_empty() {
            return Ok(());
        }
        let mut records = Vec::new();
        for h in std::mem::take(&mut self.notifier.in_flight) {
            if let Ok(r) = h.await {
                records.push(r);
            }
        }
        self.status().notifications.extend(records);
        self.write().await
    }
}
