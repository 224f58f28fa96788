//! Progress bars for long jobs, shown only on a terminal.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// A bar counting `total` items of `unit`, drawn on stderr when it is a terminal.
pub fn counter(total: u64, unit: &str) -> ProgressBar {
    let bar = if std::io::stderr().is_terminal() { ProgressBar::new(total) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} [{{elapsed_precise}}] {{wide_bar}} {{pos}}/{{len}} {unit} ({{per_sec}}, eta {{eta}})"
        ))
        .expect("a valid template"),
    );
    bar
}

/// A counter of bytes with no known total, drawn on stderr when it is a terminal.
pub fn bytes(what: &str) -> ProgressBar {
    let bar = if std::io::stderr().is_terminal() { ProgressBar::new_spinner() } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} [{{elapsed_precise}}] {what}: {{bytes}} ({{bytes_per_sec}})"
        ))
        .expect("a valid template"),
    );
    bar
}

/// A counter of rows with no known total, drawn on stderr when it is a terminal.
pub fn rows(what: &str) -> ProgressBar {
    let bar = if std::io::stderr().is_terminal() { ProgressBar::new_spinner() } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template(&format!("{{spinner}} [{{elapsed_precise}}] {what}: {{pos}} rows ({{per_sec}})"))
            .expect("a valid template"),
    );
    bar
}
