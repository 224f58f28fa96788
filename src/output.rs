//! Printing from commands, through the one printer of `mcpsiem_runtime::report`.

use anyhow::Result;
use serde::Serialize;

/// Prints a stage's run summary as one JSON line on stdout.
pub fn print_json_line<S: Serialize>(summary: &S) -> Result<()> {
    Ok(mcpsiem_runtime::report::print_json_line(summary)?)
}
