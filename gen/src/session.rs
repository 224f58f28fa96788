//! One MCP session of the simulation, and the audit events it produces.

use mcpsiem_event::hash::{canonical_json_sha256, description_sha256};
use mcpsiem_event::token::TokenFingerprinter;
use mcpsiem_event::{Direction, EventId, EventKind, McpEvent, MessageType, OwnedEvent, Text, TextList, Timestamp};
use rand::Rng;

use super::world::{ServerSpec, ToolSpec, Transport, User};

/// The label key every generated event carries, so tests count hits and misses.
pub const SCENARIO_KEY: &str = "mcpsiem.scenario";
/// Which injected instance of a scenario an event belongs to.
pub const SCENARIO_INSTANCE_KEY: &str = "mcpsiem.scenario.instance";
pub const BENIGN: &str = "benign";

/// An OAuth access token as the collector would see it: its fingerprint and claims.
#[derive(Clone, Debug)]
pub struct Token {
    pub fingerprint: String,
    pub subject: String,
    pub issuer: String,
    pub audience: Vec<String>,
    pub client_id: String,
    pub jti: String,
    pub scopes: Vec<String>,
    pub issued: Timestamp,
    pub expires: Timestamp,
}

impl Token {
    pub fn issue(
        rng: &mut impl Rng,
        fingerprinter: &TokenFingerprinter,
        subject: &str,
        client_id: &str,
        audience: &str,
        issued: Timestamp,
        ttl_hours: i64,
    ) -> Self {
        let jti = format!("{:032x}", rng.random::<u128>());
        // A token-shaped string only to derive a realistic fingerprint; it is never emitted.
        let raw = format!("eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.{jti}.{:064x}", rng.random::<u128>());
        Self {
            fingerprint: fingerprinter.fingerprint(&raw),
            subject: subject.to_owned(),
            issuer: "https://login.corp.example.com/oauth2/default".into(),
            audience: vec![audience.to_owned()],
            client_id: client_id.to_owned(),
            jti,
            scopes: vec!["mcp:tools".into(), "mcp:resources".into()],
            issued,
            expires: issued.plus_micros(ttl_hours * 3_600_000_000),
        }
    }
}

/// Where the traffic of a session comes from, when it is not the user's own device.
#[derive(Clone, Debug)]
pub struct Origin {
    pub address: String,
    pub user_agent: String,
    pub client_name: String,
    pub client_version: String,
}

/// Where the collector that recorded a session sits, which decides what its events hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vantage {
    /// Everything: the user, the token's fingerprint and claims, arguments and results.
    Full,
    /// `collect proxy --stdio` on the user's machine: the local account name (`$USER`) as
    /// the user, the machine's host name as the collector, no address and no token.
    StdioProxy,
    /// A gateway's access log (agentgateway): the token's `sub` and `jti` but no token to
    /// fingerprint, arguments but no results, and no tool definitions.
    GatewayLog,
}

/// A session between one client and one server.
pub struct Session<'w> {
    pub user: &'w User,
    pub server: &'w ServerSpec,
    pub server_name: String,
    pub server_address: String,
    pub protocol: &'static str,
    pub session_id: Option<String>,
    pub token: Option<Token>,
    pub origin: Origin,
    pub scenario: &'static str,
    pub instance: Option<u32>,
    pub vantage: Vantage,
    next_request_id: u64,
}

/// The revision that has no `initialize` and no session header.
pub const STATELESS_REVISION: &str = "2026-07-28";
pub const SESSION_REVISION: &str = "2025-11-25";

