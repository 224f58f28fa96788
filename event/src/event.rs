//! The MCP audit event: one Rust type, its JSON form and its Arrow columns.

use std::borrow::Cow;
use std::fmt;

use arrow_array::builder::{ArrayBuilder, MapBuilder, StringBuilder};
use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, RecordBatch};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde_json::value::RawValue;

use crate::schema::{self, FieldSpec};
use crate::time::Timestamp;
use crate::value::{FieldValue, Text, TextList, text_enum};

text_enum! {
    /// What an event records.
    EventKind {
        /// A JSON-RPC message: a request (with its response when the collector saw it),
        /// a response without its request, or a notification.
        Message => "message",
        /// One tool as offered in a `tools/list` result.
        ToolDefinition => "tool_definition",
        /// An HTTP exchange refused before any JSON-RPC was read (for example a 401).
        Http => "http",
        /// Bytes that were meant to be JSON-RPC and were not; forwarded, and recorded.
        Malformed => "malformed",
    }
}

text_enum! {
    /// The JSON-RPC message type.
    MessageType {
        Request => "request",
        Response => "response",
        Notification => "notification",
    }
}

text_enum! {
    /// Who sent the message.
    Direction {
        ClientToServer => "client_to_server",
        ServerToClient => "server_to_client",
    }
}

/// The event id: a ULID set by the collector, the key that removes duplicates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId(pub ulid::Ulid);

impl EventId {
    pub fn new() -> Self {
        Self(ulid::Ulid::new())
    }
}

impl Default for EventId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl<'a> FieldValue<'a> for EventId {
    type Builder = StringBuilder;
    type Owned = EventId;
    const KIND: crate::value::ValueKind = crate::value::ValueKind::String;

    fn new_builder(capacity: usize) -> StringBuilder {
        StringBuilder::with_capacity(capacity, capacity * 26)
    }
    fn append(b: &mut StringBuilder, v: Option<&Self>) {
        match v {
            Some(id) => b.append_value(id.0.array_to_str(&mut [0; ulid::ULID_LEN])),
            None => b.append_null(),
        }
    }
    fn deserialize<D: Deserializer<'a>>(d: D) -> Result<Self, D::Error> {
        struct IdVisitor;
        impl Visitor<'_> for IdVisitor {
            type Value = EventId;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a ULID string of 26 characters")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<EventId, E> {
                // 26 base-32 digits hold 130 bits: a first digit above 7 does not fit the
                // 128 of a ULID, and the decoder would wrap it into another id silently.
                if !v.as_bytes().first().is_some_and(|c| (b'0'..=b'7').contains(c)) {
                    return Err(E::invalid_value(de::Unexpected::Str(v), &"a ULID, whose first character is 0 to 7"));
                }
                ulid::Ulid::from_string(v).map(EventId).map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
            }
        }
        d.deserialize_str(IdVisitor)
    }
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.array_to_str(&mut [0; ulid::ULID_LEN]))
    }
    fn read(column: &'a ArrayRef, row: usize) -> Option<Self> {
        let column = column.as_string::<i32>();
        column.is_valid(row).then(|| ulid::Ulid::from_string(column.value(row)).ok().map(EventId)).flatten()
    }
    fn as_field_ref(&self) -> crate::value::FieldRef<'_> {
        crate::value::FieldRef::Text(Cow::Owned(self.0.to_string()))
    }
    fn into_owned(self) -> Self {
        self
    }
}

/// How a field is held in [`McpEvent`]: required fields as the value, optional ones as
/// `Option`. The decoder and encoder go through this trait so both kinds share one path.
pub trait Slot<'a>: Sized {
    type Value: FieldValue<'a>;
    type Owned;
    const REQUIRED: bool;
    fn get(&self) -> Option<&Self::Value>;
    /// `None` when a required field is missing.
    fn from_value(value: Option<Self::Value>) -> Option<Self>;
    fn into_owned(self) -> Self::Owned;
}

impl<'a, T: FieldValue<'a>> Slot<'a> for Option<T> {
    type Value = T;
    type Owned = Option<T::Owned>;
    const REQUIRED: bool = false;
    fn get(&self) -> Option<&T> {
        self.as_ref()
    }
    fn from_value(value: Option<T>) -> Option<Self> {
        Some(value)
    }
    fn into_owned(self) -> Self::Owned {
        self.map(FieldValue::into_owned)
    }
}

