//! The detector: Sigma detection, filter, correlation and first-seen rules over the events
//! stream and the lake.

pub mod alert;
pub mod engine;
pub mod rules;

pub use alert::{Alert, AlertSource};
pub use engine::{Engine, EngineConfig, EngineStats};
