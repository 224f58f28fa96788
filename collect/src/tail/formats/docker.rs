//! The Docker MCP gateway's audit JSON: `timestamp`, `actor_id`, `server_name`,
//! `tool_name`, `client_name`, `session_id`, `result`…

use mcpsiem_event::{EventKind, MessageType, OwnedEvent, Text};
use serde_json::{Map, Value};

use super::fields::{keep_rest, take_i64, take_str, take_time};
use super::{GatewayFormat, Line};

pub struct DockerMcpGateway;

impl GatewayFormat for DockerMcpGateway {
    fn name(&self) -> &'static str {
        "docker"
    }

    fn aliases(&self) -> &'static [&'static str] {
        &["docker_mcp_gateway"]
    }

    fn collector_format(&self) -> &'static str {
        "docker_mcp_gateway"
    }

    fn recognizes(&self, m: &Map<String, Value>) -> bool {
        m.contains_key("actor_id") || m.contains_key("server_name") || m.contains_key("tool_name")
    }

    fn map(&self, mut m: Map<String, Value>, line: &Line<'_>) -> OwnedEvent {
        let time = take_time(&mut m, &["timestamp", "time", "ts"]);
        let tool = take_str(&mut m, "tool_name");
        let method = take_str(&mut m, "method").or_else(|| tool.as_ref().map(|_| "tools/call".to_owned()));
        let mut e = line.base(time, EventKind::Message);
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
            let captured = line.capture().arguments(&arguments.to_string());
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
                let captured = line.capture().result(&text);
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
