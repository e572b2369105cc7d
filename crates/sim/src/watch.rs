//! Watch streams: newline-delimited JSON events with resume by resourceVersion, bookmarks,
//! timeouts, 410 Expired, and dropped streams as fault injection.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::TryRecvError;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::api::{ApiRequest, State};
use crate::error::SimError;
use crate::registry::ResourceInfo;
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{Change, EventType};
use crate::table;

/// How often a watch that allows bookmarks gets one.
pub const BOOKMARK_INTERVAL: Duration = Duration::from_secs(1);

/// The most bytes of waiting events a watch stream gathers into one chunk.
const MAX_CHUNK: usize = 256 * 1024;

/// What one watch stream needs to filter and render changes.
struct Filter {
    res: ResourceInfo,
    storage: String,
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
    table: bool,
}

impl Filter {
    fn matches(&self, obj: &Value) -> bool {
        self.labels.matches(obj) && self.fields.matches(obj)
    }

    /// The event a change produces on this stream, if any.
    fn event(&self, c: &Change) -> Option<(EventType, Arc<Value>)> {
        if c.storage != self.storage {
            return None;
        }
        if let Some(ns) = &self.namespace
            && *ns != c.namespace
        {
            return None;
        }
        let now = self.matches(&c.object);
        match c.type_ {
            EventType::Added | EventType::Deleted => now.then(|| (c.type_, c.object.clone())),
            EventType::Modified => {
                let before = c.prev.as_ref().is_some_and(|p| self.matches(p));
                match (before, now) {
                    (true, true) => Some((EventType::Modified, c.object.clone())),
                    (false, true) => Some((EventType::Added, c.object.clone())),
                    (true, false) => Some((EventType::Deleted, c.object.clone())),
                    (false, false) => None,
                }
            }
        }
    }

    fn render(&self, type_: &str, obj: &Value, first: &mut bool) -> Bytes {
        let api_version = self.res.api_version();
        if !self.table
            && obj.get("apiVersion").and_then(Value::as_str) == Some(api_version.as_str())
        {
            // The common case: serialize the stored object as it is, without a copy.
            let mut line = Vec::with_capacity(256);
            line.extend_from_slice(b"{\"type\":");
            let _ = serde_json::to_writer(&mut line, type_);
            line.extend_from_slice(b",\"object\":");
            let _ = serde_json::to_writer(&mut line, obj);
            line.extend_from_slice(b"}\n");
            return Bytes::from(line);
        }
        let mut o = obj.clone();
        o["apiVersion"] = Value::String(api_version);
        let object = if self.table && type_ != "BOOKMARK" && type_ != "ERROR" {
            let t = table::table(&self.res, std::slice::from_ref(&o), !*first, None);
            *first = false;
            t
        } else {
            o
        };
        let mut line = json!({"type": type_, "object": object}).to_string();
        line.push('\n');
        Bytes::from(line)
    }
}

/// Parameters that shape one watch.
pub struct WatchSetup {
    filter: Filter,
    initial: Vec<Value>,
    pending: Vec<Arc<Change>>,
    rx: Option<broadcast::Receiver<Arc<Change>>>,
    start_rv: u64,
    expired: bool,
    bookmarks: bool,
    send_initial_end: bool,
    timeout: Duration,
}

