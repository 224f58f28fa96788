//! The one way commands and benchmarks print what they did: a report as text (its
//! `Display`) or as JSON for scripts, and run summaries as one JSON line.

use std::fmt::Display;

use serde::Serialize;

/// Prints `report` as pretty JSON when `json`, else as its text form.
pub fn print_report<R: Serialize + Display>(report: &R, json: bool) -> Result<(), serde_json::Error> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        println!("{report}");
    }
    Ok(())
}

/// Prints `summary` as one JSON line on stdout (what a long-running stage did once it stops).
pub fn print_json_line<S: Serialize>(summary: &S) -> Result<(), serde_json::Error> {
    println!("{}", serde_json::to_string(summary)?);
    Ok(())
}
