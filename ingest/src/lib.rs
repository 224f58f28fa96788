//! The ingester: consumes the events topic and writes the Parquet lake, exactly once.
//!
//! Grows with the ingester issue; today it holds the lake layout shared by later parts.
