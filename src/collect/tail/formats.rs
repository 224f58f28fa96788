//! Gateways' JSON log lines into our events.
//!
//! - `mcpsiem`: our own events, one per line; shipped verbatim (the ingester checks them
//!   and dead-letters a bad one with its reason).
//! - `agentgateway`: agentgateway's JSON access log (OpenTelemetry-style names such as
//!   `mcp.method.name`, `gen_ai.tool.name`, `src.addr`, `jwt.sub`, `http.status`,
//!   `duration`).
//! - `docker`: the Docker MCP gateway's audit JSON (`timestamp`, `actor_id`,
//!   `server_name`, `tool_name`, `client_name`, `session_id`, `result`…).
//!
//! Fields a format has that our model lacks are kept as attributes, under their own names.

use std::str::FromStr;

use mcpsiem_event::{EventId, EventKind, MessageType, OwnedEvent, Text, Timestamp};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::collect::capture::Capture;

/// The format of a followed file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Decided per line from its keys.
    Auto,
    Mcpsiem,
    Agentgateway,
    Docker,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "mcpsiem" => Ok(Self::Mcpsiem),
            "agentgateway" => Ok(Self::Agentgateway),
            "docker" | "docker_mcp_gateway" => Ok(Self::Docker),
            other => Err(format!("unknown log format `{other}`: use auto, mcpsiem, agentgateway or docker")),
        }
    }
}

/// One line, ready to ship.
pub enum Mapped {
    /// Our own event line, shipped as it is, with its key when it parsed.
    Verbatim {
        key: Option<String>,
        line: Vec<u8>,
    },
    Event(Box<OwnedEvent>),
}

/// Where a line came from: its id is derived from it, so reading the same line again
/// (after a restart) gives the same event id, which the ingester and detector deduplicate.
pub struct LineOrigin<'a> {
    pub file_identity: &'a str,
    pub offset: u64,
}

/// Maps lines of one followed file.
pub struct LineMapper {
    pub format: LogFormat,
    pub template: OwnedEvent,
    pub capture: Capture,
}

impl LineMapper {
    pub fn map(&self, line: &[u8], origin: &LineOrigin<'_>) -> Mapped {
        let parsed = serde_json::from_slice::<Value>(line);
        let format = match (&self.format, &parsed) {
            (LogFormat::Auto, Ok(Value::Object(map))) => detect(map),
            (LogFormat::Auto, _) => LogFormat::Mcpsiem,
            (format, _) => *format,
        };
        if format == LogFormat::Mcpsiem {
            let key = mcpsiem_event::parse_event(line, usize::MAX)
                .ok()
                .and_then(|e| mcpsiem_event::kafka::event_key(&e).map(str::to_owned));
            return Mapped::Verbatim { key, line: line.to_vec() };
        }
        let id_source = |time: Option<Timestamp>| line_id(origin, line, time);
        let event = match parsed {
            Ok(Value::Object(map)) => match format {
                LogFormat::Agentgateway => self.agentgateway(map, id_source),
                _ => self.docker(map, id_source),
            },
            Ok(_) => self.malformed(line, "not a JSON object", id_source(None), format),
            Err(e) => self.malformed(line, &e.to_string(), id_source(None), format),
        };
        Mapped::Event(Box::new(event))
    }

    fn base(&self, id: EventId, time: Option<Timestamp>, kind: EventKind, format: LogFormat) -> OwnedEvent {
        let mut e = self.template.clone();
        e.id = id;
        e.time = time.unwrap_or_else(Timestamp::now);
        e.kind = kind;
        e.collector_format = Some(format_name(format).into());
        e
    }

    fn malformed(&self, line: &[u8], reason: &str, id: EventId, format: LogFormat) -> OwnedEvent {
        let mut e = self.base(id, None, EventKind::Malformed, format);
        e.error_type = Some("parse_error".into());
        e.error_message = Some(reason.to_owned().into());
        let excerpt = String::from_utf8_lossy(&line[..line.len().min(512)]).into_owned();
        e.attributes.insert("mcp.malformed.excerpt", &Value::String(self.capture.redact(&excerpt).into_owned()));
        e.attributes.insert("mcp.malformed.size", &Value::from(line.len()));
        e
    }

