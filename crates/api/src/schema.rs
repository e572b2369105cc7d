//! Hand-written schema fragments for fields whose content is free-form JSON.
//!
//! A structural schema must say, for every free-form field, that unknown content is kept
//! (`x-kubernetes-preserve-unknown-fields`); otherwise a real API server prunes it and the
//! user's `value.raw` or job template silently disappears.

use schemars::{Schema, SchemaGenerator, json_schema};

/// Any JSON value (bool, number, string, list, object), kept verbatim by the API server.
pub fn any_json(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "x-kubernetes-preserve-unknown-fields": true
    })
}

/// A JSON object whose content the server keeps verbatim (e.g. a PodTemplateSpec).
pub fn free_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true
    })
}

/// A map of string keys to arbitrary JSON values (e.g. a run's `status.values`).
pub fn any_json_map(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "additionalProperties": {
            "x-kubernetes-preserve-unknown-fields": true
        }
    })
}

/// An RFC 3339 timestamp, as Kubernetes writes them.
pub fn timestamp(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "format": "date-time"
    })
}

/// An optional RFC 3339 timestamp, as Kubernetes writes them.
pub fn optional_timestamp(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "format": "date-time",
        "nullable": true
    })
}
