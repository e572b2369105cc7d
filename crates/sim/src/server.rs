//! The HTTP side of a simulated cluster: connection handling (including outages on the
//! same port), routing, authentication and authorization, fault injection, audit counters
//! and responses.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpSocket};
use tokio_util::sync::CancellationToken;

use crate::api::{ApiRequest, Query};
use crate::authz::{Attributes, UserInfo};
pub use crate::cluster::Cluster;
use crate::error::{Reason, SimError};
use crate::faults::Injected;
use crate::selector::FieldSelector;
use crate::{authn, discovery, kinds, table, watch};

/// Largest accepted request body (kube-apiserver's limit is 3 MiB).
const MAX_BODY: usize = 3 * 1024 * 1024;
/// The user name of the kubeconfig's admin credentials (as the real control plane's).
pub const ADMIN_USER: &str = "admin";

/// Bind a listener on `addr` that can be re-bound after an outage.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Accept connections until shutdown; go dark while the cluster is unreachable.
pub async fn supervise(cluster: Arc<Cluster>, listener: TcpListener) {
    let mut listener = Some(listener);
    let mut unreachable = cluster.faults.unreachable.subscribe();
    loop {
        if let Some(l) = listener.take() {
            let connections = cluster.shutdown.child_token();
            loop {
                tokio::select! {
                    _ = cluster.shutdown.cancelled() => return,
                    changed = unreachable.changed() => {
                        if changed.is_err() { return; }
                        if *unreachable.borrow_and_update() {
                            connections.cancel();
                            break;
                        }
                    }
                    accepted = l.accept() => {
                        if let Ok((stream, _)) = accepted {
                            let _ = stream.set_nodelay(true);
                            let c = cluster.clone();
                            let token = connections.clone();
                            tokio::spawn(async move { serve_connection(c, stream, token).await });
                        }
                    }
                }
            }
            drop(l);
        }
        // Down: wait until reachable again, then bind the same port.
        while *unreachable.borrow_and_update() {
            tokio::select! {
                _ = cluster.shutdown.cancelled() => return,
                changed = unreachable.changed() => if changed.is_err() { return; },
            }
        }
        loop {
            match bind(cluster.addr) {
                Ok(l) => {
                    listener = Some(l);
                    break;
                }
                Err(e) => {
                    tracing::warn!(cluster = %cluster.name, error = %e, "re-binding after outage failed, retrying");
                    tokio::select! {
                        _ = cluster.shutdown.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                    }
                }
            }
        }
    }
}

/// The error that makes hyper drop a connection without answering (an outage).
#[derive(Debug, thiserror::Error)]
#[error("cluster unreachable")]
struct Unreachable;

async fn serve_connection(
    cluster: Arc<Cluster>,
    stream: tokio::net::TcpStream,
    token: CancellationToken,
) {
    let svc_cluster = cluster.clone();
    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
        let c = svc_cluster.clone();
        async move {
            if c.faults.is_unreachable() {
                return Err(Unreachable);
            }
            Ok::<_, Unreachable>(handle(c, req).await)
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), svc);
    tokio::select! {
        _ = conn => {}
        _ = token.cancelled() => {}
    }
}

fn json_response(code: u16, body: &Value) -> Response<Body> {
    let mut r = Response::new(Body::from(body.to_string()));
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r
}

fn text_response(text: impl Into<Body>) -> Response<Body> {
    let mut r = Response::new(text.into());
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain"),
    );
    r
}