/// Prepare a watch under the state lock: the initial events and the subscription, with no
/// gap between them.
pub fn setup(st: &State, req: &ApiRequest, table: bool) -> Result<WatchSetup, SimError> {
    let res = req.res.clone();
    let labels = LabelSelector::parse(req.query.get("labelSelector").map_or("", |s| s))
        .map_err(SimError::bad_request)?;
    let fields = FieldSelector::parse(req.query.get("fieldSelector").map_or("", |s| s))
        .map_err(SimError::bad_request)?;
    let timeout = match req.query.get("timeoutSeconds").map(String::as_str) {
        None | Some("") => Duration::from_secs(1800),
        Some(t) => Duration::from_secs(t.parse().map_err(|_| {
            SimError::bad_request(format!("invalid value for timeoutSeconds: \"{t}\""))
        })?),
    };
    let filter = Filter {
        storage: res.storage_key(),
        namespace: (res.namespaced && !req.namespace.is_empty()).then(|| req.namespace.clone()),
        res,
        labels,
        fields,
        table,
    };
    let bookmarks = req
        .query
        .get("allowWatchBookmarks")
        .is_some_and(|v| v == "true");
    let send_initial = req
        .query
        .get("sendInitialEvents")
        .is_some_and(|v| v == "true");
    let rv_param = req
        .query
        .get("resourceVersion")
        .cloned()
        .unwrap_or_default();
    let current = st.store.rv();
    let mut setup = WatchSetup {
        initial: Vec::new(),
        pending: Vec::new(),
        rx: None,
        start_rv: current,
        expired: false,
        bookmarks,
        send_initial_end: send_initial && bookmarks,
        timeout,
        filter,
    };
    if rv_param.is_empty() || rv_param == "0" || send_initial {
        setup.initial = st
            .store
            .list(&setup.filter.storage, setup.filter.namespace.as_deref())
            .filter(|o| setup.filter.matches(o))
            .cloned()
            .collect();
        setup.rx = Some(st.store.subscribe());
        return Ok(setup);
    }
    let rv: u64 = rv_param
        .parse()
        .map_err(|_| SimError::bad_request(format!("invalid resource version: \"{rv_param}\"")))?;
    if st.store.too_old(&setup.filter.storage, rv) {
        setup.expired = true;
        return Ok(setup);
    }
    match st.store.since(rv) {
        None => setup.expired = true,
        Some(changes) => {
            setup.pending = changes;
            setup.start_rv = rv.max(st.store.compacted());
            setup.rx = Some(st.store.subscribe());
        }
    }
    Ok(setup)
}

