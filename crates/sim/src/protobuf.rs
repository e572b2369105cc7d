//! Decoding of the Kubernetes protobuf wire format for the few kinds kubectl's typed
//! commands send that way (`kubectl create namespace|configmap|secret|serviceaccount`,
//! `kubectl create role|clusterrole|rolebinding|clusterrolebinding|token`).
//!
//! A body is the magic `k8s\0` followed by a `runtime.Unknown` message (type meta + the raw
//! object message). Only the fields listed in the schemas below are decoded; a kind
//! without a schema is not decodable (the server answers 415 and the client can send JSON).

use base64::Engine;
use serde_json::{Map, Value, json};

const MAGIC: &[u8] = b"k8s\0";

/// How one field is turned into JSON.
#[derive(Clone, Copy)]
enum Ty {
    Str,
    Int,
    Bool,
    Time,
    Msg(&'static [(u32, &'static str, Ty, bool)]),
    MapStr,
    MapBytes,
}

/// (field number, JSON name, type, repeated)
type Schema = &'static [(u32, &'static str, Ty, bool)];

const OWNER_REF: Schema = &[
    (1, "kind", Ty::Str, false),
    (3, "name", Ty::Str, false),
    (4, "uid", Ty::Str, false),
    (5, "apiVersion", Ty::Str, false),
    (6, "controller", Ty::Bool, false),
    (7, "blockOwnerDeletion", Ty::Bool, false),
];

const OBJECT_META: Schema = &[
    (1, "name", Ty::Str, false),
    (2, "generateName", Ty::Str, false),
    (3, "namespace", Ty::Str, false),
    (5, "uid", Ty::Str, false),
    (6, "resourceVersion", Ty::Str, false),
    (7, "generation", Ty::Int, false),
    (8, "creationTimestamp", Ty::Time, false),
    (11, "labels", Ty::MapStr, false),
    (12, "annotations", Ty::MapStr, false),
    (13, "ownerReferences", Ty::Msg(OWNER_REF), true),
    (14, "finalizers", Ty::Str, true),
];

const NAMESPACE: Schema = &[
    (1, "metadata", Ty::Msg(OBJECT_META), false),
    (
        2,
        "spec",
        Ty::Msg(&[(1, "finalizers", Ty::Str, true)]),
        false,
    ),
];

const CONFIG_MAP: Schema = &[
    (1, "metadata", Ty::Msg(OBJECT_META), false),
    (2, "data", Ty::MapStr, false),
    (3, "binaryData", Ty::MapBytes, false),
    (4, "immutable", Ty::Bool, false),
];

const SECRET: Schema = &[
    (1, "metadata", Ty::Msg(OBJECT_META), false),
    (2, "data", Ty::MapBytes, false),
    (3, "type", Ty::Str, false),
    (4, "stringData", Ty::MapStr, false),
    (5, "immutable", Ty::Bool, false),
];

const SERVICE_ACCOUNT: Schema = &[
    (1, "metadata", Ty::Msg(OBJECT_META), false),
    (4, "automountServiceAccountToken", Ty::Bool, false),
];

const POLICY_RULE: Schema = &[
    (1, "verbs", Ty::Str, true),
    (2, "apiGroups", Ty::Str, true),
    (3, "resources", Ty::Str, true),
    (4, "resourceNames", Ty::Str, true),
    (5, "nonResourceURLs", Ty::Str, true),
];

const LABEL_SELECTOR: Schema = &[
    (1, "matchLabels", Ty::MapStr, false),
    (
        2,
        "matchExpressions",
        Ty::Msg(&[
            (1, "key", Ty::Str, false),
            (2, "operator", Ty::Str, false),
            (3, "values", Ty::Str, true),
        ]),
        true,
    ),
];

const ROLE: Schema = &[
    (1, "metadata", Ty::Msg(OBJECT_META), false),
    (2, "rules", Ty::Msg(POLICY_RULE), true),
];