    fn agentgateway(&self, mut m: Map<String, Value>, id: impl Fn(Option<Timestamp>) -> EventId) -> OwnedEvent {
        let time = take_time(&mut m, &["time", "timestamp", "ts", "@timestamp"]);
        let method = take_str(&mut m, "mcp.method.name");
        let kind = if method.is_some() { EventKind::Message } else { EventKind::Http };
        let mut e = self.base(id(time), time, kind, LogFormat::Agentgateway);
        if let Some(method) = &method {
            e.message_type = Some(if method.starts_with("notifications/") {
                MessageType::Notification
            } else {
                MessageType::Request
            });
            e.direction = Some(mcpsiem_event::Direction::ClientToServer);
        }
        e.method = method.map(Text::from);
        e.tool_name = take_str(&mut m, "gen_ai.tool.name").map(Text::from);
        e.session_id = take_str(&mut m, "mcp.session.id").map(Text::from);
        e.resource_uri = take_str(&mut m, "mcp.resource.uri").map(Text::from);
        e.prompt_name = take_str(&mut m, "gen_ai.prompt.name").map(Text::from);
        e.request_id = take_str(&mut m, "jsonrpc.request.id").map(Text::from);
        e.server_name = take_str(&mut m, "mcp.target").or_else(|| take_str(&mut m, "mcp.server.name")).map(Text::from);
        e.client_address = take_str(&mut m, "src.addr").map(|a| Text::from(host_of(&a)));
        e.user_agent =
            take_str(&mut m, "user_agent.original").or_else(|| take_str(&mut m, "http.user_agent")).map(Text::from);
        e.http_method = take_str(&mut m, "http.method").map(Text::from);
        e.http_status = take_i64(&mut m, "http.status");
        e.server_address = take_str(&mut m, "http.host").map(Text::from);
        if let Some(sub) = take_str(&mut m, "jwt.sub") {
            e.token_subject = Some(sub.clone().into());
            e.user_id = Some(sub.into());
        }
        e.token_issuer = take_str(&mut m, "jwt.iss").map(Text::from);
        e.token_client_id = take_str(&mut m, "jwt.client_id").map(Text::from);
        e.token_id = take_str(&mut m, "jwt.jti").map(Text::from);
        e.duration_us = m.remove("duration").as_ref().and_then(duration_micros);
        if let Some(code) = take_i64(&mut m, "mcp.error.code") {
            e.error_code = Some(code);
            e.error_type = Some(crate::collect::observer::error_code_name(Some(code)).into());
        } else if let Some(status) = e.http_status.filter(|s| *s >= 400) {
            e.error_type = Some(status.to_string().into());
        }
        e.error_message = take_str(&mut m, "mcp.error.message").or_else(|| take_str(&mut m, "error")).map(Text::from);
        if let Some(arguments) = m.remove("gen_ai.tool.call.arguments") {
            let text = match arguments {
                Value::String(s) => s,
                other => other.to_string(),
            };
            let captured = self.capture.arguments(&text);
            e.tool_arguments = Some(captured.text.into());
            e.tool_arguments_truncated = Some(captured.truncated);
        }
        keep_rest(&mut e, m);
        e
    }

    fn docker(&self, mut m: Map<String, Value>, id: impl Fn(Option<Timestamp>) -> EventId) -> OwnedEvent {
        let time = take_time(&mut m, &["timestamp", "time", "ts"]);
        let tool = take_str(&mut m, "tool_name");
        let method = take_str(&mut m, "method").or_else(|| tool.as_ref().map(|_| "tools/call".to_owned()));
        let mut e = self.base(id(time), time, EventKind::Message, LogFormat::Docker);
        e.message_type = Some(MessageType::Request);
        e.direction = Some(mcpsiem_event::Direction::ClientToServer);
        e.method = method.map(Text::from);
        e.tool_name = tool.map(Text::from);
        e.user_id = take_str(&mut m, "actor_id").map(Text::from);
        e.server_name = take_str(&mut m, "server_name").map(Text::from);
        e.client_name = take_str(&mut m, "client_name").map(Text::from);
        e.client_version = take_str(&mut m, "client_version").map(Text::from);
        e.session_id = take_str(&mut m, "session_id").map(Text::from);
        e.transport = take_str(&mut m, "transport").map(Text::from);
        e.server_command = take_str(&mut m, "server_image").or_else(|| take_str(&mut m, "image")).map(Text::from);
        e.duration_us = take_i64(&mut m, "duration_ms").map(|ms| ms.saturating_mul(1000));
        if let Some(arguments) = m.remove("arguments") {
            let captured = self.capture.arguments(&arguments.to_string());
            e.tool_arguments = Some(captured.text.into());
            e.tool_arguments_truncated = Some(captured.truncated);
        }
        match m.remove("result") {
            Some(Value::String(outcome)) if is_outcome(&outcome) => {
                let failed = !matches!(outcome.to_ascii_lowercase().as_str(), "success" | "ok" | "allowed");
                e.tool_result_is_error = Some(failed);
                if failed {
                    e.error_type = Some(outcome.to_ascii_lowercase().into());
                }
            }
            Some(result) => {
                let text = match result {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                e.tool_result_size = Some(text.len() as i64);
                let captured = self.capture.result(&text);
                e.tool_result = Some(captured.text.into());
                e.tool_result_truncated = Some(captured.truncated);
            }
            None => {}
        }
        if let Some(error) = take_str(&mut m, "error") {
            e.error_message = Some(error.into());
            e.error_type.get_or_insert_with(|| "error".into());
        }
        keep_rest(&mut e, m);
        e
    }
}

fn is_outcome(text: &str) -> bool {
    matches!(
        text.to_ascii_lowercase().as_str(),
        "success" | "ok" | "allowed" | "error" | "failure" | "failed" | "denied" | "blocked"
    )
}

/// Which gateway wrote a line, from the keys only it uses.
fn detect(m: &Map<String, Value>) -> LogFormat {
    if m.contains_key("event.id") && m.contains_key("event.kind") {
        LogFormat::Mcpsiem
    } else if m.contains_key("src.addr") || m.contains_key("mcp.method.name") || m.contains_key("http.status") {
        LogFormat::Agentgateway
    } else if m.contains_key("actor_id") || m.contains_key("server_name") || m.contains_key("tool_name") {
        LogFormat::Docker
    } else {
        LogFormat::Mcpsiem
    }
}

fn format_name(format: LogFormat) -> &'static str {
    match format {
        LogFormat::Agentgateway => "agentgateway",
        LogFormat::Docker => "docker_mcp_gateway",
        LogFormat::Mcpsiem | LogFormat::Auto => "mcpsiem",
    }
}

