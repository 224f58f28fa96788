//! The query service: SQL over HTTP and the PostgreSQL protocol, forensic views, signed
//! evidence, and the alert workflow.

mod bench_agreement;
mod evidence;
mod golden;
mod postgres;
mod service;
mod triage;
mod views;
