//! `-v`'s Kubernetes half: one debug line per call wi makes to an API server
//! (server, method, path, status, time), as `src/gcp/transport.rs` logs each
//! Google call. A tower layer under kube's client, so every call is seen
//! once, with the status the server really answered; the request's headers
//! (the bearer token) are never read.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use http::{Request, Response};
use tower::{Layer, Service};

/// Wraps a kube client's service stack with [`CallLog`].
#[derive(Clone)]
pub(super) struct CallLogLayer {
    /// The API server, e.g. `https://203.0.113.7`.
    pub server: String,
}

impl<S> Layer<S> for CallLogLayer {
    type Service = CallLog<S>;

    fn layer(&self, inner: S) -> CallLog<S> {
        CallLog {
            inner,
            server: self.server.clone(),
        }
    }
}

/// A service that logs each request it passes on.
#[derive(Clone)]
pub(super) struct CallLog<S> {
    inner: S,
    server: String,
}

impl<S, B, R> Service<Request<B>> for CallLog<S>
where
    S: Service<Request<B>, Response = Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let method = request.method().clone();
        let path = request
            .uri()
            .path_and_query()
            .map_or_else(|| request.uri().path().to_string(), |p| p.to_string());
        let server = self.server.clone();
        let started = Instant::now();
        let answer = self.inner.call(request);
        Box::pin(async move {
            let result = answer.await;
            let status = match &result {
                Ok(response) => response.status().as_u16().to_string(),
                Err(_) => "no answer".to_string(),
            };
            tracing::debug!(
                server = %server,
                method = %method,
                path = %path,
                status = %status,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "kubernetes api"
            );
            result
        })
    }
}
