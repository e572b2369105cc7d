//! Errors of the simulated API server, shaped exactly like kube-apiserver's `Status` bodies.

use serde_json::{Value, json};

/// The `reason` of a failed request, as kube-apiserver spells it (`metav1.StatusReason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// 400
    BadRequest,
    /// 401
    Unauthorized,
    /// 403
    Forbidden,
    /// 404
    NotFound,
    /// 405
    MethodNotAllowed,
    /// 406
    NotAcceptable,
    /// 409, object exists
    AlreadyExists,
    /// 409, stale resourceVersion
    Conflict,
    /// 410
    Expired,
    /// 415
    UnsupportedMediaType,
    /// 422
    Invalid,
    /// 429
    TooManyRequests,
    /// 500
    InternalError,
    /// 503
    ServiceUnavailable,
}

impl Reason {
    /// The `reason` string of the `Status` body.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::BadRequest => "BadRequest",
            Reason::Unauthorized => "Unauthorized",
            Reason::Forbidden => "Forbidden",
            Reason::NotFound => "NotFound",
            Reason::MethodNotAllowed => "MethodNotAllowed",
            Reason::NotAcceptable => "NotAcceptable",
            Reason::AlreadyExists => "AlreadyExists",
            Reason::Conflict => "Conflict",
            Reason::Expired => "Expired",
            Reason::UnsupportedMediaType => "UnsupportedMediaType",
            Reason::Invalid => "Invalid",
            Reason::TooManyRequests => "TooManyRequests",
            Reason::InternalError => "InternalError",
            Reason::ServiceUnavailable => "ServiceUnavailable",
        }
    }

    /// The HTTP status code kube-apiserver answers with for this reason.
    pub fn code(self) -> u16 {
        match self {
            Reason::BadRequest => 400,
            Reason::Unauthorized => 401,
            Reason::Forbidden => 403,
            Reason::NotFound => 404,
            Reason::MethodNotAllowed => 405,
            Reason::NotAcceptable => 406,
            Reason::AlreadyExists | Reason::Conflict => 409,
            Reason::Expired => 410,
            Reason::UnsupportedMediaType => 415,
            Reason::Invalid => 422,
            Reason::TooManyRequests => 429,
            Reason::InternalError => 500,
            Reason::ServiceUnavailable => 503,
        }
    }
}

/// One entry of `details.causes` (a field-level validation failure).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cause {
    /// `FieldValueRequired`, `FieldValueInvalid`, …
    pub reason: String,
    /// Human-readable message without the field path.
    pub message: String,
    /// The field path, e.g. `spec.steps[0].type`.
    pub field: String,
}

/// A failed API request: everything needed to render the `Status` body.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{} ({}): {message}", reason.as_str(), reason.code())]
pub struct SimError {
    /// Why it failed.
    pub reason: Reason,
    /// The `message` of the `Status`.
    pub message: String,
    /// `details` of the `Status`, and response overrides.
    pub details: Box<Details>,
}

/// The `details` of a `Status`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Details {
    /// `details.name`
    pub name: Option<String>,
    /// `details.group`
    pub group: Option<String>,
    /// `details.kind` (kube-apiserver puts the resource here for most errors)
    pub kind: Option<String>,
    /// `details.causes`
    pub causes: Vec<Cause>,
    /// `details.retryAfterSeconds` (and the `Retry-After` header)
    pub retry_after: Option<u64>,
    /// HTTP status override (500 vs 503 for injected faults, 413).
    pub code_override: Option<u16>,
}

impl SimError {
    /// An error with a reason and message only.
    pub fn new(reason: Reason, message: impl Into<String>) -> SimError {
        SimError {
            reason,
            message: message.into(),
            details: Box::default(),
        }
    }

    /// Attach `details.{name,group,kind}`.
    pub fn with_details(mut self, name: &str, group: &str, kind: &str) -> SimError {
        if !name.is_empty() {
            self.details.name = Some(name.to_string());
        }
        self.details.group = Some(group.to_string());
        self.details.kind = Some(kind.to_string());
        self
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> SimError {
        SimError::new(Reason::BadRequest, message)
    }

    /// 404 NotFound for `resource "name"` (resource is plural, with `.group` when not core).
    pub fn not_found(group: &str, resource: &str, name: &str) -> SimError {
        SimError::new(
            Reason::NotFound,
            format!("{} \"{name}\" not found", qualified(group, resource)),
        )
        .with_details(name, group, resource)
    }

    /// 409 AlreadyExists.
    pub fn already_exists(group: &str, resource: &str, name: &str) -> SimError {
        SimError::new(
            Reason::AlreadyExists,
            format!("{} \"{name}\" already exists", qualified(group, resource)),
        )
        .with_details(name, group, resource)
    }

    /// 409 Conflict on a stale resourceVersion.
    pub fn conflict(group: &str, resource: &str, name: &str) -> SimError {
        SimError::new(
            Reason::Conflict,
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                qualified(group, resource)
            ),
        )
        .with_details(name, group, resource)
    }

    /// 422 Invalid with field causes; `kind` is the object kind (e.g. `ConfigMap`).
    pub fn invalid(group: &str, kind: &str, name: &str, causes: Vec<Cause>) -> SimError {
        let qualified_kind = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        let text: Vec<String> = causes
            .iter()
            .map(|c| {
                if c.field.is_empty() {
                    c.message.clone()
                } else {
                    format!("{}: {}", c.field, c.message)
                }
            })
            .collect();
        let joined = if text.len() == 1 {
            text.join("")
        } else {
            format!("[{}]", text.join(", "))
        };
        let mut e = SimError::new(
            Reason::Invalid,
            format!("{qualified_kind} \"{name}\" is invalid: {joined}"),
        )
        .with_details(name, group, kind);
        e.details.causes = causes;
        e
    }

    /// 410 Expired.
    pub fn expired(message: impl Into<String>) -> SimError {
        SimError::new(Reason::Expired, message)
    }

    /// The HTTP status code of the response.
    pub fn code(&self) -> u16 {
        self.details
            .code_override
            .unwrap_or_else(|| self.reason.code())
    }

    /// The `Status` body.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason.as_str(),
            "code": self.code(),
        });
        let mut details = serde_json::Map::new();
        if let Some(n) = &self.details.name {
            details.insert("name".into(), Value::String(n.clone()));
        }
        if let Some(g) = &self.details.group {
            details.insert("group".into(), Value::String(g.clone()));
        }
        if let Some(k) = &self.details.kind {
            details.insert("kind".into(), Value::String(k.clone()));
        }
        if !self.details.causes.is_empty() {
            let causes: Vec<Value> = self
                .details
                .causes
                .iter()
                .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                .collect();
            details.insert("causes".into(), Value::Array(causes));
        }
        if let Some(r) = self.details.retry_after {
            details.insert("retryAfterSeconds".into(), json!(r));
        }
        if !details.is_empty() {
            status["details"] = Value::Object(details);
        }
        status
    }
}

/// `resource.group`, or `resource` for the core group.
pub fn qualified(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

/// A field cause.
pub fn cause(reason: &str, field: &str, message: impl Into<String>) -> Cause {
    Cause {
        reason: reason.to_string(),
        message: message.into(),
        field: field.to_string(),
    }
}
