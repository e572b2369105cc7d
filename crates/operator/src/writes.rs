//! API writes that decode only the part of the answer the controller reads.
//!
//! kube's `Api::create`, `patch_status` and `replace_status` decode the whole object the
//! server sends back, which the controllers mostly drop unread: an alert's or a plan's
//! status patch is not read back at all, nor a patch step's object or an Event; a created
//! run is read for its identity only, and a run's status write for its metadata and status
//! (the spec is unchanged: the write is conditional on the resourceVersion it was made
//! from). On a busy controller those decodes
//! were a good part of a write's cost, and on a real API server each answer also carries
//! `managedFields`. These send the same requests through the same client (so its retry,
//! limits and tracing layers apply) with kube's own request builder, and decode only what
//! is asked for; serde skips the rest without allocating.

use std::borrow::Cow;
use std::fmt::Debug;

use kube::api::{Patch, PatchParams, PostParams};
use kube::core::Request;
use kube::{Client, Resource};
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Serialize};

/// The identity a written object comes back with.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct WrittenMeta {
    #[serde(default)]
    pub uid: Option<String>,
    #[serde(default)]
    pub resource_version: Option<String>,
}

#[derive(Deserialize)]
struct Written {
    #[serde(default)]
    metadata: WrittenMeta,
}

/// Creates `obj` in the collection at `url` (`Api::resource_url`, or `Resource::url_path`);
/// returns the uid and resourceVersion the server gave it.
pub async fn create<K>(
    client: &Client,
    url: &str,
    pp: &PostParams,
    obj: &K,
) -> Result<WrittenMeta, kube::Error>
where
    K: Serialize,
{
    let body = serde_json::to_vec(obj).map_err(kube::Error::SerdeError)?;
    let mut req = Request::new(url)
        .create(pp, body)
        .map_err(kube::Error::BuildRequest)?;
    req.extensions_mut().insert("create");
    let written: Written = client.request(req).await?;
    Ok(written.metadata)
}

/// Which part of an object a patch is sent to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The object (its spec, metadata).
    Object,
    /// Its `status` subresource.
    Status,
}

/// Patches `part` of `name` in the collection at `url`; the object sent back is not decoded.
pub async fn patch<P>(
    client: &Client,
    url: &str,
    name: &str,
    part: Part,
    pp: &PatchParams,
    patch: &Patch<P>,
) -> Result<(), kube::Error>
where
    P: Serialize + Debug,
{
    let request = Request::new(url);
    let (req, operation) = match part {
        Part::Object => (request.patch(name, pp, patch), "patch"),
        Part::Status => (
            request.patch_subresource("status", name, pp, patch),
            "patch_status",
        ),
    };
    let mut req = req.map_err(kube::Error::BuildRequest)?;
    req.extensions_mut().insert(operation);
    let _: IgnoredAny = client.request(req).await?;
    Ok(())
}

/// The body of a status write: the object's type, identity and version, and its status.
/// The status subresource takes only the status from the body and keeps the spec and
/// metadata it has (kube-apiserver's status strategies copy them from the stored object),
/// so the spec — a run's copy of its plan's steps, most of its size — is not encoded,
/// sent and decoded again with every step's outcome. The resourceVersion is the write's
/// precondition.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusOnly<'a, S> {
    api_version: Cow<'static, str>,
    kind: Cow<'static, str>,
    metadata: Identity<'a>,
    status: &'a S,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Identity<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_version: Option<&'a str>,
}

impl<'a, S> StatusOnly<'a, S> {
    /// The status write of `obj` with `status`.
    pub fn of<K: Resource<DynamicType = ()>>(obj: &'a K, status: &'a S) -> Self {
        let meta = obj.meta();
        StatusOnly {
            api_version: K::api_version(&()),
            kind: K::kind(&()),
            metadata: Identity {
                name: meta.name.as_deref(),
                namespace: meta.namespace.as_deref(),
                resource_version: meta.resource_version.as_deref(),
            },
            status,
        }
    }
}

