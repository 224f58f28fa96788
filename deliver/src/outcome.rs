//! How one delivery attempt ended, as every destination reports it.

use std::time::Duration;

/// What an attempt came to.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Delivered {
        status: Option<u16>,
        reference: Option<String>,
    },
    /// Worth trying again; `after` is the destination's own wish (429 `Retry-After`).
    Retry {
        reason: String,
        status: Option<u16>,
        after: Option<Duration>,
    },
    /// Will fail the same way every time (400, 401, 403, 404…): dead-lettered at once.
    Failed {
        reason: String,
        status: Option<u16>,
    },
}
