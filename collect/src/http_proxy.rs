//! `collect proxy --http`: a reverse proxy in front of a Streamable HTTP MCP server.
//!
//! Requests go to the upstream with their path, query, headers and body unchanged; answers
//! come back the same way, JSON bodies whole and SSE streams chunk by chunk as they arrive.
//! Beside the traffic the proxy records, per exchange, the client's address, user agent,
//! `Origin`, the HTTP status, the session id, and the bearer token as its keyed fingerprint
//! and unverified claims. The raw `Authorization` value is used for the fingerprint and
//! forwarded upstream, and is in no event and no log line.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Request, Response, StatusCode};
use bytes::Bytes;
use futures::StreamExt;
use mcpsiem_event::token::TokenFingerprinter;
use mcpsiem_event::{Direction, EventId, EventKind, OwnedEvent, Timestamp};

use super::capture::Capture;
use super::observer::{Observer, Seen, ServerIdentity};
use super::sink::EventSink;
use super::sse::SseParser;
use super::token::TokenInfo;

/// Largest request or JSON response body the proxy buffers and inspects.
const MAX_BODY_BYTES: usize = 16 << 20;
/// Sessions whose learned state (client and server names) is kept; past it the oldest go.
const MAX_SESSIONS: usize = 10_000;
const SESSION_HEADER: &str = "mcp-session-id";
/// Where OAuth protected-resource metadata (RFC 9728) is served; its `resource` is the
/// canonical URI the server's tokens name as their audience.
const RESOURCE_METADATA_PATH: &str = "/.well-known/oauth-protected-resource";
/// Longest resource URI learned from metadata: it is copied into every later event.
const MAX_RESOURCE_URI_BYTES: usize = 2048;
/// The attribute holding the canonical resource URI (docs/collect.md).
pub const RESOURCE_URI_ATTRIBUTE: &str = "mcp.server.resource_uri";
const PROTOCOL_HEADER: &str = "mcp-protocol-version";
/// Headers that belong to one connection, not to the message (RFC 9110 §7.6.1).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];

#[derive(Debug, thiserror::Error)]
pub enum HttpProxyError {
    #[error("--upstream {url}: {reason}")]
    Upstream { url: String, reason: String },
    #[error("cannot listen on {addr}: {source}; is the port taken?")]
    Listen { addr: String, source: std::io::Error },
    #[error("the proxy stopped: {0}")]
    Serve(std::io::Error),
}

/// The HTTP proxy as a collector: `collect proxy --http --listen ADDR --upstream URL`,
/// until a stop is requested.
pub struct HttpProxyCollector {
    pub listen: String,
    pub upstream: String,
    /// The canonical resource URI; empty: learned from the protected-resource metadata.
    pub resource_uri: String,
    pub template: OwnedEvent,
    pub capture: Capture,
    pub fingerprinter: TokenFingerprinter,
}

impl crate::harness::Collector for HttpProxyCollector {
    type Summary = ();
    type Error = HttpProxyError;

    fn running(&self) -> crate::harness::Running {
        crate::harness::Running::default()
    }

    async fn run(self, context: crate::harness::Context) -> Result<(), HttpProxyError> {
        let proxy = HttpProxy::new(&self.upstream, self.template, self.capture, self.fingerprinter, context.sink)?
            .with_resource_uri(&self.resource_uri);
        let listener = tokio::net::TcpListener::bind(&self.listen)
            .await
            .map_err(|source| HttpProxyError::Listen { addr: self.listen.clone(), source })?;
        tracing::info!(listen = %self.listen, upstream = %self.upstream, "proxying MCP over HTTP");
        Arc::new(proxy).serve(listener, mcpsiem_runtime::stop::shutdown_signal()).await
    }
}

/// What the proxy needs for each exchange.
pub struct HttpProxy {
    upstream: reqwest::Url,
    client: reqwest::Client,
    template: OwnedEvent,
    capture: Capture,
    fingerprinter: TokenFingerprinter,
    sink: EventSink,
    sessions: Mutex<Sessions>,
    /// The upstream's name and version as last announced. A stateless (2026-07-28) exchange
    /// has its own observer, and its server may name itself only in some results: what one
    /// exchange learned names the server in the others.
    server: Mutex<ServerIdentity>,
    /// The canonical resource URI, and whether it was configured (a configured one is not
    /// replaced by what the metadata says).
    resource: Mutex<Option<String>>,
    resource_configured: bool,
}

