//! Kubernetes API errors, in one place: what an error means ([`ErrorClass`]), the one retry
//! policy for transient failures (capped exponential backoff with jitter, a 429's
//! `Retry-After` honoured, through `backon`), and the low-cardinality category that
//! `lifeboat_api_errors_total` counts. The webhook, the controllers and the executor all
//! classify and retry through this module.

use std::future::Future;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};

/// Retries of a transient failure after the first try.
const RETRIES: usize = 4;
/// First delay between two tries; grows exponentially (with jitter) up to [`MAX_DELAY`].
const FIRST_DELAY: Duration = Duration::from_millis(50);
/// Longest delay between two tries.
const MAX_DELAY: Duration = Duration::from_secs(2);
/// Longest honoured `Retry-After`.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(5);

/// What an API error means for the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// May go away by itself (5xx, 429, 408, the server unreachable): retried.
    Transient,
    /// 409: the object already exists, or the write was based on a stale version; the
    /// caller adopts or re-reads, a blind retry does not help.
    Conflict,
    /// 404.
    NotFound,
    /// 401 or 403: the identity may not do this.
    Forbidden,
    /// 400 or 422: the request itself is wrong.
    Invalid,
    /// Any other client error.
    Other,
}

/// Classifies `e`.
pub fn classify(e: &kube::Error) -> ErrorClass {
    match e {
        kube::Error::Api(s) => match s.code {
            408 | 429 | 500..=599 => ErrorClass::Transient,
            409 => ErrorClass::Conflict,
            404 => ErrorClass::NotFound,
            401 | 403 => ErrorClass::Forbidden,
            400 | 422 => ErrorClass::Invalid,
            _ => ErrorClass::Other,
        },
        kube::Error::HyperError(_) | kube::Error::Service(_) => ErrorClass::Transient,
        _ => ErrorClass::Other,
    }
}

/// Whether `e` may go away by itself.
pub fn is_transient(e: &kube::Error) -> bool {
    classify(e) == ErrorClass::Transient
}

/// Whether `e` means the server could not be reached at all.
pub fn is_connection_error(e: &kube::Error) -> bool {
    matches!(e, kube::Error::HyperError(_) | kube::Error::Service(_))
}

/// Low-cardinality category of `e`, the `category` label of `lifeboat_api_errors_total`.
pub fn category(e: &kube::Error) -> &'static str {
    match e {
        kube::Error::Api(s) => match s.code {
            409 => "conflict",
            404 => "not_found",
            429 => "throttled",
            408 => "timeout",
            401 | 403 => "forbidden",
            400 | 422 => "invalid",
            c if c >= 500 => "server",
            _ => "client",
        },
        kube::Error::HyperError(_) | kube::Error::Service(_) => "network",
        _ => "other",
    }
}

/// The delay a 429 asks for (`retryAfterSeconds` of its Status), capped.
pub fn retry_after(e: &kube::Error) -> Option<Duration> {
    match e {
        kube::Error::Api(s) if s.code == 429 => s
            .details
            .as_ref()
            .map(|d| Duration::from_secs(u64::from(d.retry_after_seconds)))
            .filter(|d| !d.is_zero())
            .map(|d| d.min(MAX_RETRY_AFTER)),
        _ => None,
    }
}

/// The retry policy.
fn policy() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(FIRST_DELAY)
        .with_max_delay(MAX_DELAY)
        .with_max_times(RETRIES)
        .with_jitter()
}

/// Calls `f` until it succeeds, fails with an error `retryable` refuses, or the policy's
/// retries are spent. `api_error` finds the API error inside `E`, for `Retry-After`.
pub async fn retry<T, E, F, Fut>(
    f: F,
    retryable: impl FnMut(&E) -> bool,
    api_error: impl Fn(&E) -> Option<&kube::Error>,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    f.retry(policy())
        .when(retryable)
        .adjust(|e: &E, next| next.map(|d| api_error(e).and_then(retry_after).unwrap_or(d)))
        .notify(|e: &E, wait| tracing::debug!(error = %e, ?wait, "transient API error; retrying"))
        .await
}

/// Calls `f` until it succeeds, fails permanently, or the retries of transient failures
/// are spent.
pub async fn with_api_retries<T, F, Fut>(f: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    retry(f, is_transient, |e| Some(e)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16) -> kube::Error {
        kube::Error::Api(
            kube::core::Status::failure("x", "y")
                .with_code(code)
                .boxed(),
        )
    }

    #[test]
    fn transient_errors_are_5xx_429_408_and_connection_errors() {
        for code in [408, 429, 500, 503, 504] {
            assert!(is_transient(&api(code)), "{code}");
        }
        for code in [400, 403, 404, 409, 422] {
            assert!(!is_transient(&api(code)), "{code}");
        }
        assert_eq!(classify(&api(409)), ErrorClass::Conflict);
        assert_eq!(classify(&api(403)), ErrorClass::Forbidden);
        assert_eq!(category(&api(503)), "server");
        assert_eq!(category(&api(408)), "timeout");
    }

    #[tokio::test]
    async fn api_retries_stop_on_permanent_errors_and_retry_transient_ones() {
        let mut calls = 0;
        let r: Result<(), _> = with_api_retries(|| {
            calls += 1;
            async { Err(api(403)) }
        })
        .await;
        assert!(r.is_err());
        assert_eq!(calls, 1, "a permanent error is not retried");

        let mut calls = 0;
        let r = with_api_retries(|| {
            calls += 1;
            let n = calls;
            async move { if n < 3 { Err(api(503)) } else { Ok(n) } }
        })
        .await;
        assert_eq!(r.unwrap(), 3, "transient errors are retried until success");

        let mut calls = 0;
        let r: Result<(), _> = with_api_retries(|| {
            calls += 1;
            async { Err(api(500)) }
        })
        .await;
        assert!(r.is_err());
        assert_eq!(calls, RETRIES + 1, "retries are bounded");
    }
}
