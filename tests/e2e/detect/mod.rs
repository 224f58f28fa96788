//! The detector: the rule pack, live on the stream and replayed over the lake, across restarts.

mod crash;
mod gateway_logs;
mod injection_eval;
mod live_replay;
mod real_traffic;
mod restart;
mod rules_check;
mod scenarios;
