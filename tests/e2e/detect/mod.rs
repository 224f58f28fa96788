//! The detector: the rule pack, live on the stream and replayed over the lake, across restarts.

mod crash;
mod live_replay;
mod restart;
mod rules_check;
mod scenarios;
