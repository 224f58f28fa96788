//! The query service: SQL over the lake for forensics, with roles, limits and an audit log.

pub mod audit;
pub mod client_socket;
pub mod config;
pub mod engine;
pub mod error;
pub mod export;
pub mod format;
pub mod http;
pub mod memory;
pub mod nesting;
pub mod ocsf;
pub mod pg;
pub mod request;
pub mod tables;
pub mod triage;
pub mod views;

pub use config::QueryConfig;
pub use engine::{Described, Dialect, QueryAnswer, QueryEngine, QueryRequest};
pub use error::QueryError;
pub use format::Format;
pub use mcpsiem_runtime::auth::{ApiKey, Caller, Role};
pub use tables::TimeRange;