/// Observers of live sessions, oldest first for eviction.
#[derive(Default)]
struct Sessions {
    by_id: HashMap<String, Arc<Mutex<Observer>>>,
    order: std::collections::VecDeque<String>,
}

impl HttpProxy {
    pub fn new(
        upstream: &str,
        template: OwnedEvent,
        capture: Capture,
        fingerprinter: TokenFingerprinter,
        sink: EventSink,
    ) -> Result<Self, HttpProxyError> {
        let bad = |reason: String| HttpProxyError::Upstream { url: upstream.to_owned(), reason };
        let upstream = reqwest::Url::parse(upstream).map_err(|e| bad(e.to_string()))?;
        if !matches!(upstream.scheme(), "http" | "https") {
            return Err(bad("use an http:// or https:// URL".into()));
        }
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| bad(e.to_string()))?;
        let mut template = template;
        template.transport = Some("streamable_http".into());
        template.network_transport = Some("tcp".into());
        template.server_address = Some(upstream.as_str().to_owned().into());
        Ok(Self {
            upstream,
            client,
            template,
            capture,
            fingerprinter,
            sink,
            sessions: Mutex::default(),
            server: Mutex::default(),
            resource: Mutex::default(),
            resource_configured: false,
        })
    }

    /// Sets the canonical resource URI clients use for the upstream; empty leaves it to be
    /// learned from the protected-resource metadata.
    pub fn with_resource_uri(mut self, uri: &str) -> Self {
        if !uri.is_empty() {
            self.resource = Mutex::new(Some(uri.to_owned()));
            self.resource_configured = true;
        }
        self
    }

    fn resource_uri(&self) -> Option<String> {
        self.resource.lock().expect("not poisoned").clone()
    }

    /// Learns the canonical resource URI from a protected-resource metadata answer.
    fn learn_resource(&self, path: &str, status: StatusCode, body: &[u8]) {
        if self.resource_configured {
            return;
        }
        if let Some(resource) = metadata_resource(path, status, body) {
            let mut known = self.resource.lock().expect("not poisoned");
            if known.as_deref() != Some(resource.as_str()) {
                tracing::info!(%resource, "learned the MCP server's resource URI from its metadata");
                *known = Some(resource);
            }
        }
    }

    /// Serves until `shutdown` resolves.
    pub async fn serve(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), HttpProxyError> {
        let app = axum::Router::new().fallback(forward).with_state(self.clone());
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(HttpProxyError::Serve)?;
        self.finish_sessions();
        Ok(())
    }

    /// Records the requests still waiting in every session.
    fn finish_sessions(&self) {
        let sessions = std::mem::take(&mut *self.sessions.lock().expect("not poisoned"));
        let mut events = Vec::new();
        for observer in sessions.by_id.into_values() {
            observer.lock().expect("not poisoned").finish(&mut events);
        }
        self.sink.send_all(&events);
    }

    fn session(&self, id: &str) -> Option<Arc<Mutex<Observer>>> {
        self.sessions.lock().expect("not poisoned").by_id.get(id).cloned()
    }

    fn remember_session(&self, id: String, observer: Arc<Mutex<Observer>>) {
        let mut sessions = self.sessions.lock().expect("not poisoned");
        if sessions.by_id.insert(id.clone(), observer).is_none() {
            sessions.order.push_back(id);
        }
        while sessions.by_id.len() > MAX_SESSIONS {
            let Some(oldest) = sessions.order.pop_front() else { break };
            sessions.by_id.remove(&oldest);
        }
    }

    fn forget_session(&self, id: &str) -> Option<Arc<Mutex<Observer>>> {
        let mut sessions = self.sessions.lock().expect("not poisoned");
        sessions.order.retain(|s| s != id);
        sessions.by_id.remove(id)
    }

    fn new_observer(&self) -> Arc<Mutex<Observer>> {
        let mut observer = Observer::new(self.template.clone(), self.capture.clone());
        observer.assume_server_identity(&self.server.lock().expect("not poisoned"));
        Arc::new(Mutex::new(observer))
    }

    /// Keeps what `observer` learned of the upstream's identity for the next exchanges.
    fn learn_server(&self, observer: &Observer) {
        let identity = observer.server_identity();
        if identity.name.is_some() {
            let mut known = self.server.lock().expect("not poisoned");
            if *known != identity {
                *known = identity;
            }
        }
    }

    fn upstream_url(&self, uri: &axum::http::Uri) -> reqwest::Url {
        let mut url = self.upstream.clone();
        url.set_path(uri.path());
        url.set_query(uri.query());
        url
    }

    fn ship(&self, events: &[OwnedEvent]) {
        self.sink.send_all(events);
    }
}

