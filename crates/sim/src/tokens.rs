//! ServiceAccount tokens: the TokenRequest subresource
//! (`POST /api/v1/namespaces/NS/serviceaccounts/NAME/token`) and authentication of the
//! bearer tokens it issued.
//!
//! Tokens are opaque random strings remembered by the cluster. Like kube-apiserver's, a
//! token stops authenticating when it expires, when it was issued for other audiences, or
//! when its ServiceAccount (or the Pod or Secret it is bound to) is deleted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use crate::api::{ApiRequest, State, parse_body, split_api_version};
use crate::authz::UserInfo;
use crate::error::{Reason, SimError, cause};
use crate::store::Store;

/// The API server's own audience (kube-apiserver's default: its service-account issuer).
/// A token for other audiences only is not accepted here.
pub const API_AUDIENCE: &str = "https://kubernetes.default.svc.cluster.local";

/// `spec.expirationSeconds` when the request has none.
const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;
const MIN_EXPIRATION_SECONDS: i64 = 600;
const MAX_EXPIRATION_SECONDS: i64 = 1 << 32;

const SERVICE_ACCOUNTS: &str = "/serviceaccounts";

/// The object a token is bound to: it authenticates only while that object exists.
#[derive(Clone, Debug)]
struct Bound {
    storage: &'static str,
    name: String,
    uid: String,
}

#[derive(Clone, Debug)]
struct Issued {
    namespace: String,
    name: String,
    uid: String,
    audiences: Vec<String>,
    expires: Timestamp,
    bound: Option<Bound>,
}

/// The tokens a cluster issued.
#[derive(Debug, Default)]
pub struct Tokens {
    issued: Mutex<HashMap<String, Issued>>,
}

fn invalid_request(name: &str, field: &str, message: String) -> SimError {
    SimError::invalid(
        "authentication.k8s.io",
        "TokenRequest",
        name,
        vec![cause("FieldValueInvalid", field, message)],
    )
}

fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn uid_of(obj: &Value) -> String {
    obj["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

impl Tokens {
    /// Answer a TokenRequest for ServiceAccount `req.name` in `req.namespace`: 201 and the
    /// TokenRequest with `status.token` and `status.expirationTimestamp`.
    pub fn request(&self, st: &State, req: &ApiRequest) -> Result<(u16, Arc<Value>), SimError> {
        let body = parse_body(&req.content_type, &req.body)?;
        // The body may name the ServiceAccount, but only as the path does.
        for (field, want) in [("name", &req.name), ("namespace", &req.namespace)] {
            let given = body["metadata"][field].as_str().unwrap_or_default();
            if !given.is_empty() && given != want {
                return Err(invalid_request(
                    &req.name,
                    &format!("metadata.{field}"),
                    format!(
                        "Invalid value: \"{given}\": must match the service account {field} if specified"
                    ),
                ));
            }
        }
        let sa = st
            .store
            .get(SERVICE_ACCOUNTS, &req.namespace, &req.name)
            .ok_or_else(|| SimError::not_found("", "serviceaccounts", &req.name))?;
        let spec = &body["spec"];
        let mut audiences: Vec<String> = spec["audiences"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect();
        if audiences.is_empty() {
            audiences.push(API_AUDIENCE.to_string());
        }
        let seconds = match &spec["expirationSeconds"] {
            Value::Null => DEFAULT_EXPIRATION_SECONDS,
            v => v.as_i64().ok_or_else(|| {
                SimError::bad_request(
                    "TokenRequest in version \"v1\" cannot be handled as a TokenRequest: json: cannot unmarshal into Go struct field TokenRequestSpec.spec.expirationSeconds of type int64",
                )
            })?,
        };
        if seconds < MIN_EXPIRATION_SECONDS {
            return Err(invalid_request(
                "",
                "spec.expirationSeconds",
                format!(
                    "Invalid value: {seconds}: may not specify a duration less than 10 minutes"
                ),
            ));
        }
        if seconds > MAX_EXPIRATION_SECONDS {
            return Err(invalid_request(
                "",
                "spec.expirationSeconds",
                format!(
                    "Invalid value: {seconds}: may not specify a duration larger than 2^32 seconds"
                ),
            ));
        }
        let bound = bound_object(&st.store, req, &spec["boundObjectRef"])?;
        let now = Timestamp::now();
        let expires = now
            .checked_add(SignedDuration::from_secs(seconds))
            .map_err(|e| SimError::new(Reason::InternalError, e.to_string()))?;
        let token = random_token();
        {
            let mut issued = self
                .issued
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            issued.retain(|_, t| t.expires > now);
            issued.insert(
                token.clone(),
                Issued {
                    namespace: req.namespace.clone(),
                    name: req.name.clone(),
                    uid: uid_of(sa),
                    audiences: audiences.clone(),
                    expires,
                    bound,
                },
            );
        }
        let mut out_spec = json!({"audiences": audiences, "expirationSeconds": seconds});
        if spec["boundObjectRef"].is_object() {
            out_spec["boundObjectRef"] = spec["boundObjectRef"].clone();
        }
        let format = "%Y-%m-%dT%H:%M:%SZ";
        Ok((
            201,
            json!({
                "kind": "TokenRequest",
                "apiVersion": "authentication.k8s.io/v1",
                "metadata": {
                    "name": req.name,
                    "namespace": req.namespace,
                    "uid": uid_of(sa),
                    "creationTimestamp": now.strftime(format).to_string(),
                },
                "spec": out_spec,
                "status": {
                    "token": token,
                    "expirationTimestamp": expires.strftime(format).to_string(),
                },
            })
            .into(),
        ))
    }

    /// The ServiceAccount user a bearer token authenticates as, or `None` when it is not a
    /// valid token for this API server.
    pub fn authenticate(&self, store: &Store, token: &str) -> Option<UserInfo> {
        let t = self
            .issued
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(token)
            .cloned()?;
        let sa = store.get(SERVICE_ACCOUNTS, &t.namespace, &t.name)?;
        let live = Timestamp::now() < t.expires
            && t.audiences.iter().any(|a| a == API_AUDIENCE)
            && uid_of(sa) == t.uid
            && t.bound.as_ref().is_none_or(|b| {
                store
                    .get(b.storage, &t.namespace, &b.name)
                    .is_some_and(|o| uid_of(o) == b.uid)
            });
        live.then(|| UserInfo::service_account(&t.namespace, &t.name))
    }
}

/// Check `spec.boundObjectRef` as kube-apiserver does (a Pod of this ServiceAccount or a
/// Secret, in the same namespace).
fn bound_object(store: &Store, req: &ApiRequest, r: &Value) -> Result<Option<Bound>, SimError> {
    if !r.is_object() {
        return Ok(None);
    }
    let kind = r["kind"].as_str().unwrap_or_default();
    let api_version = r["apiVersion"].as_str().unwrap_or_default();
    let name = r["name"].as_str().unwrap_or_default().to_string();
    let (group, version) = split_api_version(api_version);
    let (storage, resource) = match (group, kind) {
        ("", "Pod") => ("/pods", "pods"),
        ("", "Secret") => ("/secrets", "secrets"),
        _ => {
            return Err(SimError::bad_request(format!(
                "cannot bind token to object of type {group}/{version}, Kind={kind}"
            )));
        }
    };
    let obj = store
        .get(storage, &req.namespace, &name)
        .ok_or_else(|| SimError::not_found("", resource, &name))?;
    if kind == "Pod" {
        let sa = obj["spec"]["serviceAccountName"]
            .as_str()
            .filter(|s| !s.is_empty())
            .unwrap_or("default");
        if sa != req.name {
            return Err(SimError::bad_request(format!(
                "cannot bind token for serviceaccount \"{}\" to pod running with different serviceaccount name.",
                req.name
            )));
        }
    }
    let uid = uid_of(obj);
    let want = r["uid"].as_str().unwrap_or_default();
    if !want.is_empty() && want != uid {
        return Err(SimError::new(
            Reason::Conflict,
            format!(
                "Operation cannot be fulfilled on {kind} \"{name}\": the UID in the bound object reference ({want}) does not match the UID in record. The object might have been deleted and then recreated"
            ),
        ));
    }
    Ok(Some(Bound { storage, name, uid }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn issued(expires: Timestamp, bound: Option<Bound>) -> Issued {
        Issued {
            namespace: "ns".into(),
            name: "sa".into(),
            uid: "sa-uid".into(),
            audiences: vec![API_AUDIENCE.into()],
            expires,
            bound,
        }
    }

    #[test]
    fn only_live_tokens_authenticate() {
        let mut store = Store::new();
        store.put(
            SERVICE_ACCOUNTS,
            json!({"metadata": {"name": "sa", "namespace": "ns", "uid": "sa-uid"}}),
        );
        let tokens = Tokens::default();
        let now = Timestamp::now();
        let hour = SignedDuration::from_secs(3600);
        let pod = Bound {
            storage: "/pods",
            name: "p".into(),
            uid: "pod-uid".into(),
        };
        {
            let mut m = tokens.issued.lock().unwrap();
            m.insert("live".into(), issued(now.checked_add(hour).unwrap(), None));
            m.insert("old".into(), issued(now.checked_sub(hour).unwrap(), None));
            m.insert(
                "bound".into(),
                issued(now.checked_add(hour).unwrap(), Some(pod)),
            );
        }
        let user = tokens.authenticate(&store, "live").unwrap();
        assert_eq!(user, UserInfo::service_account("ns", "sa"));
        assert!(tokens.authenticate(&store, "old").is_none(), "expired");
        assert!(tokens.authenticate(&store, "unknown").is_none());
        assert!(
            tokens.authenticate(&store, "bound").is_none(),
            "its pod is gone"
        );
        store.put(
            "/pods",
            json!({"metadata": {"name": "p", "namespace": "ns", "uid": "pod-uid"}}),
        );
        assert!(tokens.authenticate(&store, "bound").is_some());
        // A ServiceAccount deleted and created again is another account.
        store.put(
            SERVICE_ACCOUNTS,
            json!({"metadata": {"name": "sa", "namespace": "ns", "uid": "new-uid"}}),
        );
        assert!(tokens.authenticate(&store, "live").is_none());
    }
}