macro_rules! required_slot {
    ($($t:ty),+) => {$(
        impl<'a> Slot<'a> for $t {
            type Value = $t;
            type Owned = $t;
            const REQUIRED: bool = true;
            fn get(&self) -> Option<&$t> {
                Some(self)
            }
            fn from_value(value: Option<$t>) -> Option<Self> {
                value
            }
            fn into_owned(self) -> $t {
                self
            }
        }
    )+};
}
required_slot!(EventId, Timestamp, EventKind);

/// Fields the model does not know, kept verbatim in arrival order: key and raw JSON value.
#[derive(Clone, Debug, Default)]
pub struct Attributes<'a>(pub Vec<(Text<'a>, Cow<'a, RawValue>)>);

/// Equal when the keys, their order and the values' JSON text are equal: verbatim
/// preservation is the promise, so `{"a":1}` and `{"a": 1}` differ.
impl PartialEq for Attributes<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len()
            && self.0.iter().zip(&other.0).all(|((ka, va), (kb, vb))| ka == kb && va.get() == vb.get())
    }
}

impl<'a> Attributes<'a> {
    pub fn get(&self, key: &str) -> Option<&RawValue> {
        self.0.iter().find(|(k, _)| k.as_str() == key).map(|(_, v)| v.as_ref())
    }