const CLUSTER_ROLE: Schema = &[
    (1, "metadata", Ty::Msg(OBJECT_META), false),
    (2, "rules", Ty::Msg(POLICY_RULE), true),
    (
        3,
        "aggregationRule",
        Ty::Msg(&[(1, "clusterRoleSelectors", Ty::Msg(LABEL_SELECTOR), true)]),
        false,
    ),
];

/// RoleBinding and ClusterRoleBinding.
const BINDING: Schema = &[
    (1, "metadata", Ty::Msg(OBJECT_META), false),
    (
        2,
        "subjects",
        Ty::Msg(&[
            (1, "kind", Ty::Str, false),
            (2, "apiGroup", Ty::Str, false),
            (3, "name", Ty::Str, false),
            (4, "namespace", Ty::Str, false),
        ]),
        true,
    ),
    (
        3,
        "roleRef",
        Ty::Msg(&[
            (1, "apiGroup", Ty::Str, false),
            (2, "kind", Ty::Str, false),
            (3, "name", Ty::Str, false),
        ]),
        false,
    ),
];

const TOKEN_REQUEST: Schema = &[
    (1, "metadata", Ty::Msg(OBJECT_META), false),
    (
        2,
        "spec",
        Ty::Msg(&[
            (1, "audiences", Ty::Str, true),
            (
                3,
                "boundObjectRef",
                Ty::Msg(&[
                    (1, "kind", Ty::Str, false),
                    (2, "apiVersion", Ty::Str, false),
                    (3, "name", Ty::Str, false),
                    (4, "uid", Ty::Str, false),
                ]),
                false,
            ),
            (4, "expirationSeconds", Ty::Int, false),
        ]),
        false,
    ),
];

/// One decoded wire field.
enum Wire<'a> {
    Varint(u64),
    Len(&'a [u8]),
    Fixed,
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Option<u64> {
        let mut out = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self.buf.split_first()?;
            self.buf = rest;
            out |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(out);
            }
        }
        None
    }

    fn field(&mut self) -> Option<Option<(u32, Wire<'a>)>> {
        if self.buf.is_empty() {
            return Some(None);
        }
        let key = self.varint()?;
        let num = u32::try_from(key >> 3).ok()?;
        let wire = match key & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => {
                self.buf = self.buf.get(8..)?;
                Wire::Fixed
            }
            2 => {
                let len = usize::try_from(self.varint()?).ok()?;
                let (data, rest) = (self.buf.get(..len)?, self.buf.get(len..)?);
                self.buf = rest;
                Wire::Len(data)
            }
            5 => {
                self.buf = self.buf.get(4..)?;
                Wire::Fixed
            }
            _ => return None,
        };
        Some(Some((num, wire)))
    }
}

fn fields(buf: &[u8]) -> Option<Vec<(u32, Wire<'_>)>> {
    let mut r = Reader { buf };
    let mut out = Vec::new();
    while let Some(f) = r.field()? {
        out.push(f);
    }
    Some(out)
}

fn str_of(b: &[u8]) -> Option<String> {
    String::from_utf8(b.to_vec()).ok()
}

fn map_entry(b: &[u8], bytes: bool) -> Option<(String, Value)> {
    let mut key = String::new();
    let mut value = Value::String(String::new());
    for (n, w) in fields(b)? {
        match (n, w) {
            (1, Wire::Len(k)) => key = str_of(k)?,
            (2, Wire::Len(v)) => {
                value = if bytes {
                    Value::String(base64::engine::general_purpose::STANDARD.encode(v))
                } else {
                    Value::String(str_of(v)?)
                }
            }
            _ => {}
        }
    }
    Some((key, value))
}

fn time(b: &[u8]) -> Option<Value> {
    let mut secs = 0i64;
    for (n, w) in fields(b)? {
        if let (1, Wire::Varint(v)) = (n, w) {
            secs = i64::try_from(v).ok()?;
        }
    }
    let ts = jiff::Timestamp::from_second(secs).ok()?;
    Some(Value::String(ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()))
}

