//! The detector: Sigma detection, filter, correlation and first-seen rules over the events
//! stream and the lake.

pub mod alert;
pub mod config;
pub mod engine;
pub mod replay;
pub mod rules;
pub mod stream;

pub use alert::{Alert, AlertSource};
pub use config::DetectConfig;
pub use engine::{Engine, EngineConfig, EngineStats};
pub use stream::{Detector, StreamControl, StreamSummary};
