//! The query service: SQL over the lake for forensics, and evidence export.
