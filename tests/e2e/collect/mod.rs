//! The collectors: proxies between real MCP clients and servers, the tailer, the intake, and their shipper through broker outages.

mod durable_intake;
mod intake;
mod otlp;
mod outage;
mod proxy_http;
mod proxy_stdio;
mod tail;
