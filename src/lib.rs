//! The `mcpsiem` command line: its flags ([`cli`]), what each command does ([`commands`]),
//! and the one configuration every command reads ([`config`]).
//!
//! The pipeline itself lives in its crates: `mcpsiem-event` (the contract), `mcpsiem-lake`,
//! `mcpsiem-runtime` (what stages share), and one crate per stage (`mcpsiem-collect`,
//! `mcpsiem-ingest`, `mcpsiem-detect`, `mcpsiem-deliver`, `mcpsiem-query`).

pub mod cli;
pub mod commands;
pub mod config;
pub mod output;
