//! agentgateway's JSON access log: OpenTelemetry-style names such as `mcp.method.name`,
//! `gen_ai.tool.name`, `src.addr`, `jwt.sub`, `http.status` and `duration`.

use mcpsiem_event::{EventKind, MessageType, OwnedEvent, Text};
use serde_json::{Map, Value};

use super::fields::{duration_micros, host_of, keep_rest, take_i64, take_str, take_time};
use super::{GatewayFormat, Line};

pub struct Agentgateway;

impl GatewayFormat for Agentgateway {
    fn name(&self) -> &'static str {
        "agentgateway"
    }

    fn recognizes(&self, m: &Map<String, Value>) -> bool {
        m.contains_key("src.addr") || m.contains_key("mcp.method.name") || m.contains_key("http.status")
    }

    fn map(&self, mut m: Map<String, Value>, line: &Line<'_>) -> OwnedEvent {
        let time = take_time(&mut m, &["time", "timestamp", "ts", "@timestamp"]);
        let method = take_str(&mut m, "mcp.method.name");
        let kind = if method.is_some() { EventKind::Message } else { EventKind::Http };
        let mut e = line.base(time, kind);
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
            e.error_type = Some(crate::observer::error_code_name(Some(code)).into());
        } else if let Some(status) = e.http_status.filter(|s| *s >= 400) {
            e.error_type = Some(status.to_string().into());
        }
        e.error_message = take_str(&mut m, "mcp.error.message").or_else(|| take_str(&mut m, "error")).map(Text::from);
        if let Some(arguments) = m.remove("gen_ai.tool.call.arguments") {
            let text = match arguments {
                Value::String(s) => s,
                other => other.to_string(),
            };
            let captured = line.capture().arguments(&text);
            crate::observer::note_secrets(&mut e, crate::observer::SECRETS_IN_ARGUMENTS, &captured.secrets);
            e.tool_arguments = Some(captured.text.into());
            e.tool_arguments_truncated = Some(captured.truncated);
        }
        keep_rest(&mut e, m);
        e
    }
}