/// Serve a prepared watch: returns the body stream; the work happens in a spawned task.
pub fn serve(
    setup: WatchSetup,
    state: crate::api::SharedState,
    stop: CancellationToken,
    drop_after: Option<Duration>,
    open: Arc<std::sync::atomic::AtomicUsize>,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let (tx, out) = mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    open.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    tokio::spawn(async move {
        let _open = OpenGuard(open);
        let WatchSetup {
            filter,
            initial,
            pending,
            rx,
            start_rv,
            expired,
            bookmarks,
            send_initial_end,
            timeout,
        } = setup;
        let mut first = true;
        if expired {
            let status = SimError::expired("too old resource version").to_status();
            let _ = tx
                .send(Ok(filter.render("ERROR", &status, &mut first)))
                .await;
            return;
        }
        let Some(mut rx) = rx else { return };
        let mut last_rv = start_rv;
        for obj in &initial {
            if tx
                .send(Ok(filter.render("ADDED", obj, &mut first)))
                .await
                .is_err()
            {
                return;
            }
        }
        if send_initial_end {
            let bm = json!({"kind": filter.res.kind, "apiVersion": filter.res.api_version(),
                "metadata": {"resourceVersion": last_rv.to_string(),
                    "annotations": {"k8s.io/initial-events-end": "true"}}});
            if tx
                .send(Ok(filter.render("BOOKMARK", &bm, &mut first)))
                .await
                .is_err()
            {
                return;
            }
        }
        for c in &pending {
            last_rv = last_rv.max(c.rv);
            if let Some((t, obj)) = filter.event(c)
                && tx
                    .send(Ok(filter.render(t.as_str(), &obj, &mut first)))
                    .await
                    .is_err()
            {
                return;
            }
        }
        let limit = drop_after.map_or(timeout, |d| d.min(timeout));
        let deadline = tokio::time::sleep(limit);
        tokio::pin!(deadline);
        let mut tick = tokio::time::interval(BOOKMARK_INTERVAL);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                // The client went away: stop now rather than at the timeout.
                _ = tx.closed() => return,
                _ = &mut deadline => {
                    if bookmarks && drop_after.is_none_or(|d| d >= timeout) {
                        let bm = bookmark(&filter, last_rv);
                        let _ = tx.send(Ok(filter.render("BOOKMARK", &bm, &mut first))).await;
                    }
                    return;
                }
                _ = tick.tick(), if bookmarks => {
                    let seen = {
                        let st = state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                        st.store.rv()
                    };
                    // Everything waiting goes out before the bookmark that claims it.
                    loop {
                        let (chunk, left) = gather(None, &mut rx, &filter, &mut first, &mut last_rv);
                        if !chunk.is_empty() && tx.send(Ok(Bytes::from(chunk))).await.is_err() {
                            return;
                        }
                        match left {
                            Left::Empty => break,
                            Left::More => {}
                            Left::Ended => return,
                        }
                    }
                    last_rv = last_rv.max(seen);
                    let bm = bookmark(&filter, last_rv);
                    if tx.send(Ok(filter.render("BOOKMARK", &bm, &mut first))).await.is_err() {
                        return;
                    }
                }
                msg = rx.recv() => match msg {
                    Ok(c) => {
                        let (chunk, left) = gather(Some(c), &mut rx, &filter, &mut first, &mut last_rv);
                        if !chunk.is_empty() && tx.send(Ok(Bytes::from(chunk))).await.is_err() {
                            return;
                        }
                        // More waiting is read at the next turn of the loop.
                        if left == Left::Ended {
                            return;
                        }
                    }
                    // The client reads slower than the cluster changes. Like kube-apiserver,
                    // which closes an unresponsive watcher, end the stream without an error:
                    // the client resumes from the last version it read, still inside the
                    // history, and gets 410 Expired only if it has fallen out of it.
                    Err(RecvError::Lagged(_)) => return,
                    Err(RecvError::Closed) => return,
                },
            }
        }
    });
    futures::stream::unfold(
        out,
        |mut rx| async move { rx.recv().await.map(|c| (c, rx)) },
    )
}

/// What [`gather`] left on the subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Left {
    /// Nothing waiting.
    Empty,
    /// More waiting than fit in one chunk.
    More,
    /// The subscription ended (the reader lagged, or the store is gone): end the watch as
    /// `RecvError` does in [`serve`], after sending what was gathered.
    Ended,
}

/// Renders `received` and the changes already waiting on `rx` (up to [`MAX_CHUNK`] bytes)
/// into one chunk, as kube-apiserver's watch server flushes only once its queue is empty:
/// one write instead of one per event when writes come in bursts. `last_rv` follows every
/// change read.
fn gather(
    received: Option<Arc<Change>>,
    rx: &mut broadcast::Receiver<Arc<Change>>,
    filter: &Filter,
    first: &mut bool,
    last_rv: &mut u64,
) -> (Vec<u8>, Left) {
    let mut chunk = Vec::new();
    let mut next = received;
    loop {
        if let Some(c) = next.take() {
            *last_rv = (*last_rv).max(c.rv);
            if let Some((t, obj)) = filter.event(&c) {
                chunk.extend_from_slice(&filter.render(t.as_str(), &obj, first));
            }
        }
        if chunk.len() >= MAX_CHUNK {
            return (chunk, Left::More);
        }
        match rx.try_recv() {
            Ok(c) => next = Some(c),
            Err(TryRecvError::Empty) => return (chunk, Left::Empty),
            Err(TryRecvError::Lagged(_) | TryRecvError::Closed) => return (chunk, Left::Ended),
        }
    }
}

fn bookmark(filter: &Filter, rv: u64) -> Value {
    json!({
        "kind": filter.res.kind,
        "apiVersion": filter.res.api_version(),
        "metadata": {"resourceVersion": rv.to_string()},
    })
}

/// Counts a watch as open while its task runs.
struct OpenGuard(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}
