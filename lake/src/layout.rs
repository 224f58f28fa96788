//! Names and paths: tables, hour partitions, data files.

use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Timelike, Utc};
use object_store::path::Path;

use mcpsiem_event::Timestamp;

/// One table of the lake.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// Decoded audit events, partitioned by event time.
    Events,
    /// Records that could not be ingested, with the reason, partitioned by receive time.
    DeadLetters,
    /// Alerts from the detector, partitioned by alert time.
    Alerts,
    /// Analysts' changes of alerts (acknowledge, assign, close…), partitioned by change time.
    AlertChanges,
    /// Every version of every silence (made, expired), partitioned by version time.
    Silences,
}

impl Table {
    pub const ALL: [Table; 5] =
        [Table::Events, Table::DeadLetters, Table::Alerts, Table::AlertChanges, Table::Silences];

    pub fn name(self) -> &'static str {
        match self {
            Self::Events => "events",
            Self::DeadLetters => "deadletters",
            Self::Alerts => "alerts",
            Self::AlertChanges => "alert_changes",
            Self::Silences => "silences",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    pub fn root(self) -> Path {
        Path::from(self.name())
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One hour of one table: the unit files are grouped, pruned and compacted by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HourPartition {
    /// Hours since the Unix epoch (UTC).
    pub epoch_hour: i64,
}

const MICROS_PER_HOUR: i64 = 3_600_000_000;

impl HourPartition {
    pub fn of(time: Timestamp) -> Self {
        Self { epoch_hour: time.as_micros().div_euclid(MICROS_PER_HOUR) }
    }

    pub fn start(self) -> Timestamp {
        Timestamp::from_micros(self.epoch_hour.saturating_mul(MICROS_PER_HOUR))
    }

    pub fn end(self) -> Timestamp {
        Timestamp::from_micros(self.epoch_hour.saturating_add(1).saturating_mul(MICROS_PER_HOUR))
    }

    fn datetime(self) -> DateTime<Utc> {
        Utc.timestamp_opt(self.epoch_hour.clamp(-1_000_000_000, 1_000_000_000) * 3600, 0)
            .single()
            .unwrap_or(DateTime::UNIX_EPOCH)
    }

    /// `date=YYYY-MM-DD/hour=HH`, the Hive-style directory DuckDB, pyarrow and DataFusion
    /// turn into `date` and `hour` columns.
    pub fn dir_name(self) -> String {
        let at = self.datetime();
        format!("date={:04}-{:02}-{:02}/hour={:02}", at.year(), at.month(), at.day(), at.hour())
    }

    /// Parses the partition from a path holding `date=…/hour=…`.
    pub fn from_path(path: &Path) -> Option<Self> {
        let mut date = None;
        let mut hour = None;
        for part in path.parts() {
            let part = part.as_ref();
            if let Some(value) = part.strip_prefix("date=") {
                date = NaiveDate::parse_from_str(value, "%Y-%m-%d").ok();
            } else if let Some(value) = part.strip_prefix("hour=") {
                hour = value.parse::<u32>().ok().filter(|h| *h < 24);
            }
        }
        let at = date?.and_hms_opt(hour?, 0, 0)?.and_utc();
        Some(Self { epoch_hour: at.timestamp().div_euclid(3600) })
    }

    /// The directory of this hour in `table`.
    pub fn path(self, table: Table) -> Path {
        Path::from(format!("{}/{}", table.name(), self.dir_name()))
    }
}

impl fmt::Display for HourPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.dir_name())
    }
}

/// The final path of a file holding one flush of one Kafka partition: the name says where
/// the rows came from, so an operator can trace any file back to its offsets.
pub fn flush_file_path(table: Table, hour: HourPartition, topic: &str, partition: i32, start: i64, end: i64) -> Path {
    Path::from(format!("{}/{topic}-p{partition:05}-{start:020}-{end:020}.parquet", hour.path(table)))
}

/// The final path of a compacted file.
pub fn compacted_file_path(table: Table, hour: HourPartition, id: ulid::Ulid) -> Path {
    Path::from(format!("{}/compacted-{id}.parquet", hour.path(table)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hour_partition_round_trips_through_its_directory() {
        let t = Timestamp::parse("2026-11-23T14:59:59.999999Z").unwrap();
        let hour = HourPartition::of(t);
        assert_eq!(hour.dir_name(), "date=2026-11-23/hour=14");
        assert_eq!(HourPartition::from_path(&hour.path(Table::Events)), Some(hour));
        assert!(hour.start() <= t && t < hour.end());
        let before_epoch = HourPartition::of(Timestamp::parse("1969-12-31T23:30:00Z").unwrap());
        assert_eq!(before_epoch.dir_name(), "date=1969-12-31/hour=23");
    }

    #[test]
    fn flush_file_names_sort_by_offset() {
        let hour = HourPartition { epoch_hour: 10 };
        let a = flush_file_path(Table::Events, hour, "t", 3, 9, 100);
        let b = flush_file_path(Table::Events, hour, "t", 3, 100, 1000);
        assert!(a.as_ref() < b.as_ref());
        assert!(a.as_ref().starts_with("events/date=1970-01-01/hour=10/t-p00003-"));
    }
}