/// Replaces the status of `name` in the collection at `url` with that of `obj` (an object,
/// or its [`StatusOnly`]); decodes the answer as `T` (a struct of the fields wanted, e.g.
/// `metadata` and `status`).
pub async fn replace_status<K, T>(
    client: &Client,
    url: &str,
    name: &str,
    pp: &PostParams,
    obj: &K,
) -> Result<T, kube::Error>
where
    K: Serialize,
    T: DeserializeOwned,
{
    let body = serde_json::to_vec(obj).map_err(kube::Error::SerdeError)?;
    let mut req = Request::new(url)
        .replace_subresource("status", name, pp, body)
        .map_err(kube::Error::BuildRequest)?;
    req.extensions_mut().insert("replace_status");
    client.request(req).await
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use kube::api::{Api, ObjectMeta};
    use lifeboat_api::{ReceivedAlert, ReceivedAlertSpec, ReceivedAlertStatus};
    use lifeboat_testkit::TestCluster;
    use serde_json::json;

    fn alert(name: &str) -> ReceivedAlert {
        ReceivedAlert {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some("default".to_string()),
                ..Default::default()
            },
            spec: ReceivedAlertSpec {
                labels: [("alertname".to_string(), "ZoneDown".to_string())].into(),
                ..Default::default()
            },
            status: None,
        }
    }

    #[derive(Debug, Deserialize)]
    struct MetaAndStatus {
        metadata: ObjectMeta,
        status: Option<ReceivedAlertStatus>,
    }

    #[tokio::test]
    async fn writes_land_as_kubes_own_and_return_what_the_server_stored() {
        let cluster = TestCluster::start("writes").await;
        let client = cluster.client();
        let api: Api<ReceivedAlert> = Api::namespaced(client.clone(), "default");
        let url = api.resource_url().to_string();
        let pp = PostParams::default();

        let created = create(&client, &url, &pp, &alert("a")).await.unwrap();
        let stored = api.get("a").await.unwrap();
        assert_eq!(created.uid, stored.metadata.uid, "the uid the server gave");
        assert_eq!(
            created.resource_version, stored.metadata.resource_version,
            "the version the server gave"
        );
        let again = create(&client, &url, &pp, &alert("a")).await;
        assert!(
            matches!(again, Err(kube::Error::Api(ref s)) if s.is_already_exists()),
            "a second create is refused as kube's own is: {again:?}"
        );

        let status = json!({"status": {"processed": true, "runs": ["r-1"]}});
        let ppatch = PatchParams::default();
        patch(
            &client,
            &url,
            "a",
            Part::Status,
            &ppatch,
            &Patch::Merge(&status),
        )
        .await
        .unwrap();
        let patched = api.get_status("a").await.unwrap().status.unwrap();
        assert!(patched.processed && patched.runs == vec!["r-1".to_string()]);
        let missing = patch(
            &client,
            &url,
            "nope",
            Part::Status,
            &ppatch,
            &Patch::Merge(&status),
        )
        .await;
        assert!(
            matches!(missing, Err(kube::Error::Api(ref s)) if s.code == 404),
            "{missing:?}"
        );

        let labels = json!({"metadata": {"labels": {"seen": "yes"}}});
        patch(
            &client,
            &url,
            "a",
            Part::Object,
            &ppatch,
            &Patch::Merge(&labels),
        )
        .await
        .unwrap();
        assert_eq!(
            api.get("a").await.unwrap().metadata.labels.unwrap()["seen"],
            "yes"
        );

        // A status replace made from the current version lands and answers with the new
        // version and the stored status; one made from an older version is refused.
        let mut current = api.get("a").await.unwrap();
        current.status.as_mut().unwrap().message = Some("replaced".to_string());
        let answer: MetaAndStatus = replace_status(&client, &url, "a", &pp, &current)
            .await
            .unwrap();
        let stored = api.get("a").await.unwrap();
        assert_eq!(
            answer.metadata.resource_version,
            stored.metadata.resource_version
        );
        assert_ne!(
            answer.metadata.resource_version,
            current.metadata.resource_version
        );
        assert_eq!(
            answer.status.unwrap().message.as_deref(),
            Some("replaced"),
            "the status as stored"
        );
        let stale = replace_status::<_, MetaAndStatus>(&client, &url, "a", &pp, &current).await;
        assert!(
            matches!(stale, Err(kube::Error::Api(ref s)) if s.code == 409),
            "a write from an old version conflicts"
        );

        // The status alone, with the object's identity and version: the server keeps the
        // spec it has.
        let mut current = api.get("a").await.unwrap();
        let mut status = current.status.clone().unwrap();
        status.message = Some("status only".to_string());
        let answer: MetaAndStatus =
            replace_status(&client, &url, "a", &pp, &StatusOnly::of(&current, &status))
                .await
                .unwrap();
        let stored = api.get("a").await.unwrap();
        assert_eq!(
            stored.status.unwrap().message.as_deref(),
            Some("status only")
        );
        assert_eq!(stored.spec, current.spec, "the spec is the one stored");
        assert_eq!(
            answer.metadata.resource_version,
            stored.metadata.resource_version
        );
        current.metadata.resource_version = Some("1".to_string());
        let stale = replace_status::<_, MetaAndStatus>(
            &client,
            &url,
            "a",
            &pp,
            &StatusOnly::of(&current, &status),
        )
        .await;
        assert!(
            matches!(stale, Err(kube::Error::Api(ref s)) if s.code == 409),
            "the version it carries is the write's precondition: {stale:?}"
        );
    }
}
