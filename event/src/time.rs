//! Event timestamps: UTC, microsecond precision, RFC 3339 on the wire.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};

/// A UTC instant with microsecond precision, stored as microseconds since the Unix epoch.
///
/// Microseconds, not nanoseconds: that is what Parquet readers (DuckDB, pyarrow, DataFusion)
/// agree on for `TIMESTAMP`, and what MCP latencies need.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// Why a timestamp string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not an RFC 3339 timestamp such as 2026-11-24T10:15:00.123456Z ({reason})")]
pub struct TimestampError {
    pub value: String,
    pub reason: String,
}

impl Timestamp {
    pub const fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    pub const fn as_micros(self) -> i64 {
        self.0
    }

    pub fn now() -> Self {
        Self::from_datetime(Utc::now())
    }

    /// Truncates anything finer than a microsecond.
    pub fn from_datetime(at: DateTime<Utc>) -> Self {
        Self(at.timestamp_micros())
    }

    pub fn to_datetime(self) -> DateTime<Utc> {
        // chrono spans ±262,000 years, i64 microseconds ±292,000: clamp rather than panic on
        // a corrupt or hostile value read back from a file.
        DateTime::from_timestamp_micros(self.0).unwrap_or(if self.0 < 0 {
            DateTime::<Utc>::MIN_UTC
        } else {
            DateTime::<Utc>::MAX_UTC
        })
    }

    /// Parses RFC 3339 with any UTC offset; fractions finer than a microsecond are truncated.
    pub fn parse(text: &str) -> Result<Self, TimestampError> {
        DateTime::parse_from_rfc3339(text)
            .map(|at| Self::from_datetime(at.with_timezone(&Utc)))
            .map_err(|e| TimestampError { value: text.chars().take(64).collect(), reason: e.to_string() })
    }

    /// Seconds since the epoch, as JWT `exp`/`iat` claims carry them.
    pub fn from_unix_seconds(seconds: i64) -> Option<Self> {
        seconds.checked_mul(1_000_000).map(Self)
    }

    pub fn plus_micros(self, micros: i64) -> Self {
        Self(self.0.saturating_add(micros))
    }
}

impl fmt::Display for Timestamp {
    /// Always six fractional digits and `Z`, so the text form round-trips exactly.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_datetime().to_rfc3339_opts(SecondsFormat::Micros, true))
    }
}

impl std::str::FromStr for Timestamp {
    type Err = TimestampError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// RFC 3339 text, as on the wire, for the types that carry timestamps in JSON (alerts).
impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extreme_values_clamp_instead_of_panicking() {
        assert_eq!(Timestamp::from_micros(i64::MAX).to_datetime(), DateTime::<Utc>::MAX_UTC);
        assert_eq!(Timestamp::from_micros(i64::MIN).to_datetime(), DateTime::<Utc>::MIN_UTC);
        let _ = Timestamp::from_micros(i64::MIN).to_string();
    }

    #[test]
    fn text_form_round_trips() {
        let t = Timestamp::parse("2026-11-24T10:15:00.123456Z").unwrap();
        assert_eq!(t.to_string(), "2026-11-24T10:15:00.123456Z");
        assert_eq!(Timestamp::parse(&t.to_string()).unwrap(), t);
    }

    #[test]
    fn offsets_are_normalised_to_utc_and_nanos_truncated() {
        let t = Timestamp::parse("2026-11-24T12:15:00.123456789+02:00").unwrap();
        assert_eq!(t.to_string(), "2026-11-24T10:15:00.123456Z");
    }

    #[test]
    fn garbage_is_refused_with_the_value() {
        let err = Timestamp::parse("yesterday").unwrap_err();
        assert_eq!(err.value, "yesterday");
        assert!(err.to_string().contains("RFC 3339"));
    }
}