/// The exchange's own fields: who called, how, with which token.
struct Exchange {
    client_address: String,
    user_agent: Option<String>,
    origin: Option<String>,
    method: String,
    session_id: Option<String>,
    protocol_version: Option<String>,
    token: Option<TokenInfo>,
    resource_uri: Option<String>,
}

impl Exchange {
    fn read(proxy: &HttpProxy, peer: SocketAddr, method: &str, headers: &HeaderMap) -> Self {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        Self {
            client_address: peer.ip().to_string(),
            user_agent: header("user-agent"),
            origin: header("origin"),
            method: method.to_owned(),
            session_id: header(SESSION_HEADER),
            protocol_version: header(PROTOCOL_HEADER),
            token: headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| TokenInfo::from_authorization(v, &proxy.fingerprinter)),
            resource_uri: proxy.resource_uri(),
        }
    }

    /// Sets this exchange's fields on the session's template.
    fn apply(&self, e: &mut OwnedEvent, status: Option<u16>) {
        e.client_address = Some(self.client_address.clone().into());
        e.user_agent = self.user_agent.clone().map(Into::into);
        e.origin = self.origin.clone().map(Into::into);
        e.http_method = Some(self.method.clone().into());
        if self.session_id.is_some() {
            e.session_id = self.session_id.clone().map(Into::into);
        }
        if let Some(version) = &self.protocol_version {
            e.protocol_version = Some(version.clone().into());
        }
        e.http_status = status.map(i64::from);
        if let Some(uri) = &self.resource_uri {
            e.attributes.insert(RESOURCE_URI_ATTRIBUTE, &serde_json::Value::String(uri.clone()));
        }
        match &self.token {
            Some(token) => token.apply(e),
            None => clear_token(e),
        }
    }
}

fn clear_token(e: &mut OwnedEvent) {
    e.token_fingerprint = None;
    e.token_subject = None;
    e.token_issuer = None;
    e.token_audience = None;
    e.token_client_id = None;
    e.token_id = None;
    e.token_scopes = None;
    e.token_expires = None;
    e.token_issued = None;
}

/// The `resource` of a successful protected-resource metadata answer (RFC 9728).
fn metadata_resource(path: &str, status: StatusCode, body: &[u8]) -> Option<String> {
    if !status.is_success() || !path.starts_with(RESOURCE_METADATA_PATH) {
        return None;
    }
    let metadata = serde_json::from_slice::<serde_json::Value>(body).ok()?;
    let resource = metadata.get("resource")?.as_str()?;
    (!resource.is_empty() && resource.len() <= MAX_RESOURCE_URI_BYTES).then(|| resource.to_owned())
}

fn plain(status: StatusCode, message: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .body(Body::from(message.to_owned()))
        .expect("a static response is valid")
}

fn is_json_rpc(body: &[u8]) -> bool {
    matches!(serde_json::from_slice::<serde_json::Value>(body),
        Ok(serde_json::Value::Object(m)) if m.contains_key("jsonrpc"))
        || matches!(serde_json::from_slice::<serde_json::Value>(body), Ok(serde_json::Value::Array(a)) if !a.is_empty())
}

/// The JSON-RPC method of a request body, for an `http` event of a refused exchange.
fn body_method(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let first = match &value {
        serde_json::Value::Array(items) => items.first()?,
        other => other,
    };
    first.get("method")?.as_str().map(str::to_owned)
}

