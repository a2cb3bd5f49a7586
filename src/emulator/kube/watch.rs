//! Watches (`?watch=true`): a stream of `{"type":"ADDED|MODIFIED|DELETED",
//! "object":{...}}` lines, as `kubectl get -w`, `kubectl wait` and kube-rs
//! watchers consume them. Changes fan out through a broadcast channel; a short
//! history lets a client resume from the resourceVersion of its last list,
//! and an older one gets the real `410 Expired` ERROR event.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::objects::{FieldSelector, KubeResource, LabelSelector};
use super::store::Event;
use super::tables;

/// How many past changes a watch can resume from.
const HISTORY: usize = 1000;

/// The change feed of one cluster.
pub(crate) struct Hub {
    tx: broadcast::Sender<Arc<Event>>,
    history: Mutex<History>,
}

#[derive(Default)]
struct History {
    events: VecDeque<Arc<Event>>,
    /// Highest resourceVersion no longer in `events`.
    evicted_up_to: u64,
}

impl Default for Hub {
    fn default() -> Self {
        let (tx, _) = broadcast::channel(1024);
        Self {
            tx,
            history: Mutex::new(History::default()),
        }
    }
}

impl Hub {
    /// Hands changes to watchers. Call with the state lock held, so that
    /// events go out in resourceVersion order.
    pub(crate) fn publish(&self, events: Vec<Event>) {
        let mut h = self.history.lock().unwrap_or_else(|e| e.into_inner());
        for e in events {
            let e = Arc::new(e);
            h.events.push_back(e.clone());
            if h.events.len() > HISTORY
                && let Some(old) = h.events.pop_front()
            {
                h.evicted_up_to = old.rv;
            }
            // No receivers is fine: nobody watches.
            let _ = self.tx.send(e);
        }
    }

    /// A receiver of changes published from now on. Call with the state lock held.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// Changes after `rv`, or `None` when they are no longer known.
    pub(crate) fn since(&self, rv: u64) -> Option<Vec<Arc<Event>>> {
        let h = self.history.lock().unwrap_or_else(|e| e.into_inner());
        if rv < h.evicted_up_to {
            return None;
        }
        Some(h.events.iter().filter(|e| e.rv > rv).cloned().collect())
    }
}

/// What a watch selects.
pub(crate) struct Filter {
    pub resource: KubeResource,
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    /// Send each object as a one-row `Table` (`kubectl get -w`).
    pub table: bool,
}

impl Filter {
    fn matches(&self, e: &Event) -> bool {
        e.resource == self.resource
            && self.namespace.as_deref().is_none_or(|ns| {
                e.object
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    == Some(ns)
            })
            && self.labels.matches(
                e.object
                    .pointer("/metadata/labels")
                    .and_then(Value::as_object),
            )
            && self.fields.matches(self.resource, &e.object)
    }

    fn line(&self, kind: &str, rv: u64, object: &Value) -> Bytes {
        let object = if self.table {
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            tables::table(
                self.resource,
                std::slice::from_ref(object),
                &rv.to_string(),
                now,
            )
        } else {
            object.clone()
        };
        let mut text = json!({"type": kind, "object": object}).to_string();
        text.push('\n');
        Bytes::from(text)
    }
}

/// The opening of a watch: what to send first and where the live feed starts.
pub(crate) enum Start {
    /// Synthetic `ADDED` events for the current objects.
    Initial(Vec<Value>),
    /// Replayed changes after the requested resourceVersion.
    Replay(Vec<Arc<Event>>),
    /// The requested resourceVersion is gone: one ERROR event, then the end.
    Expired { requested: u64, current: u64 },
}

/// The response body of a watch.
pub(crate) fn body(
    filter: Filter,
    start: Start,
    rx: broadcast::Receiver<Arc<Event>>,
    start_rv: u64,
    timeout: std::time::Duration,
) -> Body {
    let mut first: VecDeque<Bytes> = VecDeque::new();
    let mut done = false;
    match start {
        Start::Initial(objects) => {
            for o in objects {
                let rv = o
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(start_rv);
                first.push_back(filter.line("ADDED", rv, &o));
            }
        }
        Start::Replay(events) => {
            for e in events.iter().filter(|e| filter.matches(e)) {
                first.push_back(filter.line(e.kind, e.rv, &e.object));
            }
        }
        Start::Expired { requested, current } => {
            let status = json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": format!("too old resource version: {requested} ({current})"),
                "reason": "Expired", "code": 410,
            });
            let mut text = json!({"type": "ERROR", "object": status}).to_string();
            text.push('\n');
            first.push_back(Bytes::from(text));
            done = true;
        }
    }
    let deadline = tokio::time::Instant::now() + timeout;
    struct St {
        first: VecDeque<Bytes>,
        done: bool,
        rx: broadcast::Receiver<Arc<Event>>,
        last_rv: u64,
        filter: Filter,
        deadline: tokio::time::Instant,
    }
    let st = St {
        first,
        done,
        rx,
        last_rv: start_rv,
        filter,
        deadline,
    };
    let stream = futures::stream::unfold(st, |mut st| async move {
        if let Some(b) = st.first.pop_front() {
            return Some((Ok::<Bytes, Infallible>(b), st));
        }
        if st.done {
            return None;
        }
        loop {
            match tokio::time::timeout_at(st.deadline, st.rx.recv()).await {
                // Timeout, closed, or too slow to keep up: end the watch; the
                // client re-lists and watches again, as with a real server.
                Err(_) | Ok(Err(_)) => return None,
                Ok(Ok(e)) => {
                    if e.rv <= st.last_rv || !st.filter.matches(&e) {
                        continue;
                    }
                    st.last_rv = e.rv;
                    let line = st.filter.line(e.kind, e.rv, &e.object);
                    return Some((Ok(line), st));
                }
            }
        }
    });
    Body::from_stream(stream)
}
