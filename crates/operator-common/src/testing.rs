//! A scripted API server for reconciliation tests (the `testing` feature): a [`kube::Client`]
//! whose every request must be the next one of a script, in order, and gets the script's answer.
//! A request the script does not expect, one that differs from it, or a script left unfinished
//! fails the test, so a test states exactly what a reconciliation reads and writes.
//!
//! ```text
//! let (client, api) = scripted();
//! let script = vec![
//!     Exchange::patch("/api/v1/namespaces/ns/services/hs").reply(422, api_status(422, "Invalid", "...")),
//! ];
//! let result = api.play(script, reconcile(object, context(client))).await;
//! ```

use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use kube::runtime::reflector::store::Writer;
use kube::runtime::reflector::{Lookup, Store};
use kube::runtime::watcher;
use serde_json::{Value, json};

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// A check of a request's JSON body; it panics when the body is not as expected.
type Check = Box<dyn Fn(&Value) + Send>;

/// One request the script expects and the answer it gets.
pub struct Exchange {
    method: Method,
    path: String,
    checks: Vec<Check>,
    status: StatusCode,
    body: Value,
}

impl Exchange {
    fn new(method: Method, path: &str) -> Self {
        Self {
            method,
            path: path.to_owned(),
            checks: Vec::new(),
            status: StatusCode::OK,
            body: json!({}),
        }
    }

    /// A GET of `path` (without the query).
    pub fn get(path: &str) -> Self {
        Self::new(Method::GET, path)
    }

    /// A PATCH of `path`: server-side apply or merge patch.
    pub fn patch(path: &str) -> Self {
        Self::new(Method::PATCH, path)
    }

    /// A POST to `path`: a create.
    pub fn post(path: &str) -> Self {
        Self::new(Method::POST, path)
    }

    /// A DELETE of `path`.
    pub fn delete(path: &str) -> Self {
        Self::new(Method::DELETE, path)
    }

    /// Checks the request's JSON body with `check` (which panics when it does not hold).
    pub fn body(mut self, check: impl Fn(&Value) + Send + 'static) -> Self {
        self.checks.push(Box::new(check));
        self
    }

    /// Keeps a copy of the request's JSON body in `bodies`.
    pub fn capture(self, bodies: &Bodies) -> Self {
        let bodies = bodies.clone();
        self.body(move |body| bodies.lock().expect("not poisoned").push(body.clone()))
    }

    /// Answers `status` with `body` (200 with `{}` when not called).
    pub fn reply(mut self, status: u16, body: Value) -> Self {
        self.status = StatusCode::from_u16(status).expect("a valid HTTP status");
        self.body = body;
        self
    }

    /// Answers 200 with the request's own body, as the API server answers an apply or create
    /// that succeeded.
    pub fn echo(self) -> Self {
        self.reply(200, Value::Null)
    }
}

/// Request bodies kept by [`Exchange::capture`].
pub type Bodies = Arc<Mutex<Vec<Value>>>;

/// A cache holding `objects`, as a synced reflector would.
pub fn store_of<K>(objects: impl IntoIterator<Item = K>) -> Store<K>
where
    K: Lookup + Clone + 'static,
    K::DynamicType: Default + Eq + Hash + Clone,
{
    let mut writer = Writer::default();
    writer.apply_watcher_event(&watcher::Event::Init);
    for object in objects {
        writer.apply_watcher_event(&watcher::Event::InitApply(object));
    }
    writer.apply_watcher_event(&watcher::Event::InitDone);
    writer.as_reader()
}

/// The API server's answer to a refused request.
pub fn api_status(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    })
}

/// The other end of a scripted client.
pub struct ScriptedApi {
    handle: Handle,
}

/// A client talking to a script.
pub fn scripted() -> (kube::Client, ScriptedApi) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    (
        kube::Client::new(service, "default"),
        ScriptedApi { handle },
    )
}

/// The running script; [`Server::finished`] checks it was played to the end and nothing more
/// was asked.
pub struct Server {
    task: tokio::task::JoinHandle<ScriptedApi>,
}

impl ScriptedApi {
    /// Runs `work` against `script`: returns its output once the whole script was played and no
    /// request came after it.
    pub async fn play<T>(self, script: Vec<Exchange>, work: impl Future<Output = T>) -> T {
        let server = self.serve(script);
        let (output, ()) = tokio::join!(
            tokio::time::timeout(Duration::from_secs(10), work),
            server.finished()
        );
        output.expect("the work finished in time")
    }

    /// Plays `script` in the background.
    pub fn serve(mut self, script: Vec<Exchange>) -> Server {
        let task = tokio::spawn(async move {
            for (index, exchange) in script.into_iter().enumerate() {
                self.answer(index, exchange).await;
            }
            self
        });
        Server { task }
    }

    async fn answer(&mut self, index: usize, exchange: Exchange) {
        let next = tokio::time::timeout(Duration::from_secs(5), self.handle.next_request()).await;
        let Ok(Some((request, respond))) = next else {
            panic!(
                "request {index} never came: expected {} {}",
                exchange.method, exchange.path
            );
        };
        let (method, path) = (request.method().clone(), request.uri().path().to_owned());
        assert_eq!(
            (&method, path.as_str()),
            (&exchange.method, exchange.path.as_str()),
            "request {index} ({method} {}) is not the one the script expects",
            request.uri()
        );
        let bytes = request
            .into_body()
            .collect_bytes()
            .await
            .expect("read the request body");
        let body: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("a JSON request body")
        };
        for check in &exchange.checks {
            check(&body);
        }
        let answer = if exchange.body.is_null() {
            body
        } else {
            exchange.body
        };
        respond.send_response(
            Response::builder()
                .status(exchange.status)
                .body(Body::from(serde_json::to_vec(&answer).expect("JSON")))
                .expect("a response"),
        );
    }
}

impl Server {
    /// Waits for the whole script to be played, then checks that no request came after it.
    pub async fn finished(self) {
        let mut api = self.task.await.expect("the script panicked");
        let extra =
            tokio::time::timeout(Duration::from_millis(100), api.handle.next_request()).await;
        if let Ok(Some((request, _))) = extra {
            panic!(
                "unexpected request after the script: {} {}",
                request.method(),
                request.uri()
            );
        }
    }
}