async fn forward(
    State(proxy): State<Arc<HttpProxy>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request<Body>,
) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let exchange = Exchange::read(&proxy, peer, parts.method.as_str(), &parts.headers);
    let started = std::time::Instant::now();
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(_) => {
            refused(&proxy, &exchange, 413, None, "request_too_large", started);
            return plain(StatusCode::PAYLOAD_TOO_LARGE, "the MCP request is larger than the proxy accepts (16 MiB)");
        }
    };

    // The request is observed once the answer's status is known, but timed from here.
    let seen = Seen::now();
    let mut upstream = proxy.client.request(parts.method.clone(), proxy.upstream_url(&parts.uri));
    for (name, value) in &parts.headers {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            upstream = upstream.header(name, value);
        }
    }
    let response = match upstream.body(body.clone()).send().await {
        Ok(response) => response,
        Err(error) => {
            tracing::warn!(error = %error.without_url(), "the MCP server cannot be reached");
            refused(&proxy, &exchange, 502, body_method(&body), "upstream_unreachable", started);
            return plain(StatusCode::BAD_GATEWAY, "the MCP server behind this proxy cannot be reached");
        }
    };
    let status = response.status();
    let response_headers = response.headers().clone();
    let content_type =
        response_headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    let assigned_session = response_headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned);

    // The session this exchange belongs to: the one named by the client, else a new one
    // (kept when the server assigns an id, as `initialize` does).
    let known = exchange.session_id.as_deref().and_then(|id| proxy.session(id));
    let observer = match (&known, &assigned_session) {
        (Some(observer), _) => observer.clone(),
        (None, Some(id)) => {
            let observer = proxy.new_observer();
            proxy.remember_session(id.clone(), observer.clone());
            observer
        }
        (None, None) => match exchange.session_id.clone() {
            // A session that began before this proxy started.
            Some(id) => {
                let observer = proxy.new_observer();
                proxy.remember_session(id, observer.clone());
                observer
            }
            None => proxy.new_observer(),
        },
    };
    let per_exchange = exchange.session_id.is_none() && assigned_session.is_none();

    let is_sse = content_type.starts_with("text/event-stream");
    let (response_body, stream) = if is_sse {
        (None, Some(response))
    } else {
        match response.bytes().await {
            Ok(bytes) => (Some(bytes), None),
            Err(error) => {
                tracing::warn!(error = %error.without_url(), "reading the MCP server's answer failed");
                refused(&proxy, &exchange, 502, body_method(&body), "upstream_reset", started);
                return plain(StatusCode::BAD_GATEWAY, "the MCP server's answer was cut off");
            }
        }
    };

    if let Some(answer) = &response_body {
        proxy.learn_resource(parts.uri.path(), status, answer);
    }

    // Refused before JSON-RPC (401, 403, 404 of an expired session…): one `http` event.
    let answered_in_json_rpc = is_sse || response_body.as_deref().is_some_and(is_json_rpc);
    if status.as_u16() >= 400 && !answered_in_json_rpc {
        refused(&proxy, &exchange, status.as_u16(), body_method(&body), &status.as_u16().to_string(), started);
    } else {
        let mut events = Vec::new();
        let mut observer = observer.lock().expect("not poisoned");
        {
            let template = observer.template_mut();
            exchange.apply(template, Some(status.as_u16()));
            if let Some(id) = &assigned_session {
                template.session_id = Some(id.clone().into());
            }
        }
        if parts.method == axum::http::Method::POST {
            observer.observe_at(Direction::ClientToServer, &body, seen, &mut events);
        }
        // A GET's plain answer (OAuth metadata a client reads before it speaks MCP) is not
        // MCP traffic; a POST's answer always is, malformed or not.
        if let Some(answer) =
            response_body.as_deref().filter(|a| parts.method == axum::http::Method::POST || is_json_rpc(a))
        {
            observer.observe(Direction::ServerToClient, answer, &mut events);
        }
        if per_exchange && !is_sse {
            observer.finish(&mut events);
        }
        proxy.learn_server(&observer);
        drop(observer);
        proxy.ship(&events);
    }
    if parts.method == axum::http::Method::DELETE
        && status.is_success()
        && let Some(ended) = exchange.session_id.as_deref().and_then(|id| proxy.forget_session(id))
    {
        let mut events = Vec::new();
        ended.lock().expect("not poisoned").finish(&mut events);
        proxy.ship(&events);
    }

    let mut builder = Response::builder().status(status);
    for (name, value) in &response_headers {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            builder = builder.header(name, value);
        }
    }
    let body = match (response_body, stream) {
        (Some(bytes), _) => Body::from(bytes),
        (None, Some(stream)) => Body::from_stream(observe_stream(proxy.clone(), observer, per_exchange, stream)),
        (None, None) => Body::empty(),
    };
    builder.body(body).unwrap_or_else(|_| plain(StatusCode::BAD_GATEWAY, "the MCP server sent invalid headers"))
}

