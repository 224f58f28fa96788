//! Collectors: MCP traffic into audit events, shipped to Kafka without loss.
//!
//! - [`stdio_proxy`] and [`http_proxy`] sit in front of a real MCP server;
//! - [`tail`] follows gateways' JSON-lines logs;
//! - [`intake`] takes events over HTTP, and OTLP spans and logs ([`otlp`]).
//!
//! All of them build events with the same [`observer`] (JSON-RPC into events) or mapping,
//! scrub them with [`capture`], and hand them to one [`sink::EventSink`]. Each is a
//! [`harness::Collector`], started, run and stopped by [`harness::run`].

pub mod capture;
pub mod config;
pub mod echo_server;
pub mod harness;
pub mod http_proxy;
pub mod intake;
pub mod observer;
pub mod otlp;
pub mod otlp_grpc;
pub mod shipper;
pub mod sink;
pub mod spool;
pub mod sse;
pub mod stdio_proxy;
pub mod tail;
pub mod token;