    /// Sets `key` to the JSON form of `value`, replacing an earlier value.
    pub fn insert(&mut self, key: impl Into<String>, value: &serde_json::Value) {
        let key = key.into();
        let raw = serde_json::value::to_raw_value(value).expect("a serde_json::Value always serializes");
        match self.0.iter_mut().find(|(k, _)| k.as_str() == key) {
            Some(slot) => slot.1 = Cow::Owned(raw),
            None => self.0.push((Text::from(key), Cow::Owned(raw))),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn into_owned(self) -> Attributes<'static> {
        Attributes(self.0.into_iter().map(|(k, v)| (k.into_owned(), Cow::Owned(v.into_owned()))).collect())
    }
}

/// What was wrong with one field while decoding; the decoder turns it into a
/// [`crate::DecodeError`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldProblem {
    Missing(&'static str),
    Duplicate(&'static str),
    Invalid { field: &'static str, kind: crate::value::ValueKind, detail: String },
}

/// Reads one field value, with `null` meaning absent.
struct ValueSeed<T>(std::marker::PhantomData<T>);

impl<'de, T: FieldValue<'de>> DeserializeSeed<'de> for ValueSeed<T> {
    type Value = Option<T>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<T>, D::Error> {
        struct OptionVisitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: FieldValue<'de>> Visitor<'de> for OptionVisitor<T> {
            type Value = Option<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(T::KIND.json_name())
            }
            fn visit_none<E: de::Error>(self) -> Result<Option<T>, E> {
                Ok(None)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Option<T>, E> {
                Ok(None)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<T>, D::Error> {
                T::deserialize(d).map(Some)
            }
        }
        d.deserialize_option(OptionVisitor(std::marker::PhantomData))
    }
}

/// Deserializes an event while recording which field went wrong, if one did.
pub(crate) struct EventSeed<'p> {
    pub problem: &'p mut Option<FieldProblem>,
}

macro_rules! define_event {
    ($(
        $(#[doc = $doc:literal])+
        $name:ident : $slot:ty => $json:literal,
    )+) => {
        /// One MCP audit event. Field documentation is in `docs/schema.md`, generated from
        /// this definition.
        #[derive(Clone, Debug, PartialEq)]
        pub struct McpEvent<'a> {
            $( $(#[doc = $doc])+ pub $name: $slot, )+
            /// Unknown fields, kept verbatim.
            pub attributes: Attributes<'a>,
        }

        #[derive(Default)]
        struct PartialEvent<'a> {
            $( $name: Option<<$slot as Slot<'a>>::Value>, )+
            attributes: Vec<(Text<'a>, Cow<'a, RawValue>)>,
        }

        impl<'a> PartialEvent<'a> {
            fn complete(self) -> Result<McpEvent<'a>, FieldProblem> {
                Ok(McpEvent {
                    $( $name: <$slot as Slot<'a>>::from_value(self.$name).ok_or(FieldProblem::Missing($json))?, )+
                    attributes: Attributes(self.attributes),
                })
            }
        }

        impl<'a> McpEvent<'a> {
            pub(crate) fn field_specs() -> Vec<FieldSpec> {
                vec![$(
                    FieldSpec {
                        json_name: $json,
                        column_name: schema::column_name_for($json),
                        kind: <<$slot as Slot<'a>>::Value as FieldValue<'a>>::KIND,
                        required: <$slot as Slot<'a>>::REQUIRED,
                        description: [$($doc),+].iter().map(|d| d.trim()).collect::<Vec<_>>().join(" "),
                    },
                )+]
            }

            /// The value of a field by its JSON (Sigma) name, such as `mcp.method.name`; fields
            /// outside the model come from the attributes as raw JSON.
            pub fn field(&self, json_name: &str) -> Option<crate::value::FieldRef<'_>> {
                match json_name {
                    $( $json => Slot::get(&self.$name).map(FieldValue::as_field_ref), )+
                    _ => self.attributes.get(json_name).map(crate::value::FieldRef::Json),
                }
            }

            /// The getter of a model field, resolved once from its JSON name so that hot
            /// paths skip the name comparisons of [`McpEvent::field`]; `None` for names
            /// outside the model (look those up in the attributes).
            pub fn accessor(json_name: &str) -> Option<FieldAccessor> {
                match json_name {
                    $( $json => Some(|e| Slot::get(&e.$name).map(FieldValue::as_field_ref)), )+
                    _ => None,
                }
            }

            /// Every field that has a value, model fields first, then the attributes.
            pub fn fields(&self) -> Vec<(&str, crate::value::FieldRef<'_>)> {
                let mut out = Vec::with_capacity(24);
                $(
                    if let Some(value) = Slot::get(&self.$name) {
                        out.push(($json, FieldValue::as_field_ref(value)));
                    }
                )+
                for (key, value) in &self.attributes.0 {
                    out.push((key.as_str(), crate::value::FieldRef::Json(value.as_ref())));
                }
                out
            }

            /// An event with the required fields set and every other field empty.
            pub fn new(id: EventId, time: Timestamp, kind: EventKind) -> Self {
                PartialEvent { id: Some(id), time: Some(time), kind: Some(kind), ..Default::default() }
                    .complete()
                    .expect("the required fields are set")
            }

            /// The same event, owning all its data.
            pub fn into_owned(self) -> McpEvent<'static> {
                McpEvent {
                    $( $name: <$slot as Slot<'a>>::into_owned(self.$name), )+
                    attributes: self.attributes.into_owned(),
                }
            }

            /// Reads row `row` of a batch with the [`schema::arrow_schema`] columns.
            /// The batch's schema must have been checked with [`EventColumns::check_schema`].
            pub fn from_batch_row(columns: &'a [ArrayRef], row: usize) -> Result<Self, FieldProblem> {
                let mut i = 0usize;
                let mut partial = PartialEvent::default();
                $(
                    partial.$name = <<$slot as Slot<'a>>::Value as FieldValue<'a>>::read(&columns[i], row);
                    i += 1;
                )+
                let attributes = columns[i].as_map();
                if attributes.is_valid(row) {
                    let offsets = attributes.value_offsets();
                    let keys = attributes.keys().as_string::<i32>();
                    let values = attributes.values().as_string::<i32>();
                    for entry in offsets[row] as usize..offsets[row + 1] as usize {
                        let raw: &'a RawValue = serde_json::from_str(values.value(entry)).map_err(|e| FieldProblem::Invalid {
                            field: schema::ATTRIBUTES_COLUMN,
                            kind: crate::value::ValueKind::String,
                            detail: format!("attribute `{}` is not JSON: {e}", keys.value(entry)),
                        })?;
                        partial.attributes.push((Text(Cow::Borrowed(keys.value(entry))), Cow::Borrowed(raw)));
                    }
                }
                partial.complete()
            }
        }

        impl serde::Serialize for McpEvent<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                struct As<'v, T>(&'v T);
                impl<'v, 'a, T: FieldValue<'a>> serde::Serialize for As<'v, T> {
                    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                        self.0.serialize(s)
                    }
                }
                let mut map = s.serialize_map(None)?;
                $(
                    if let Some(value) = Slot::get(&self.$name) {
                        map.serialize_entry($json, &As(value))?;
                    }
                )+
                for (key, value) in &self.attributes.0 {
                    map.serialize_entry(key.as_str(), value.as_ref())?;
                }
                map.end()
            }
        }

        impl<'a> Visitor<'a> for EventSeed<'_> {
            type Value = McpEvent<'a>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an MCP audit event (a JSON object)")
            }

            fn visit_map<A: MapAccess<'a>>(self, mut map: A) -> Result<McpEvent<'a>, A::Error> {
                let mut partial = PartialEvent::default();
                while let Some(key) = map.next_key::<Text<'a>>()? {
                    match key.as_str() {
                        $(
                            $json => {
                                if partial.$name.is_some() {
                                    *self.problem = Some(FieldProblem::Duplicate($json));
                                    return Err(de::Error::custom(format!("field `{}` appears twice", $json)));
                                }
                                type V<'a> = <$slot as Slot<'a>>::Value;
                                match map.next_value_seed(ValueSeed::<V<'a>>(std::marker::PhantomData)) {
                                    Ok(value) => partial.$name = value,
                                    Err(e) => {
                                        *self.problem = Some(FieldProblem::Invalid {
                                            field: $json,
                                            kind: <V<'a> as FieldValue<'a>>::KIND,
                                            detail: e.to_string(),
                                        });
                                        return Err(e);
                                    }
                                }
                            }
                        )+
                        _ => {
                            let value = map.next_value::<&'a RawValue>()?;
                            partial.attributes.push((key, Cow::Borrowed(value)));
                        }
                    }
                }
                partial.complete().map_err(|problem| {
                    let message = format!("{problem:?}");
                    *self.problem = Some(problem);
                    de::Error::custom(message)
                })
            }
        }

        /// Arrow builders for a batch of events, one per column of [`schema::arrow_schema`].
        /// The lifetime only names the field types; use [`EventColumns`].
        pub struct EventColumnsFor<'a> {
            $( $name: <<$slot as Slot<'a>>::Value as FieldValue<'a>>::Builder, )+
            attributes: MapBuilder<StringBuilder, StringBuilder>,
        }

        impl<'a> EventColumnsFor<'a> {
            pub fn with_capacity(capacity: usize) -> Self {
                Self {
                    $( $name: <<$slot as Slot<'a>>::Value as FieldValue<'a>>::new_builder(capacity), )+
                    attributes: MapBuilder::new(None, StringBuilder::new(), StringBuilder::new()),
                }
            }

            pub fn append(&mut self, event: &McpEvent<'_>) {
                $( FieldValue::append(&mut self.$name, Slot::get(&event.$name)); )+
                if event.attributes.is_empty() {
                    self.attributes.append(false).expect("map keys and values stay in step");
                } else {
                    for (key, value) in &event.attributes.0 {
                        self.attributes.keys().append_value(key.as_str());
                        self.attributes.values().append_value(value.get());
                    }
                    self.attributes.append(true).expect("map keys and values stay in step");
                }
            }

            pub fn len(&self) -> usize {
                self.id.len()
            }

            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }

            /// Builds the batch and leaves the builders empty for the next one.
            pub fn finish(&mut self) -> RecordBatch {
                let columns: Vec<ArrayRef> = vec![
                    $( ArrayBuilder::finish(&mut self.$name), )+
                    std::sync::Arc::new(self.attributes.finish()),
                ];
                RecordBatch::try_new(schema::arrow_schema(), columns).expect("the builders follow the schema")
            }
        }
    };
}