impl<'w> Session<'w> {
    pub fn new(rng: &mut impl Rng, user: &'w User, server: &'w ServerSpec, token: Option<Token>) -> Self {
        let protocol = if rng.random_bool(0.3) { STATELESS_REVISION } else { SESSION_REVISION };
        let session_id = (server.transport == Transport::Http && protocol == SESSION_REVISION)
            .then(|| format!("{:032x}", rng.random::<u128>()));
        Self {
            user,
            server,
            server_name: server.name.to_owned(),
            server_address: server.location.to_owned(),
            protocol,
            session_id,
            token,
            origin: Origin {
                address: user.address.clone(),
                user_agent: user.client.user_agent.to_owned(),
                client_name: user.client.name.to_owned(),
                client_version: user.client.version.to_owned(),
            },
            scenario: BENIGN,
            instance: None,
            vantage: Vantage::Full,
            next_request_id: 1,
        }
    }

    pub fn labelled(mut self, scenario: &'static str, instance: u32) -> Self {
        self.scenario = scenario;
        self.instance = Some(instance);
        self
    }

    /// Fields every event of the session shares.
    pub fn base(&self, rng: &mut impl Rng, at: Timestamp, kind: EventKind) -> OwnedEvent {
        let id = EventId(ulid::Ulid::from_parts((at.as_micros() / 1000).max(0) as u64, rng.random()));
        let mut e = McpEvent::new(id, at, kind);
        let http = self.server.transport == Transport::Http;
        e.protocol_version = Some(self.protocol.into());
        e.session_id = self.session_id.clone().map(Text::from);
        e.network_transport = Some(if http { "tcp" } else { "pipe" }.into());
        e.transport = Some(if http { "streamable_http" } else { "stdio" }.into());
        e.client_name = Some(self.origin.client_name.clone().into());
        e.client_version = Some(self.origin.client_version.clone().into());
        e.server_name = Some(self.server_name.clone().into());
        e.server_version = Some(self.server.version.into());
        e.user_id = Some(self.user.id.clone().into());
        if http {
            e.client_address = Some(self.origin.address.clone().into());
            e.user_agent = Some(self.origin.user_agent.clone().into());
            e.http_method = Some("POST".into());
            e.server_address = Some(self.server_address.clone().into());
        } else {
            e.server_command = Some(self.server_address.clone().into());
        }
        if let Some(token) = &self.token {
            e.token_fingerprint = Some(token.fingerprint.clone().into());
            e.token_subject = Some(token.subject.clone().into());
            e.token_issuer = Some(token.issuer.clone().into());
            e.token_audience = Some(token.audience.iter().cloned().collect::<TextList>());
            e.token_client_id = Some(token.client_id.clone().into());
            e.token_id = Some(token.jti.clone().into());
            e.token_scopes = Some(token.scopes.iter().cloned().collect::<TextList>());
            e.token_expires = Some(token.expires);
            e.token_issued = Some(token.issued);
        }
        e.collector_id = Some("gen-1".into());
        e.collector_format = Some("gen".into());
        match self.vantage {
            Vantage::Full => {}
            Vantage::StdioProxy => {
                let account = self.user.id.split(['.', '@']).next().unwrap_or("dev");
                e.user_id = Some(account.to_owned().into());
                e.collector_id = Some(format!("{account}-laptop").into());
                e.collector_format = Some("proxy_stdio".into());
            }
            Vantage::GatewayLog => {
                e.user_id = e.token_subject.clone();
                e.token_fingerprint = None;
                e.token_audience = None;
                e.token_scopes = None;
                e.token_expires = None;
                e.token_issued = None;
                e.server_version = None;
                e.client_name = None;
                e.client_version = None;
                e.collector_id = Some("agentgateway-1".into());
                e.collector_format = Some("agentgateway".into());
            }
        }
        e.attributes.insert(SCENARIO_KEY, &serde_json::Value::from(self.scenario));
        if let Some(instance) = self.instance {
            e.attributes.insert(SCENARIO_INSTANCE_KEY, &serde_json::Value::from(instance));
        }
        e
    }

    /// A request with its response, `duration_us` apart.
    pub fn request(&mut self, rng: &mut impl Rng, at: Timestamp, method: &str, duration_us: i64) -> OwnedEvent {
        let mut e = self.base(rng, at, EventKind::Message);
        e.method = Some(method.to_owned().into());
        e.request_id = Some(self.next_request_id.to_string().into());
        self.next_request_id += 1;
        e.message_type = Some(MessageType::Request);
        e.direction = Some(Direction::ClientToServer);
        e.duration_us = Some(duration_us);
        if self.server.transport == Transport::Http {
            e.http_status = Some(200);
        }
        e
    }

