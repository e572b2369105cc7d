//! `notify` steps: POST a rendered JSON body to a webhook whose URL (and bearer token) are
//! read from Secrets in the run's namespace, with the step's identity (impersonation
//! applies), so a plan never holds a credential.
//!
//! Connection errors, 408, 429 and 5xx are retried with capped exponential backoff and
//! jitter (backon). Each request carries `X-Lifeboat-Delivery: <run>/<step>/<attempt>`, the
//! same for every retry of one delivery, so a receiver can drop a duplicate sent after a
//! controller restart. A notification that cannot be delivered is recorded (step message,
//! Event, `lifeboat_notifications{outcome="Failed"}`) and fails the run only when the step
//! says `required: true`. Only the URL's host is ever shown: webhook URLs are credentials.

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use lifeboat_api::SecretKeyRef;
use lifeboat_engine::NotifyAction;

use super::{StepFailure, StepInput, StepOutput};
use crate::api_errors::with_api_retries;
use crate::telemetry::Metrics;

/// Attempts per delivery (the first and its retries).
const MAX_ATTEMPTS: usize = 5;
/// Longest a single request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn execute(
    input: &StepInput<'_>,
    action: &NotifyAction,
) -> Result<StepOutput, StepFailure> {
    let body = input.render_json("the notification body", &action.body)?;
    let rendered = Some(body.clone());
    if input.dry_run {
        return Ok(StepOutput {
            message: format!(
                "dry run: the notification was not sent (its URL is in Secret {})",
                action.url_from.name
            ),
            rendered,
            ..Default::default()
        });
    }
    let delivery = format!(
        "{}/{}/{}",
        input.run_name(),
        input.index,
        input.run_attempt()
    );
    let d = deliver(
        &input.client,
        &input.run_namespace(),
        action,
        &body,
        &delivery,
        &input.ctx.metrics,
    )
    .await;
    match d.delivered {
        true => Ok(StepOutput {
            message: d.message,
            rendered,
            ..Default::default()
        }),
        false if action.required => Err(StepFailure::permanent(d.message).with_rendered(rendered)),
        false => Ok(StepOutput {
            message: format!("{}; the run goes on (the step is not required)", d.message),
            rendered,
            ..Default::default()
        }),
    }
}

/// How one notification went: delivered or not, and what to record.
pub struct Delivery {
    pub delivered: bool,
    pub attempts: u32,
    /// What happened, naming the URL's host only.
    pub message: String,
}

/// Sends `body` to the webhook of `action` (its Secrets read in `namespace` with `client`),
/// retrying transient failures; `delivery` identifies it across retries. Counts the outcome
/// in `lifeboat_notifications`.
pub async fn deliver(
    client: &kube::Client,
    namespace: &str,
    action: &NotifyAction,
    body: &serde_json::Value,
    delivery: &str,
    metrics: &Metrics,
) -> Delivery {
    let d = send(client, namespace, action, body, delivery).await;
    metrics.notification(if d.delivered { "Delivered" } else { "Failed" });
    d
}

async fn send(
    client: &kube::Client,
    namespace: &str,
    action: &NotifyAction,
    body: &serde_json::Value,
    delivery: &str,
) -> Delivery {
    let not_sent = |message: String| Delivery {
        delivered: false,
        attempts: 0,
        message: format!("notification not sent: {message}"),
    };
    let url = match secret_value(client, namespace, &action.url_from).await {
        Ok(u) => u,
        Err(e) => return not_sent(e),
    };
    let url = match reqwest::Url::parse(url.trim()) {
        Ok(u) => u,
        Err(e) => {
            return not_sent(format!(
                "Secret {} key {} does not hold a URL: {e}",
                action.url_from.name, action.url_from.key
            ));
        }
    };
    let token = match &action.token_from {
        Some(t) => match secret_value(client, namespace, t).await {
            Ok(t) => Some(t),
            Err(e) => return not_sent(e),
        },
        None => None,
    };
    let host = url.host_str().unwrap_or("?").to_string();
    // One client (and connection pool) for every attempt of the delivery.
    let client = match reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build() {
        Ok(c) => c,
        Err(e) => return not_sent(format!("cannot build an HTTP client: {e}")),
    };
    let mut attempts = 0u32;
    let attempt = || {
        attempts += 1;
        post(&client, &url, token.as_deref(), delivery, body)
    };
    let result = attempt
        .retry(
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(200))
                .with_max_delay(Duration::from_secs(5))
                .with_max_times(MAX_ATTEMPTS - 1)
                .with_jitter(),
        )
        .when(|e: &Undelivered| e.transient)
        .await;
    match result {
        Ok(code) => Delivery {
            delivered: true,
            attempts,
            message: format!(
                "notification delivered to {host} (HTTP {code}) after {attempts} attempt(s)"
            ),
        },
        Err(e) => Delivery {
            delivered: false,
            attempts,
            message: format!(
                "notification to {host} not delivered after {attempts} attempt(s): {}",
                e.message
            ),
        },
    }
}

/// Why one request did not deliver, and whether trying again may.
#[derive(Debug)]
struct Undelivered {
    message: String,
    transient: bool,
}

async fn post(
    client: &reqwest::Client,
    url: &reqwest::Url,
    token: Option<&str>,
    delivery: &str,
    body: &serde_json::Value,
) -> Result<u16, Undelivered> {
    let mut req = client
        .post(url.clone())
        .header("X-Lifeboat-Delivery", delivery)
        .json(body);
    if let Some(t) = token {
        req = req.bearer_auth(t.trim());
    }
    let resp = req.send().await.map_err(|e| Undelivered {
        // Without the URL: it is a credential.
        message: e.without_url().to_string(),
        transient: true,
    })?;
    let status = resp.status();
    if status.is_success() {
        return Ok(status.as_u16());
    }
    Err(Undelivered {
        message: format!("HTTP {status}"),
        transient: status.is_server_error()
            || status == reqwest::StatusCode::TOO_MANY_REQUESTS
            || status == reqwest::StatusCode::REQUEST_TIMEOUT,
    })
}

/// The value of `r` in `namespace`, read as `client`'s identity.
async fn secret_value(
    client: &kube::Client,
    namespace: &str,
    r: &SecretKeyRef,
) -> Result<String, String> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret = with_api_retries(|| api.get(&r.name))
        .await
        .map_err(|e| format!("cannot read Secret {namespace}/{}: {e}", r.name))?;
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(&r.key))
        .map(|b| b.0.clone())
        .or_else(|| {
            secret
                .string_data
                .as_ref()
                .and_then(|d| d.get(&r.key))
                .map(|s| s.clone().into_bytes())
        })
        .ok_or_else(|| format!("Secret {namespace}/{} has no key {}", r.name, r.key))?;
    String::from_utf8(bytes).map_err(|_| {
        format!(
            "Secret {namespace}/{} key {} is not UTF-8 text",
            r.name, r.key
        )
    })
}
