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
    let url = secret_value(input, &action.url_from).await?;
    let url = reqwest::Url::parse(url.trim()).map_err(|e| {
        StepFailure::permanent(format!(
            "Secret {} key {} does not hold a URL: {e}",
            action.url_from.name, action.url_from.key
        ))
    })?;
    let token = match &action.token_from {
        Some(t) => Some(secret_value(input, t).await?),
        None => None,
    };
    let host = url.host_str().unwrap_or("?").to_string();
    let delivery = format!(
        "{}/{}/{}",
        input.run_name(),
        input.index,
        input.run_attempt()
    );

    let mut attempts = 0u32;
    let send = || {
        attempts += 1;
        post(&url, token.as_deref(), &delivery, &body)
    };
    let result = send
        .retry(
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(200))
                .with_max_delay(Duration::from_secs(5))
                .with_max_times(MAX_ATTEMPTS - 1)
                .with_jitter(),
        )
        .when(|e: &Undelivered| e.transient)
        .await;
    let metrics = &input.ctx.metrics;
    match result {
        Ok(code) => {
            metrics.notification("Delivered");
            Ok(StepOutput {
                message: format!(
                    "notification delivered to {host} (HTTP {code}) after {attempts} attempt(s)"
                ),
                rendered,
                ..Default::default()
            })
        }
        Err(e) => {
            metrics.notification("Failed");
            let why = format!(
                "notification to {host} not delivered after {attempts} attempt(s): {}",
                e.message
            );
            if action.required {
                Err(StepFailure::permanent(why).with_rendered(rendered))
            } else {
                Ok(StepOutput {
                    message: format!("{why}; the run goes on (the step is not required)"),
                    rendered,
                    ..Default::default()
                })
            }
        }
    }
}

/// Why one request did not deliver, and whether trying again may.
#[derive(Debug)]
struct Undelivered {
    message: String,
    transient: bool,
}

async fn post(
    url: &reqwest::Url,
    token: Option<&str>,
    delivery: &str,
    body: &serde_json::Value,
) -> Result<u16, Undelivered> {
    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(|e| Undelivered {
            message: format!("cannot build an HTTP client: {e}"),
            transient: false,
        })?;
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

/// The value of `r` in the run's namespace, read as the step's identity.
async fn secret_value(input: &StepInput<'_>, r: &SecretKeyRef) -> Result<String, StepFailure> {
    let ns = input.run_namespace();
    let api: Api<Secret> = Api::namespaced(input.client.clone(), &ns);
    let secret = with_api_retries(|| api.get(&r.name))
        .await
        .map_err(|e| input.api_failure(&format!("cannot read Secret {ns}/{}", r.name), &e))?;
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
        .ok_or_else(|| {
            StepFailure::permanent(format!("Secret {ns}/{} has no key {}", r.name, r.key))
        })?;
    String::from_utf8(bytes).map_err(|_| {
        StepFailure::permanent(format!(
            "Secret {ns}/{} key {} is not UTF-8 text",
            r.name, r.key
        ))
    })
}
