//! The query service: SQL over HTTP and the PostgreSQL protocol, forensic views, and signed evidence.

mod bench_agreement;
mod evidence;
mod golden;
mod postgres;
mod service;
mod views;
