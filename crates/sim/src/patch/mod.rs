//! The patch engines of the simulator: RFC 6902 JSON Patch, RFC 7386 JSON merge patch,
//! Kubernetes strategic merge patch (built-in kinds only) and an approximation of
//! server-side apply.
//!
//! Everything here is pure: a patch request body and the current object in, the patched
//! object (or a typed error carrying the HTTP status the API server answers with) out.

mod apply;
mod json;
mod merge;
mod merge_keys;
mod strategic;

use serde_json::Value;

pub use apply::apply_server_side;
pub use json::apply_json_patch;
pub use merge::apply_merge_patch;
pub use merge_keys::{ListStrategy, MergeKeys};
pub use strategic::apply_strategic_merge_patch;

/// The patch types kube-apiserver understands, keyed by `Content-Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PatchKind {
    /// `application/json-patch+json` (RFC 6902).
    Json,
    /// `application/merge-patch+json` (RFC 7386).
    Merge,
    /// `application/strategic-merge-patch+json` (built-in kinds only).
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply; YAML or JSON body).
    Apply,
}

impl PatchKind {
    /// Media types of JSON Patch, merge patch, strategic merge patch and apply patch.
    pub const CONTENT_TYPES: [&'static str; 4] = [
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
        "application/apply-patch+yaml",
    ];

    /// The patch kind for a `Content-Type` header value (parameters such as
    /// `; charset=utf-8` are ignored), or `None` for any other media type (the server
    /// answers 415).
    pub fn from_content_type(ct: &str) -> Option<PatchKind> {
        let media = ct.split(';').next().unwrap_or_default().trim();
        match media.to_ascii_lowercase().as_str() {
            "application/json-patch+json" => Some(PatchKind::Json),
            "application/merge-patch+json" => Some(PatchKind::Merge),
            "application/strategic-merge-patch+json" => Some(PatchKind::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => {
                Some(PatchKind::Apply)
            }
            _ => None,
        }
    }

    /// The canonical media type of this patch kind.
    pub fn content_type(&self) -> &'static str {
        match self {
            PatchKind::Json => Self::CONTENT_TYPES[0],
            PatchKind::Merge => Self::CONTENT_TYPES[1],
            PatchKind::Strategic => Self::CONTENT_TYPES[2],
            PatchKind::Apply => Self::CONTENT_TYPES[3],
        }
    }
}

/// Why a patch could not be applied; each variant maps to the status code and `reason`
/// kube-apiserver uses in its `Status` body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The body is not a valid patch of its kind (not JSON, not a list of operations…): 400.
    #[error("{0}")]
    Malformed(String),
    /// The patch is well-formed but cannot be applied to this object (a `test` operation
    /// failed, a path does not exist, the result is not an object…): 422.
    #[error("{0}")]
    Invalid(String),
    /// This patch type is not supported for this resource (strategic merge patch on a
    /// custom resource): 415.
    #[error("{0}")]
    Unsupported(String),
}

impl PatchError {
    /// HTTP status code of the error response.
    pub fn http_code(&self) -> u16 {
        match self {
            PatchError::Malformed(_) => 400,
            PatchError::Invalid(_) => 422,
            PatchError::Unsupported(_) => 415,
        }
    }

    /// The `reason` field of the `Status` body.
    pub fn reason(&self) -> &'static str {
        match self {
            PatchError::Malformed(_) => "BadRequest",
            PatchError::Invalid(_) => "Invalid",
            PatchError::Unsupported(_) => "UnsupportedMediaType",
        }
    }

    /// The human-readable message (the `message` field of the `Status` body).
    pub fn message(&self) -> &str {
        match self {
            PatchError::Malformed(m) | PatchError::Invalid(m) | PatchError::Unsupported(m) => m,
        }
    }
}

/// Apply a PATCH request body to `current`; `merge_keys` tells strategic merge patch (and
/// server-side apply) the list merge keys of this kind.
///
/// The result must still be a JSON object: a patch that turns the object into anything
/// else is rejected as [`PatchError::Invalid`].
pub fn apply_patch(
    kind: PatchKind,
    current: &Value,
    body: &[u8],
    merge_keys: &MergeKeys,
) -> Result<Value, PatchError> {
    let out = match kind {
        PatchKind::Json => {
            let patch = parse_json_body(body)?;
            apply_json_patch(current, &patch)?
        }
        PatchKind::Merge => {
            let patch = parse_json_body(body)?;
            apply_merge_patch(current, &patch)?
        }
        PatchKind::Strategic => {
            if !merge_keys.supports_strategic() {
                return Err(PatchError::Unsupported(format!(
                    "the body of the request was in an unknown format - accepted media types include: {}, {}, {}",
                    PatchKind::Json.content_type(),
                    PatchKind::Merge.content_type(),
                    PatchKind::Apply.content_type(),
                )));
            }
            let patch = parse_json_body(body)?;
            apply_strategic_merge_patch(current, &patch, merge_keys)?
        }
        PatchKind::Apply => {
            let applied = parse_yaml_body(body)?;
            apply_server_side(current, &applied, merge_keys)?
        }
    };
    if !out.is_object() {
        return Err(PatchError::Invalid(
            "the patched object is not a JSON object".to_string(),
        ));
    }
    Ok(out)
}

/// Parse a JSON request body.
fn parse_json_body(body: &[u8]) -> Result<Value, PatchError> {
    serde_json::from_slice(body)
        .map_err(|e| PatchError::Malformed(format!("error decoding patch: {e}")))
}

/// Parse a server-side apply body: YAML (of which JSON is a subset).
fn parse_yaml_body(body: &[u8]) -> Result<Value, PatchError> {
    // JSON first: it keeps integer/float distinctions exactly as sent.
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        return Ok(v);
    }
    serde_yaml::from_slice::<Value>(body)
        .map_err(|e| PatchError::Malformed(format!("error decoding YAML: {e}")))
}
