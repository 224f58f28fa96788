//! Gateways' JSON log lines into our events.
//!
//! - `mcpsiem`: our own events, one per line; shipped verbatim (the ingester checks them
//!   and dead-letters a bad one with its reason).
//! - one file per gateway format, each a [`GatewayFormat`] listed in [`GATEWAYS`]:
//!   [`agentgateway`] and the Docker MCP gateway ([`docker`]).
//!
//! Fields a format has that our model lacks are kept as attributes, under their own names.
//! A new format is one file implementing [`GatewayFormat`] and one line in [`GATEWAYS`]
//! (CONTRIBUTING.md).

pub mod agentgateway;
pub mod docker;
pub mod fields;

use std::str::FromStr;

use mcpsiem_event::{EventId, EventKind, OwnedEvent, Timestamp};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::capture::Capture;

/// The gateways' formats, in the order `--format auto` tries them.
pub const GATEWAYS: &[&dyn GatewayFormat] = &[&agentgateway::Agentgateway, &docker::DockerMcpGateway];

/// One gateway's JSON log lines.
pub trait GatewayFormat: Sync {
    /// The name `--format` takes.
    fn name(&self) -> &'static str;

    /// Other names `--format` takes.
    fn aliases(&self) -> &'static [&'static str] {
        &[]
    }

    /// What its events carry as `collector.format`.
    fn collector_format(&self) -> &'static str {
        self.name()
    }

    /// For `--format auto`: whether a line's keys are ones only this gateway writes.
    fn recognizes(&self, line: &Map<String, Value>) -> bool;

    /// The event of one line (a JSON object); keys it does not take stay as attributes.
    fn map(&self, line: Map<String, Value>, context: &Line<'_>) -> OwnedEvent;
}

/// The format of a followed file.
#[derive(Clone, Copy)]
pub enum LogFormat {
    /// Decided per line from its keys.
    Auto,
    /// Our own events.
    Mcpsiem,
    Gateway(&'static dyn GatewayFormat),
}

impl LogFormat {
    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Mcpsiem => "mcpsiem",
            Self::Gateway(format) => format.name(),
        }
    }
}

impl PartialEq for LogFormat {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

impl std::fmt::Debug for LogFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "mcpsiem" => Ok(Self::Mcpsiem),
            other => GATEWAYS
                .iter()
                .find(|g| g.name() == other || g.aliases().contains(&other))
                .map(|g| Self::Gateway(*g))
                .ok_or_else(|| {
                    let names: Vec<&str> = GATEWAYS.iter().map(|g| g.name()).collect();
                    format!("unknown log format `{other}`: use auto, mcpsiem or {}", names.join(", "))
                }),
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

/// What a [`GatewayFormat`] needs to build the event of one line.
pub struct Line<'a> {
    mapper: &'a LineMapper,
    origin: &'a LineOrigin<'a>,
    bytes: &'a [u8],
    collector_format: &'static str,
}

impl Line<'_> {
    /// The collector's template event with this line's id, time and kind.
    pub fn base(&self, time: Option<Timestamp>, kind: EventKind) -> OwnedEvent {
        let mut e = self.mapper.template.clone();
        e.id = line_id(self.origin, self.bytes, time);
        e.time = time.unwrap_or_else(Timestamp::now);
        e.kind = kind;
        e.collector_format = Some(self.collector_format.into());
        e
    }

    /// What is kept of arguments and results, and how secrets are redacted.
    pub fn capture(&self) -> &Capture {
        &self.mapper.capture
    }
}

impl LineMapper {
    pub fn map(&self, line: &[u8], origin: &LineOrigin<'_>) -> Mapped {
        let parsed = serde_json::from_slice::<Value>(line);
        let gateway = match (self.format, &parsed) {
            (LogFormat::Auto, Ok(Value::Object(map))) => detect(map),
            (LogFormat::Auto | LogFormat::Mcpsiem, _) => None,
            (LogFormat::Gateway(gateway), _) => Some(gateway),
        };
        let Some(gateway) = gateway else {
            let key = mcpsiem_event::parse_event(line, usize::MAX)
                .ok()
                .and_then(|e| mcpsiem_runtime::kafka::event_key(&e).map(str::to_owned));
            return Mapped::Verbatim { key, line: line.to_vec() };
        };
        let context = Line { mapper: self, origin, bytes: line, collector_format: gateway.collector_format() };
        let event = match parsed {
            Ok(Value::Object(map)) => gateway.map(map, &context),
            Ok(_) => malformed(&context, "not a JSON object"),
            Err(e) => malformed(&context, &e.to_string()),
        };
        Mapped::Event(Box::new(event))
    }
}

/// A line its format could not read, recorded with an excerpt (secrets redacted).
fn malformed(line: &Line<'_>, reason: &str) -> OwnedEvent {
    let mut e = line.base(None, EventKind::Malformed);
    e.error_type = Some("parse_error".into());
    e.error_message = Some(reason.to_owned().into());
    let bytes = line.bytes;
    let excerpt = String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).into_owned();
    e.attributes.insert("mcp.malformed.excerpt", &Value::String(line.capture().redact(&excerpt).into_owned()));
    e.attributes.insert("mcp.malformed.size", &Value::from(bytes.len()));
    e
}

/// Which gateway wrote a line, from the keys only it uses; `None`: our own format (also
/// when nothing is recognised, so the ingester dead-letters it with its reason).
fn detect(m: &Map<String, Value>) -> Option<&'static dyn GatewayFormat> {
    if m.contains_key("event.id") && m.contains_key("event.kind") {
        return None;
    }
    GATEWAYS.iter().find(|g| g.recognizes(m)).copied()
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

#[cfg(test)]
mod tests {
    use super::fields::duration_micros;
    use super::*;
    use crate::capture::CaptureConfig;

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
        let again = event(mapper(LogFormat::Gateway(&agentgateway::Agentgateway)).map(line, &ORIGIN));
        assert_eq!(again.id, e.id);
        let elsewhere = event(
            mapper(LogFormat::Gateway(&agentgateway::Agentgateway)).map(line, &LineOrigin { offset: 11, ..ORIGIN }),
        );
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
        let e = event(mapper(LogFormat::Gateway(&agentgateway::Agentgateway)).map(b"starting gateway v1.2", &ORIGIN));
        assert_eq!(e.kind, EventKind::Malformed);
        assert_eq!(e.collector_format.as_deref(), Some("agentgateway"));
        assert_eq!(duration_micros(&Value::from("2s")), Some(2_000_000));
        assert_eq!(duration_micros(&Value::from(1.5)), Some(1500));
    }
}