/// The event id of a line: the line's own time (milliseconds) and 80 bits of a hash of the
/// file, the offset and the bytes. The same line read twice gets the same id.
fn line_id(origin: &LineOrigin<'_>, line: &[u8], time: Option<Timestamp>) -> EventId {
    let mut hash = Sha256::new();
    hash.update(origin.file_identity.as_bytes());
    hash.update(origin.offset.to_le_bytes());
    hash.update(line);
    let digest = hash.finalize();
    let mut random = [0u8; 16];
    random[6..].copy_from_slice(&digest[..10]);
    let millis = time.map(|t| (t.as_micros() / 1000).max(0) as u64).unwrap_or(0);
    EventId(ulid::Ulid::from_parts(millis, u128::from_be_bytes(random)))
}

fn take_str(m: &mut Map<String, Value>, key: &str) -> Option<String> {
    match m.remove(key)? {
        Value::String(s) => Some(s),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

fn take_i64(m: &mut Map<String, Value>, key: &str) -> Option<i64> {
    match m.remove(key)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A time as RFC 3339 text, or as seconds or milliseconds since the epoch.
fn take_time(m: &mut Map<String, Value>, keys: &[&str]) -> Option<Timestamp> {
    for key in keys {
        let Some(value) = m.remove(*key) else { continue };
        let parsed = match &value {
            Value::String(s) => Timestamp::parse(s).ok(),
            Value::Number(n) => n.as_f64().map(|x| {
                let seconds = if x > 1e12 { x / 1000.0 } else { x };
                Timestamp::from_micros((seconds * 1e6) as i64)
            }),
            _ => None,
        };
        if parsed.is_some() {
            return parsed;
        }
        m.insert((*key).to_owned(), value);
    }
    None
}

/// `12ms`, `1.5s`, `350µs`, `2m`, or a bare number of milliseconds, in microseconds.
fn duration_micros(value: &Value) -> Option<i64> {
    let text = match value {
        Value::Number(n) => return n.as_f64().map(|ms| (ms * 1000.0) as i64),
        Value::String(s) => s.trim(),
        _ => return None,
    };
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let micros_per_unit = match unit.trim() {
        "ns" => 0.001,
        "µs" | "us" => 1.0,
        "ms" | "" => 1000.0,
        "s" => 1e6,
        "m" => 6e7,
        _ => return None,
    };
    Some((number * micros_per_unit) as i64)
}

/// The host of `host:port` or `[v6]:port`.
fn host_of(address: &str) -> String {
    if let Some(rest) = address.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest).to_owned();
    }
    match address.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.chars().all(|c| c.is_ascii_digit()) => host.to_owned(),
        _ => address.to_owned(),
    }
}

