//! The detector: Sigma detection, filter, correlation and first-seen rules over the events
//! stream and the lake.

pub mod alert;
pub mod closes;
pub mod config;
pub mod engine;
pub mod normalize;
pub mod reload;
pub mod replay;
pub mod rule_tests;
pub mod rules;
pub mod rules_doc;
pub mod stable_hash;
pub mod state_file;
pub mod stream;

pub use alert::{Alert, AlertSource};
pub use config::DetectConfig;
pub use engine::{Engine, EngineConfig, EngineState, EngineStats, OpenAlert, Restored};
pub use stream::{Detector, StreamControl, StreamSummary};