fn error_response(e: &SimError) -> Response<Body> {
    let mut r = json_response(e.code(), &e.to_status());
    if let Some(secs) = e.details.retry_after
        && let Ok(v) = header::HeaderValue::from_str(&secs.to_string())
    {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

fn not_found_path() -> SimError {
    SimError::new(
        Reason::NotFound,
        "the server could not find the requested resource",
    )
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_query(q: Option<&str>) -> Query {
    let mut out = Query::new();
    for pair in q.unwrap_or_default().split('&') {
        if pair.is_empty() {
            continue;
        }
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.insert(percent_decode(k), percent_decode(v));
    }
    out
}

/// A routed resource path.
struct Route {
    group: String,
    version: String,
    namespace: String,
    resource: String,
    name: String,
    subresource: Option<String>,
    watch_path: bool,
}

fn route(path: &str) -> Option<Route> {
    let segs: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(percent_decode)
        .collect();
    let (group, version, rest) = match segs.first().map(String::as_str) {
        Some("api") if segs.len() >= 3 => (String::new(), segs[1].clone(), &segs[2..]),
        Some("apis") if segs.len() >= 4 => (segs[1].clone(), segs[2].clone(), &segs[3..]),
        _ => return None,
    };
    if rest.iter().any(String::is_empty) {
        return None;
    }
    let (watch_path, rest) = match rest.first().map(String::as_str) {
        Some("watch") => (true, &rest[1..]),
        _ => (false, rest),
    };
    let mut r = Route {
        group,
        version,
        namespace: String::new(),
        resource: String::new(),
        name: String::new(),
        subresource: None,
        watch_path,
    };
    let is_ns_sub = |s: &str| s == "status" || s == "finalize";
    match rest {
        [res] => r.resource = res.clone(),
        [res, name] => {
            r.resource = res.clone();
            r.name = name.clone();
        }
        [ns_kw, ns, sub] if ns_kw == "namespaces" && is_ns_sub(sub) => {
            r.resource = "namespaces".into();
            r.name = ns.clone();
            r.subresource = Some(sub.clone());
        }
        [ns_kw, ns, res] if ns_kw == "namespaces" => {
            r.namespace = ns.clone();
            r.resource = res.clone();
        }
        [ns_kw, ns, res, name] if ns_kw == "namespaces" => {
            r.namespace = ns.clone();
            r.resource = res.clone();
            r.name = name.clone();
        }
        [ns_kw, ns, res, name, sub] if ns_kw == "namespaces" => {
            r.namespace = ns.clone();
            r.resource = res.clone();
            r.name = name.clone();
            r.subresource = Some(sub.clone());
        }
        [res, name, sub] => {
            r.resource = res.clone();
            r.name = name.clone();
            r.subresource = Some(sub.clone());
        }
        _ => return None,
    }
    if r.resource.is_empty() {
        return None;
    }
    Some(r)
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

fn wants_table(h: &HeaderMap) -> bool {
    header_str(h, "accept").contains("as=Table")
}

/// The verb of a resource request, as kube-apiserver names it for authorization.
fn verb_of(method: &Method, rt: &Route, watch: bool) -> Option<&'static str> {
    Some(match (method, rt.name.is_empty()) {
        (&Method::GET, false) if !watch => "get",
        (&Method::GET, _) if watch => "watch",
        (&Method::GET, true) => "list",
        (&Method::POST, true) => "create",
        // Subresources created by name, e.g. serviceaccounts/NAME/token.
        (&Method::POST, false) if rt.subresource.is_some() => "create",
        (&Method::PUT, false) => "update",
        (&Method::PATCH, false) => "patch",
        (&Method::DELETE, false) => "delete",
        (&Method::DELETE, true) => "deletecollection",
        _ => return None,
    })
}

fn audit_resource(rt: &Route) -> String {
    match &rt.subresource {
        Some(s) => format!("{}/{s}", rt.resource),
        None => rt.resource.clone(),
    }
}

/// Handle one HTTP request.
pub async fn handle(cluster: Arc<Cluster>, req: Request<Incoming>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let query = parse_query(parts.uri.query());
    let is_watch =
        |rt: &Route| rt.watch_path || query.get("watch").is_some_and(|w| w == "true" || w == "1");
    // Authentication and impersonation come first, as in kube-apiserver. For admin
    // requests this is a header lookup.
    let who = match authn::identify(&cluster, &parts.headers) {
        Ok(who) => who,
        Err(e) => {
            if let Some(rt) = route(&path)
                && let Some(verb) = verb_of(&parts.method, &rt, is_watch(&rt))
            {
                cluster.count(verb, &audit_resource(&rt), e.code());
            }
            return error_response(&e);
        }
    };
    // Discovery, OpenAPI, version and health are open to every authenticated user.
    if let Some(resp) = non_resource(&cluster, &parts.method, &path, &parts.headers) {
        return resp;
    }
    if parts.method == Method::POST
        && path.trim_end_matches('/') == "/apis/authentication.k8s.io/v1/selfsubjectreviews"
    {
        cluster.count("create", "authentication.k8s.io/selfsubjectreviews", 201);
        return json_response(201, &self_subject_review(who.as_ref()));
    }
    let Some(rt) = route(&path) else {
        return error_response(&not_found_path());
    };
    let watch = is_watch(&rt);
    let Some(verb) = verb_of(&parts.method, &rt, watch) else {
        let e = SimError::new(
            Reason::MethodNotAllowed,
            "the server does not allow this method on the requested resource",
        );
        cluster.count(parts.method.as_str(), &rt.resource, e.code());
        return error_response(&e);
    };
    let audit_resource = audit_resource(&rt);
    let resp = handle_resource(
        &cluster,
        verb,
        rt,
        query,
        &parts.headers,
        body,
        watch,
        who.as_ref(),
    )
    .await;
    let code = resp.status().as_u16();
    cluster.count(verb, &audit_resource, code);
    resp
}

/// Who the requester is, as kube-apiserver's SelfSubjectReview answers (every
/// authenticated user may ask). Requests without a user are the admin of the kubeconfig.
fn self_subject_review(who: Option<&UserInfo>) -> Value {
    let user_info = match who {
        Some(u) => json!({"username": u.user, "groups": u.groups}),
        // The real control plane's admin token carries the user's name as its uid too.
        None => json!({
            "username": ADMIN_USER,
            "uid": ADMIN_USER,
            "groups": ["system:masters", "system:authenticated"],
        }),
    };
    json!({
        "kind": "SelfSubjectReview",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"creationTimestamp": null},
        "status": {"userInfo": user_info}
    })
}

fn non_resource(
    cluster: &Arc<Cluster>,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Option<Response<Body>> {
    if method != Method::GET {
        return None;
    }
    let p = path.trim_end_matches('/');
    let st = || {
        cluster
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    };
    let found = |v: Option<Value>| match v {
        Some(v) => json_response(200, &v),
        None => error_response(&not_found_path()),
    };
    let resp = match p {
        "/version" => json_response(200, &discovery::version()),
        "/healthz" | "/livez" | "/readyz" => text_response("ok"),
        "/api" => json_response(200, &discovery::core_versions(&cluster.addr.to_string())),
        "/apis" => json_response(200, &discovery::group_list(&st().resources)),
        "/openapi/v2" => {
            let accept = header_str(headers, "accept");
            if accept.is_empty() || accept.contains("application/json") || accept.contains("*/*") {
                json_response(200, &discovery::openapi_v2())
            } else {
                error_response(&SimError::new(
                    Reason::NotAcceptable,
                    "only the following media types are accepted: application/json",
                ))
            }
        }
        "/openapi/v3" => json_response(200, &discovery::openapi_v3_index(&st().resources)),
        _ => {
            let segs: Vec<&str> = p.trim_start_matches('/').split('/').collect();
            match segs.as_slice() {
                ["api", v] => found(discovery::resource_list(&st().resources, "", v)),
                ["apis", g] => found(discovery::group(&st().resources, g)),
                ["apis", g, v] => found(discovery::resource_list(&st().resources, g, v)),
                ["openapi", "v3", "api", v] => {
                    let res = st().resources.clone();
                    if res.iter().any(|r| r.group.is_empty() && r.version == *v) {
                        json_response(200, &discovery::openapi_v3_doc(&res, "", v))
                    } else {
                        error_response(&not_found_path())
                    }
                }
                ["openapi", "v3", "apis", g, v] => {
                    let res = st().resources.clone();
                    if res.iter().any(|r| r.group == *g && r.version == *v) {
                        json_response(200, &discovery::openapi_v3_doc(&res, g, v))
                    } else {
                        error_response(&not_found_path())
                    }
                }
                _ => return None,
            }
        }
    };
    Some(resp)
}

/// Check `who` (not cluster-admin) may make this resource request.
fn authorize(
    cluster: &Cluster,
    who: &UserInfo,
    verb: &str,
    res: &crate::registry::ResourceInfo,
    rt: &Route,
    query: &Query,
) -> Result<(), SimError> {
    // As kube-apiserver's request info: a namespace is its own scope, and a list or watch
    // pinned to one name by fieldSelector is a request for that name.
    let namespace = if res.group.is_empty() && res.plural == "namespaces" && !rt.name.is_empty() {
        &rt.name
    } else {
        &rt.namespace
    };
    let selector = match verb {
        "list" | "watch" => query
            .get("fieldSelector")
            .and_then(|s| FieldSelector::parse(s).ok()),
        _ => None,
    };
    let name = match &selector {
        Some(s) if rt.name.is_empty() => s.pinned_name().unwrap_or_default(),
        _ => &rt.name,
    };
    let attrs = Attributes {
        verb,
        group: &res.group,
        resource: &res.plural,
        subresource: rt.subresource.as_deref(),
        namespace,
        name,
    };
    let st = cluster.lock_state();
    cluster.authz.authorize(&st.store, who, &attrs)
}

#[allow(clippy::too_many_arguments)]
async fn handle_resource(
    cluster: &Arc<Cluster>,
    verb: &'static str,
    rt: Route,
    query: Query,
    headers: &HeaderMap,
    body: Incoming,
    watch: bool,
    who: Option<&UserInfo>,
) -> Response<Body> {
    // Route to a served resource.
    let res = {
        let st = cluster
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        st.resources
            .iter()
            .find(|r| r.group == rt.group && r.version == rt.version && r.plural == rt.resource)
            .cloned()
    };
    let Some(res) = res else {
        return error_response(&not_found_path());
    };
    if !res.namespaced && !rt.namespace.is_empty() {
        return error_response(&not_found_path());
    }
    let serves_tokens = res.group.is_empty() && res.plural == "serviceaccounts";
    let sub_verbs: &[&str] = match rt.subresource.as_deref() {
        None => &[],
        Some("status") if res.has_status => &["get", "update", "patch"],
        Some("scale") if res.group == "apps" && res.plural == "deployments" => {
            &["get", "update", "patch"]
        }
        Some("token") if serves_tokens => &["create"],
        Some("log") if res.group.is_empty() && res.plural == "pods" => &["get"],
        Some(_) => return error_response(&not_found_path()),
    };
    if rt.subresource.is_some() && !sub_verbs.contains(&verb) {
        return error_response(&SimError::new(
            Reason::MethodNotAllowed,
            "the server does not allow this method on the requested resource",
        ));
    }
    if let Some(who) = who
        && let Err(e) = authorize(cluster, who, verb, &res, &rt, &query)
    {
        return error_response(&e);
    }
    // Faults.
    let latency = cluster.faults.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match cluster.faults.decide(verb) {
        Some(Injected::Error(code)) => {
            let mut e = if code == 503 {
                SimError::new(
                    Reason::ServiceUnavailable,
                    "the server is currently unable to handle the request",
                )
            } else {
                SimError::new(
                    Reason::InternalError,
                    "Internal error occurred: injected fault",
                )
            };
            e.details.code_override = Some(code);
            return error_response(&e);
        }
        Some(Injected::Throttle(secs)) => {
            let mut e = SimError::new(
                Reason::TooManyRequests,
                "Too many requests, please try again later.",
            );
            e.details.retry_after = Some(secs);
            return error_response(&e);
        }
        None => {}
    }
    if rt.subresource.as_deref() == Some("status")
        && matches!(verb, "update" | "patch")
        && cluster.faults.status_conflict()
    {
        return error_response(&SimError::conflict(&res.group, &res.plural, &rt.name));
    }
    // Body.
    let body: Bytes = match http_body_util::Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            let mut e = SimError::new(
                Reason::BadRequest,
                "the request body is too large or could not be read",
            );
            e.details.code_override = Some(413);
            return error_response(&e);
        }
    };
    let req = ApiRequest {
        res: res.clone(),
        namespace: rt.namespace.clone(),
        name: rt.name.clone(),
        subresource: rt.subresource.clone(),
        query,
        content_type: header_str(headers, "content-type").to_string(),
        body,
    };
    if req.subresource.as_deref() == Some("log") {
        let log = {
            let st = cluster.lock_state();
            st.get(&req).and_then(|pod| {
                kinds::pod_log(&pod, req.query.get("container").map(String::as_str))
            })
        };
        return match log {
            Ok(text) => text_response(text),
            Err(e) => error_response(&e),
        };
    }
    let table = wants_table(headers);
    if watch {
        let setup = {
            let st = cluster
                .state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            watch::setup(&st, &req, table)
        };
        return match setup {
            Err(e) => error_response(&e),
            Ok(setup) => {
                let stop = {
                    let t = cluster.faults.watch_token();
                    let s = cluster.shutdown.clone();
                    let combined = CancellationToken::new();
                    let c2 = combined.clone();
                    tokio::spawn(async move {
                        tokio::select! {
                            _ = t.cancelled() => c2.cancel(),
                            _ = s.cancelled() => c2.cancel(),
                            _ = c2.cancelled() => {}
                        }
                    });
                    combined
                };
                let guard = stop.clone().drop_guard();
                let rx = watch::serve(
                    setup,
                    cluster.state.clone(),
                    stop,
                    cluster.faults.watch_deadline(),
                    cluster.open_watches.clone(),
                );
                let stream = futures::StreamExt::map(rx, move |chunk| {
                    let _keep = &guard;
                    chunk
                });
                let mut r = Response::new(Body::from_stream(stream));
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static("application/json"),
                );
                r
            }
        };
    }
    let (result, warnings) = {
        let mut st = cluster
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        st.warnings.clear();
        let result = match verb {
            _ if req.subresource.as_deref() == Some("scale") => st.scale(&req, verb),
            _ if req.subresource.as_deref() == Some("token") => cluster.tokens.request(&st, &req),
            "get" => st.get(&req).map(|o| (200, o)),
            "list" => st.list(&req).map(|o| (200, Arc::new(o))),
            "create" => st.create(&req),
            "update" => st.update(&req),
            "patch" => st.patch(&req),
            "delete" => st.delete(&req),
            "deletecollection" => st.delete_collection(&req),
            _ => Err(SimError::new(Reason::MethodNotAllowed, "unsupported verb")),
        };
        (result, std::mem::take(&mut st.warnings))
    };
    let mut resp = respond(result, verb, &req, &res, table);
    for w in warnings {
        let text = format!("299 - {}", serde_json::Value::String(w));
        if let Ok(v) = header::HeaderValue::from_str(&text) {
            resp.headers_mut().append("warning", v);
        }
    }
    resp
}

fn respond(
    result: Result<(u16, Arc<Value>), SimError>,
    verb: &str,
    req: &ApiRequest,
    res: &crate::registry::ResourceInfo,
    table: bool,
) -> Response<Body> {
    match result {
        Err(e) => error_response(&e),
        Ok((code, obj)) => {
            if table && matches!(verb, "get" | "list") {
                let include = req.query.get("includeObject").map(String::as_str);
                let objs: Vec<Value> = if verb == "list" {
                    obj["items"].as_array().cloned().unwrap_or_default()
                } else {
                    vec![Value::clone(&obj)]
                };
                let mut t = table::table(res, &objs, false, include);
                t["metadata"] = json!({
                    "resourceVersion": obj["metadata"]["resourceVersion"],
                });
                if let Some(c) = obj["metadata"].get("continue") {
                    t["metadata"]["continue"] = c.clone();
                }
                json_response(200, &t)
            } else {
                json_response(code, &obj)
            }
        }
    }
}