    pub fn notification(&mut self, rng: &mut impl Rng, at: Timestamp, method: &str) -> OwnedEvent {
        let mut e = self.base(rng, at, EventKind::Message);
        e.method = Some(method.to_owned().into());
        e.message_type = Some(MessageType::Notification);
        e.direction = Some(Direction::ClientToServer);
        if self.server.transport == Transport::Http {
            e.http_status = Some(202);
        }
        e
    }

    /// The opening of a session: `initialize` and `notifications/initialized` in the
    /// 2025-11-25 revision, nothing in the stateless one.
    pub fn open(&mut self, rng: &mut impl Rng, at: Timestamp) -> Vec<OwnedEvent> {
        if self.protocol == STATELESS_REVISION {
            return Vec::new();
        }
        let duration = rng.random_range(8_000..90_000);
        let init = self.request(rng, at, "initialize", duration);
        let done = self.notification(rng, at.plus_micros(120_000), "notifications/initialized");
        vec![init, done]
    }

    /// A `tools/list` exchange and one tool-definition event per tool offered.
    pub fn list_tools(&mut self, rng: &mut impl Rng, at: Timestamp, tools: &[ToolSpec]) -> Vec<OwnedEvent> {
        let duration = rng.random_range(5_000..60_000);
        let mut events = vec![self.request(rng, at, "tools/list", duration)];
        if self.vantage == Vantage::GatewayLog {
            return events;
        }
        let answered = at.plus_micros(duration);
        for tool in tools {
            events.push(self.tool_definition(rng, answered, tool.name, tool.description, tool.input_schema));
        }
        events
    }

    pub fn tool_definition(
        &mut self,
        rng: &mut impl Rng,
        at: Timestamp,
        name: &str,
        description: &str,
        input_schema: &str,
    ) -> OwnedEvent {
        let mut e = self.base(rng, at, EventKind::ToolDefinition);
        e.method = Some("tools/list".into());
        e.message_type = Some(MessageType::Response);
        e.direction = Some(Direction::ServerToClient);
        e.tool_name = Some(name.to_owned().into());
        e.tool_description = Some(description.to_owned().into());
        e.tool_description_hash = Some(description_sha256(description).into());
        let schema: serde_json::Value = serde_json::from_str(input_schema).expect("catalog schemas are JSON");
        e.tool_input_schema_hash = Some(canonical_json_sha256(&schema).into());
        e
    }

    pub fn call_tool(
        &mut self,
        rng: &mut impl Rng,
        at: Timestamp,
        tool: &str,
        arguments: serde_json::Value,
        result: &str,
    ) -> OwnedEvent {
        let duration = rng.random_range(15_000..2_500_000);
        let mut e = self.request(rng, at, "tools/call", duration);
        e.tool_name = Some(tool.to_owned().into());
        e.tool_arguments = Some(arguments.to_string().into());
        e.tool_arguments_truncated = Some(false);
        if self.vantage != Vantage::GatewayLog {
            e.tool_result = Some(result.to_owned().into());
            e.tool_result_truncated = Some(false);
            e.tool_result_size = Some(result.len() as i64);
            e.tool_result_is_error = Some(false);
        }
        e
    }

    /// An HTTP request refused before JSON-RPC, such as a 401 for a bad token.
    pub fn refused(&mut self, rng: &mut impl Rng, at: Timestamp, status: i64) -> OwnedEvent {
        let mut e = self.base(rng, at, EventKind::Http);
        e.http_method = Some("POST".into());
        e.http_status = Some(status);
        e.error_type = Some(status.to_string().into());
        e.duration_us = Some(rng.random_range(300..4_000));
        e
    }
}
