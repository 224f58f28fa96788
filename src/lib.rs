//! mcpsiem: a streaming SIEM for Model Context Protocol audit logs.
//!
//! This crate is the `mcpsiem` command line; the stages live in their own crates
//! (`mcpsiem-event`, `mcpsiem-ingest`, `mcpsiem-detect`, `mcpsiem-query`).

pub mod alerts_cmd;
pub mod bench;
pub mod bench_collect;
pub mod bench_delivery;
pub mod bench_detect;
pub mod bench_export;
pub mod bench_ingest;
pub mod bench_latency;
pub mod bench_noise;
pub mod bench_query;
pub mod bench_rsigma;
pub mod broker;
pub mod collect;
pub mod collect_cmd;
pub mod config;
pub mod detect_cmd;
pub mod evidence_cmd;
pub mod generate;
pub mod ingest_cmd;
pub mod kafka_out;
pub mod lake_cmd;
pub mod lake_runtime;
pub mod progress;
pub mod query_cmd;
pub mod serve;
pub mod up;