fn message(buf: &[u8], schema: Schema) -> Option<Value> {
    let mut out = Map::new();
    for (num, wire) in fields(buf)? {
        let Some(&(_, name, ty, repeated)) = schema.iter().find(|(n, ..)| *n == num) else {
            continue;
        };
        let v = match (ty, wire) {
            (Ty::Str, Wire::Len(b)) => Value::String(str_of(b)?),
            (Ty::Int, Wire::Varint(v)) => json!(v as i64),
            (Ty::Bool, Wire::Varint(v)) => Value::Bool(v != 0),
            (Ty::Time, Wire::Len(b)) => time(b)?,
            (Ty::Msg(s), Wire::Len(b)) => message(b, s)?,
            (Ty::MapStr | Ty::MapBytes, Wire::Len(b)) => {
                let (k, v) = map_entry(b, matches!(ty, Ty::MapBytes))?;
                let m = out.entry(name).or_insert_with(|| json!({}));
                if let Some(m) = m.as_object_mut() {
                    m.insert(k, v);
                }
                continue;
            }
            _ => return None,
        };
        if repeated {
            let a = out.entry(name).or_insert_with(|| json!([]));
            if let Some(a) = a.as_array_mut() {
                a.push(v);
            }
        } else if v != Value::String(String::new()) {
            // Go's protobuf always sends empty strings; JSON omits them.
            out.insert(name.to_string(), v);
        }
    }
    Some(Value::Object(out))
}

/// Decode a protobuf request body into the JSON object it encodes, or `None` when the body
/// is malformed or of a kind this decoder does not know.
pub fn decode(body: &[u8]) -> Option<Value> {
    let rest = body.strip_prefix(MAGIC)?;
    let mut api_version = String::new();
    let mut kind = String::new();
    let mut raw: &[u8] = &[];
    for (n, w) in fields(rest)? {
        match (n, w) {
            (1, Wire::Len(tm)) => {
                for (tn, tw) in fields(tm)? {
                    match (tn, tw) {
                        (1, Wire::Len(s)) => api_version = str_of(s)?,
                        (2, Wire::Len(s)) => kind = str_of(s)?,
                        _ => {}
                    }
                }
            }
            (2, Wire::Len(r)) => raw = r,
            _ => {}
        }
    }
    let schema = match (api_version.as_str(), kind.as_str()) {
        ("v1", "Namespace") => NAMESPACE,
        ("v1", "ConfigMap") => CONFIG_MAP,
        ("v1", "Secret") => SECRET,
        ("v1", "ServiceAccount") => SERVICE_ACCOUNT,
        ("rbac.authorization.k8s.io/v1", "Role") => ROLE,
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => CLUSTER_ROLE,
        ("rbac.authorization.k8s.io/v1", "RoleBinding" | "ClusterRoleBinding") => BINDING,
        ("authentication.k8s.io/v1", "TokenRequest") => TOKEN_REQUEST,
        _ => return None,
    };
    let mut obj = message(raw, schema)?;
    obj["apiVersion"] = Value::String(api_version);
    obj["kind"] = Value::String(kind);
    Some(obj)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn len_field(num: u32, data: &[u8]) -> Vec<u8> {
        let mut out = vec![u8::try_from(num << 3 | 2).unwrap()];
        out.push(u8::try_from(data.len()).unwrap());
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn decodes_a_configmap() {
        let meta = [
            len_field(1, b"cm1"),
            len_field(11, &[len_field(1, b"app"), len_field(2, b"web")].concat()),
        ]
        .concat();
        let raw = [
            len_field(1, &meta),
            len_field(2, &[len_field(1, b"k"), len_field(2, b"v")].concat()),
        ]
        .concat();
        let tm = [len_field(1, b"v1"), len_field(2, b"ConfigMap")].concat();
        let body = [MAGIC.to_vec(), len_field(1, &tm), len_field(2, &raw)].concat();
        let v = decode(&body).unwrap();
        assert_eq!(v["metadata"]["name"], "cm1");
        assert_eq!(v["metadata"]["labels"]["app"], "web");
        assert_eq!(v["data"]["k"], "v");
        assert_eq!(v["kind"], "ConfigMap");
        assert!(decode(b"k8s\0\xff\xff").is_none(), "garbage is rejected");
        assert!(decode(b"{}").is_none());
    }
}