fn keep_rest(e: &mut OwnedEvent, rest: Map<String, Value>) {
    for (key, value) in rest {
        e.attributes.insert(key, &value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::capture::CaptureConfig;

    fn mapper(format: LogFormat) -> LineMapper {
        LineMapper {
            format,
            template: OwnedEvent::new(EventId::new(), Timestamp::now(), EventKind::Message),
            capture: Capture::new(&CaptureConfig::default()).unwrap(),
        }
    }

    fn event(m: Mapped) -> OwnedEvent {
        match m {
            Mapped::Event(e) => *e,
            Mapped::Verbatim { .. } => panic!("expected a mapped event"),
        }
    }

    const ORIGIN: LineOrigin<'static> = LineOrigin { file_identity: "1:2", offset: 10 };

    #[test]
    fn agentgateway_access_log_lines() {
        let line = br#"{"level":"info","time":"2026-11-20T10:00:00.123Z","scope":"request","src.addr":"10.1.2.3:51234","http.method":"POST","http.path":"/mcp","http.status":200,"protocol":"mcp","mcp.method.name":"tools/call","gen_ai.tool.name":"read_file","mcp.session.id":"s-1","mcp.target":"files","jwt.sub":"bob","duration":"12.5ms"}"#;
        let e = event(mapper(LogFormat::Auto).map(line, &ORIGIN));
        assert_eq!(e.collector_format.as_deref(), Some("agentgateway"));
        assert_eq!(e.time, Timestamp::parse("2026-11-20T10:00:00.123Z").unwrap());
        assert_eq!(e.method.as_deref(), Some("tools/call"));
        assert_eq!(e.tool_name.as_deref(), Some("read_file"));
        assert_eq!(e.client_address.as_deref(), Some("10.1.2.3"));
        assert_eq!((e.user_id.as_deref(), e.token_subject.as_deref()), (Some("bob"), Some("bob")));
        assert_eq!(e.http_status, Some(200));
        assert_eq!(e.duration_us, Some(12_500));
        assert_eq!(e.server_name.as_deref(), Some("files"));
        assert_eq!(e.attributes.get("http.path").map(|v| v.get()), Some(r#""/mcp""#));
        // The same line at the same place gets the same id; elsewhere another.
        let again = event(mapper(LogFormat::Agentgateway).map(line, &ORIGIN));
        assert_eq!(again.id, e.id);
        let elsewhere = event(mapper(LogFormat::Agentgateway).map(line, &LineOrigin { offset: 11, ..ORIGIN }));
        assert_ne!(elsewhere.id, e.id);

        let refused = br#"{"time":"2026-11-20T10:00:01Z","src.addr":"[::1]:9","http.status":401,"duration":"1ms"}"#;
        let e = event(mapper(LogFormat::Auto).map(refused, &ORIGIN));
        assert_eq!((e.kind, e.error_type.as_deref()), (EventKind::Http, Some("401")));
        assert_eq!(e.client_address.as_deref(), Some("::1"));
    }

    #[test]
    fn docker_gateway_audit_lines() {
        let line = br#"{"timestamp":"2026-11-20T10:00:00Z","actor_id":"carol","server_name":"github","tool_name":"create_issue","client_name":"claude-code","session_id":"abc","arguments":{"title":"x","token":"ghp_abcdefghijklmnopqrstuvwxyz0123456789"},"result":"denied","duration_ms":7}"#;
        let e = event(mapper(LogFormat::Auto).map(line, &ORIGIN));
        assert_eq!(e.collector_format.as_deref(), Some("docker_mcp_gateway"));
        assert_eq!(e.method.as_deref(), Some("tools/call"));
        assert_eq!(e.user_id.as_deref(), Some("carol"));
        assert_eq!(e.tool_result_is_error, Some(true));
        assert_eq!(e.error_type.as_deref(), Some("denied"));
        assert_eq!(e.duration_us, Some(7000));
        assert!(!e.tool_arguments.as_deref().unwrap().contains("ghp_"), "{:?}", e.tool_arguments);
    }

    #[test]
    fn own_lines_go_verbatim_and_garbage_is_recorded() {
        let own = br#"{"event.id":"01JCZ7W3M4V9X2Q8R6T5Y1N0PA","event.time":"2026-11-20T10:00:00Z","event.kind":"message","mcp.session.id":"s9"}"#;
        match mapper(LogFormat::Auto).map(own, &ORIGIN) {
            Mapped::Verbatim { key, line } => {
                assert_eq!(key.as_deref(), Some("s9"));
                assert_eq!(line, own.to_vec());
            }
            Mapped::Event(_) => panic!("our own lines are shipped as they are"),
        }
        let e = event(mapper(LogFormat::Agentgateway).map(b"starting gateway v1.2", &ORIGIN));
        assert_eq!(e.kind, EventKind::Malformed);
        assert_eq!(e.collector_format.as_deref(), Some("agentgateway"));
        assert_eq!(duration_micros(&Value::from("2s")), Some(2_000_000));
        assert_eq!(duration_micros(&Value::from(1.5)), Some(1500));
    }
}