define_event! {
    /// Unique id of the event, a ULID set by the collector. The ingester drops a second copy
    /// by it (within `ingest.dedup_window_records` of the first).
    id: EventId => "event.id",
    /// When the event happened, as seen by the collector (UTC, microseconds).
    time: Timestamp => "event.time",
    /// When the ingester wrote the event to the lake. Collectors leave it empty.
    ingest_time: Option<Timestamp> => "event.ingest_time",
    /// What the event records: `message`, `tool_definition`, `http` or `malformed`.
    kind: EventKind => "event.kind",
    /// How long the request took until its response, in microseconds.
    duration_us: Option<i64> => "event.duration_us",
    /// The JSON-RPC method, such as `tools/call` or `initialize` (OpenTelemetry `mcp.method.name`).
    method: Option<Text<'a>> => "mcp.method.name",
    /// The JSON-RPC request id, as a string even when the client sent a number.
    request_id: Option<Text<'a>> => "jsonrpc.request.id",
    /// `request`, `response` or `notification`. A request whose response was seen is one
    /// `request` event carrying both.
    message_type: Option<MessageType> => "mcp.message.type",
    /// `client_to_server` or `server_to_client` (servers send requests too, such as sampling).
    direction: Option<Direction> => "mcp.direction",
    /// The negotiated MCP protocol revision, such as `2025-11-25` or `2026-07-28`.
    protocol_version: Option<Text<'a>> => "mcp.protocol.version",
    /// The MCP session id. Absent in the 2026-07-28 revision and in stdio: never assume one.
    session_id: Option<Text<'a>> => "mcp.session.id",
    /// `pipe` for stdio, `tcp` for HTTP (OpenTelemetry `network.transport`).
    network_transport: Option<Text<'a>> => "network.transport",
    /// The MCP transport: `stdio`, `streamable_http` or `sse`.
    transport: Option<Text<'a>> => "mcp.transport",
    /// The MCP client's `clientInfo.name`, such as `claude-code` or `cursor`.
    client_name: Option<Text<'a>> => "mcp.client.name",
    /// The MCP client's `clientInfo.version`.
    client_version: Option<Text<'a>> => "mcp.client.version",
    /// The network address the client connected from.
    client_address: Option<Text<'a>> => "client.address",
    /// The HTTP `User-Agent` header.
    user_agent: Option<Text<'a>> => "user_agent.original",
    /// The HTTP `Origin` header (browsers set it; DNS rebinding shows here).
    origin: Option<Text<'a>> => "http.request.header.origin",
    /// The HTTP method of the exchange.
    http_method: Option<Text<'a>> => "http.request.method",
    /// The HTTP status the server answered with (401 and 403 matter).
    http_status: Option<i64> => "http.response.status_code",
    /// The MCP server's `serverInfo.name`, or the name the gateway registers it under.
    server_name: Option<Text<'a>> => "mcp.server.name",
    /// The MCP server's `serverInfo.version`.
    server_version: Option<Text<'a>> => "mcp.server.version",
    /// Where the server is reached: host and port, or URL (OpenTelemetry `server.address`).
    server_address: Option<Text<'a>> => "server.address",
    /// For stdio servers, the command line that started the server.
    server_command: Option<Text<'a>> => "mcp.server.command",
    /// The caller as the collector resolved it (usually the token's `sub`).
    user_id: Option<Text<'a>> => "enduser.id",
    /// Keyed fingerprint of the bearer token: hex HMAC-SHA256 under the site key. The raw
    /// token never leaves the collector.
    token_fingerprint: Option<Text<'a>> => "auth.token.fingerprint",
    /// The token's `sub` claim (read without verification).
    token_subject: Option<Text<'a>> => "auth.token.sub",
    /// The token's `iss` claim.
    token_issuer: Option<Text<'a>> => "auth.token.iss",
    /// The token's `aud` claim, always as a list.
    token_audience: Option<TextList<'a>> => "auth.token.aud",
    /// The OAuth client the token was issued to (`client_id` or `azp`).
    token_client_id: Option<Text<'a>> => "auth.token.client_id",
    /// The token's `jti` claim.
    token_id: Option<Text<'a>> => "auth.token.jti",
    /// The token's scopes (`scope` split on spaces, or `scp`).
    token_scopes: Option<TextList<'a>> => "auth.token.scopes",
    /// The token's `exp` claim as a timestamp.
    token_expires: Option<Timestamp> => "auth.token.exp",
    /// The token's `iat` claim as a timestamp.
    token_issued: Option<Timestamp> => "auth.token.iat",
    /// The tool called or defined (OpenTelemetry `gen_ai.tool.name`).
    tool_name: Option<Text<'a>> => "gen_ai.tool.name",
    /// The tool call's arguments as JSON text, cut at the collector's capture limit.
    tool_arguments: Option<Text<'a>> => "gen_ai.tool.call.arguments",
    /// True when the arguments were cut at the capture limit.
    tool_arguments_truncated: Option<bool> => "gen_ai.tool.call.arguments.truncated",
    /// The tool call's result as text (text content joined; other content as JSON), cut at
    /// the capture limit, after redaction.
    tool_result: Option<Text<'a>> => "gen_ai.tool.call.result",
    /// True when the result was cut at the capture limit.
    tool_result_truncated: Option<bool> => "gen_ai.tool.call.result.truncated",
    /// Size of the whole result in bytes, before any cut.
    tool_result_size: Option<i64> => "gen_ai.tool.call.result.size",
    /// The result's `isError` flag: the tool ran and reported a failure.
    tool_result_is_error: Option<bool> => "mcp.tool.result.is_error",
    /// A tool's description as offered in `tools/list` (tool definition events).
    tool_description: Option<Text<'a>> => "mcp.tool.description",
    /// Hex SHA-256 of the tool description; a change for the same server and tool is a rug pull.
    tool_description_hash: Option<Text<'a>> => "mcp.tool.description.sha256",
    /// Hex SHA-256 of the tool's input schema in canonical JSON (sorted keys, no spaces).
    tool_input_schema_hash: Option<Text<'a>> => "mcp.tool.input_schema.sha256",
    /// The resource read or subscribed (OpenTelemetry `mcp.resource.uri`).
    resource_uri: Option<Text<'a>> => "mcp.resource.uri",
    /// The prompt requested (OpenTelemetry `gen_ai.prompt.name`).
    prompt_name: Option<Text<'a>> => "gen_ai.prompt.name",
    /// The JSON-RPC error code of the response.
    error_code: Option<i64> => "rpc.jsonrpc.error_code",
    /// The JSON-RPC error message of the response.
    error_message: Option<Text<'a>> => "rpc.jsonrpc.error_message",
    /// A short class of the failure (OpenTelemetry `error.type`): the JSON-RPC code name,
    /// the HTTP status, `tool_error` or `timeout`.
    error_type: Option<Text<'a>> => "error.type",
    /// The collector instance that saw the traffic.
    collector_id: Option<Text<'a>> => "collector.id",
    /// The source format: `proxy_stdio`, `proxy_http`, `intake`, `agentgateway`,
    /// `docker_mcp_gateway`, `mcpsiem` (our own NDJSON) or `gen`.
    collector_format: Option<Text<'a>> => "collector.format",
}

/// An event that owns all its data.
pub type OwnedEvent = McpEvent<'static>;

/// A model field's getter (see [`McpEvent::accessor`]).
pub type FieldAccessor = for<'e, 'x> fn(&'e McpEvent<'x>) -> Option<crate::value::FieldRef<'e>>;

/// Arrow builders for a batch of events.
pub type EventColumns = EventColumnsFor<'static>;

impl EventColumns {
    /// Checks that a batch read from elsewhere (a Parquet file) has the columns
    /// [`McpEvent::from_batch_row`] expects, in order and with their types.
    pub fn check_schema(batch: &RecordBatch) -> Result<(), String> {
        let expected = schema::arrow_schema();
        let actual = batch.schema();
        if actual.fields().len() != expected.fields().len() {
            return Err(format!("expected {} columns, found {}", expected.fields().len(), actual.fields().len()));
        }
        for (want, got) in expected.fields().iter().zip(actual.fields().iter()) {
            if want.name() != got.name() || want.data_type() != got.data_type() {
                return Err(format!(
                    "column `{}` of type {} expected, found `{}` of type {}",
                    want.name(),
                    want.data_type(),
                    got.name(),
                    got.data_type()
                ));
            }
        }
        Ok(())
    }
}
