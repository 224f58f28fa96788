//! The ingester and the lake: exactly once under crashes, dead letters, compaction, and the lake read by other engines.

mod broker_stall;
mod compaction;
mod compaction_crash;
mod dead_letters;
mod duplicates;
mod exactly_once;
mod external_readers;
mod kafka_roundtrip;
mod object_store;
