//! Collectors: MCP traffic into audit events, shipped to Kafka without loss.

pub mod shipper;
pub mod spool;