/// Forwards an SSE answer chunk by chunk, observing each event's data as it passes.
fn observe_stream(
    proxy: Arc<HttpProxy>,
    observer: Arc<Mutex<Observer>>,
    per_exchange: bool,
    response: reqwest::Response,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let mut parser = SseParser::new(MAX_BODY_BYTES);
    let on_end = EndOfStream { proxy: proxy.clone(), observer: observer.clone(), per_exchange };
    response.bytes_stream().map(move |chunk| {
        let _keep_until_the_stream_ends = &on_end;
        let chunk = chunk.map_err(|e| std::io::Error::other(e.without_url()))?;
        let mut events = Vec::new();
        {
            let mut observer = observer.lock().expect("not poisoned");
            for data in parser.push(&chunk) {
                match data {
                    Ok(data) => observer.observe(Direction::ServerToClient, &data, &mut events),
                    Err(size) => observer.observe_oversize(Direction::ServerToClient, size, b"", &mut events),
                }
            }
            proxy.learn_server(&observer);
        }
        proxy.ship(&events);
        Ok(chunk)
    })
}

/// Records the unanswered requests of a one-exchange observer when its stream ends (or the
/// client goes away and the stream is dropped).
struct EndOfStream {
    proxy: Arc<HttpProxy>,
    observer: Arc<Mutex<Observer>>,
    per_exchange: bool,
}

impl Drop for EndOfStream {
    fn drop(&mut self) {
        if self.per_exchange {
            let mut events = Vec::new();
            if let Ok(mut observer) = self.observer.lock() {
                observer.finish(&mut events);
            }
            self.proxy.ship(&events);
        }
    }
}

/// One `http` event for an exchange that got no JSON-RPC answer.
fn refused(
    proxy: &HttpProxy,
    exchange: &Exchange,
    status: u16,
    method: Option<String>,
    error: &str,
    started: std::time::Instant,
) {
    let mut e = proxy.template.clone();
    e.id = EventId::new();
    e.time = Timestamp::now();
    e.kind = EventKind::Http;
    exchange.apply(&mut e, Some(status));
    e.method = method.map(Into::into);
    e.error_type = Some(error.to_owned().into());
    e.duration_us = Some(started.elapsed().as_micros().min(i64::MAX as u128) as i64);
    proxy.ship(&[e]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resource_uri_comes_from_protected_resource_metadata_only() {
        let body = br#"{"resource":"https://mcp.example.com/mcp","authorization_servers":["https://idp"]}"#;
        let ok = StatusCode::OK;
        assert_eq!(
            metadata_resource("/.well-known/oauth-protected-resource/mcp", ok, body).as_deref(),
            Some("https://mcp.example.com/mcp")
        );
        assert_eq!(
            metadata_resource("/.well-known/oauth-protected-resource", ok, body).as_deref(),
            Some("https://mcp.example.com/mcp")
        );
        assert_eq!(metadata_resource("/mcp", ok, body), None, "another path");
        assert_eq!(metadata_resource("/.well-known/oauth-protected-resource", StatusCode::NOT_FOUND, body), None);
        assert_eq!(metadata_resource("/.well-known/oauth-protected-resource", ok, b"not json"), None);
        assert_eq!(metadata_resource("/.well-known/oauth-protected-resource", ok, br#"{"resource":""}"#), None);
        assert_eq!(metadata_resource("/.well-known/oauth-protected-resource", ok, br#"{"resource":7}"#), None);
        let huge = format!(r#"{{"resource":"https://x/{}"}}"#, "a".repeat(MAX_RESOURCE_URI_BYTES));
        assert_eq!(metadata_resource("/.well-known/oauth-protected-resource", ok, huge.as_bytes()), None);
    }
}
