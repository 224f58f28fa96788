//! The ingester: consumes the events topic and writes the Parquet lake, exactly once.
//!
//! Empty until the ingester issue lands; the event model it will write is `mcpsiem-event`.
