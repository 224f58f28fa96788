//! One partition's records between two flushes.

use std::time::Instant;

use mcpsiem_event::silence::{Silence, silence_batch};
use mcpsiem_event::{Alert, AlertChange, EventColumns, McpEvent, alert_batch, alert_change_batch};
use mcpsiem_lake::{CommitRecord, Table};

use crate::deadletter::DeadLetter;
use crate::recent_ids::RecentIds;
use crate::writer::FlushJob;

/// The rows of the table a buffer fills.
enum Rows {
    // Boxed: the column builders are kilobytes, an alerts buffer a vector.
    Events(Box<EventColumns>),
    Alerts(Vec<Alert>),
    AlertChanges(Vec<AlertChange>),
    Silences(Vec<Silence>),
}

/// Decoded rows (events or alerts) and dead letters of one partition over `[start, next)`.
pub struct PartitionBuffer {
    pub partition: i32,
    /// Bumped each time the partition is (re)assigned or resumed from the lake.
    pub epoch: u64,
    /// Start of the last flush cut: the predecessor of the next one in the commit chain.
    previous: Option<i64>,
    /// First offset the next flush covers; unknown until the first message when the lake
    /// holds nothing for this partition yet.
    start: Option<i64>,
    /// One past the last offset taken.
    next: Option<i64>,
    rows: Rows,
    dead_letters: Vec<DeadLetter>,
    bytes: usize,
    opened: Option<Instant>,
    /// Where the lake's commits end for this partition when the buffer was made: offsets
    /// before it are read again only to fill `recent`.
    resume_at: Option<i64>,
    /// The ids taken last, to drop second copies.
    pub recent: RecentIds,
}

impl PartitionBuffer {
    /// A buffer of `table` rows resuming after `resume`, the partition's latest commit,
    /// remembering the last `dedup_window` ids.
    pub fn new(table: Table, partition: i32, epoch: u64, resume: Option<&CommitRecord>, dedup_window: usize) -> Self {
        Self {
            partition,
            epoch,
            previous: resume.map(|r| r.start),
            start: resume.map(|r| r.end),
            next: None,
            rows: match table {
                Table::Alerts => Rows::Alerts(Vec::new()),
                Table::AlertChanges => Rows::AlertChanges(Vec::new()),
                Table::Silences => Rows::Silences(Vec::new()),
                _ => Rows::Events(Box::new(EventColumns::with_capacity(1024))),
            },
            dead_letters: Vec::new(),
            bytes: 0,
            opened: None,
            resume_at: resume.map(|r| r.end),
            recent: RecentIds::new(dedup_window),
        }
    }

    /// True for an offset before the lake's resume point: read again only for its id.
    pub fn is_priming(&self, offset: i64) -> bool {
        self.resume_at.is_some_and(|resume| offset < resume)
    }

    /// Takes an offset whose record is a second copy of an event: covered by the next
    /// commit, written nowhere.
    pub fn add_duplicate(&mut self, offset: i64, size: usize) {
        self.take_offset(offset, size);
    }

    /// False for an offset already taken or already in the lake: Kafka redelivers after a
    /// seek, a reconnect or a broker restart, and those copies must not be written twice.
    pub fn wants(&self, offset: i64) -> bool {
        match (self.next, self.start) {
            (Some(next), _) => offset >= next,
            (None, Some(start)) => offset >= start,
            (None, None) => offset >= 0,
        }
    }

    fn take_offset(&mut self, offset: i64, size: usize) {
        if self.start.is_none() {
            self.start = Some(offset);
        }
        self.next = Some(offset + 1);
        self.bytes += size;
        self.opened.get_or_insert_with(Instant::now);
    }

    pub fn add_event(&mut self, offset: i64, size: usize, event: &McpEvent<'_>) {
        self.take_offset(offset, size);
        match &mut self.rows {
            Rows::Events(events) => events.append(event),
            _ => unreachable!("an events buffer is only given events"),
        }
    }

    pub fn add_alert(&mut self, offset: i64, size: usize, alert: Alert) {
        self.take_offset(offset, size);
        match &mut self.rows {
            Rows::Alerts(alerts) => alerts.push(alert),
            _ => unreachable!("an alerts buffer is only given alerts"),
        }
    }

    pub fn add_alert_change(&mut self, offset: i64, size: usize, change: AlertChange) {
        self.take_offset(offset, size);
        match &mut self.rows {
            Rows::AlertChanges(changes) => changes.push(change),
            _ => unreachable!("an alert-changes buffer is only given alert changes"),
        }
    }

    pub fn add_silence(&mut self, offset: i64, size: usize, silence: Silence) {
        self.take_offset(offset, size);
        match &mut self.rows {
            Rows::Silences(silences) => silences.push(silence),
            _ => unreachable!("a silences buffer is only given silences"),
        }
    }

    pub fn add_dead_letter(&mut self, letter: DeadLetter) {
        self.take_offset(letter.offset, letter.size());
        self.dead_letters.push(letter);
    }

    fn table(&self) -> Table {
        match self.rows {
            Rows::Events(_) => Table::Events,
            Rows::Alerts(_) => Table::Alerts,
            Rows::AlertChanges(_) => Table::AlertChanges,
            Rows::Silences(_) => Table::Silences,
        }
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn is_empty(&self) -> bool {
        self.opened.is_none()
    }

    /// When the first record now buffered arrived.
    pub fn opened(&self) -> Option<Instant> {
        self.opened
    }

    /// One past the last offset taken, or where consuming resumes.
    pub fn position(&self) -> Option<i64> {
        self.next.or(self.start)
    }

    /// Cuts a flush of everything buffered; the buffer goes on from its end.
    pub fn cut(&mut self) -> Option<FlushJob> {
        let (Some(start), Some(end)) = (self.start, self.next) else { return None };
        let job = FlushJob {
            partition: self.partition,
            epoch: self.epoch,
            start,
            end,
            previous: self.previous,
            table: self.table(),
            rows: match &mut self.rows {
                Rows::Events(events) => events.finish(),
                Rows::Alerts(alerts) => alert_batch(&std::mem::take(alerts)),
                Rows::AlertChanges(changes) => alert_change_batch(&std::mem::take(changes)),
                Rows::Silences(silences) => silence_batch(&std::mem::take(silences)),
            },
            dead_letters: std::mem::take(&mut self.dead_letters),
        };
        self.previous = Some(start);
        self.start = Some(end);
        self.next = None;
        self.bytes = 0;
        self.opened = None;
        Some(job)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcpsiem_event::{EventId, EventKind, Timestamp};

    #[test]
    fn flushes_chain_and_redelivered_offsets_are_refused() {
        let event = McpEvent::new(EventId::new(), Timestamp::now(), EventKind::Message);
        let mut resume = CommitRecord::new("t", 1, 0, 10, "test");
        resume.end = 10;
        let mut buffer = PartitionBuffer::new(Table::Events, 1, 7, Some(&resume), 100);
        assert!(!buffer.wants(9));
        assert!(buffer.is_priming(9) && !buffer.is_priming(10));
        assert!(buffer.cut().is_none());
        buffer.add_event(12, 100, &event);
        buffer.add_event(13, 100, &event);
        assert!(!buffer.wants(13));
        let job = buffer.cut().unwrap();
        assert_eq!((job.start, job.end, job.previous, job.epoch), (10, 14, Some(0), 7));
        assert_eq!(job.rows.num_rows(), 2);
        assert!(buffer.is_empty());
        buffer.add_event(14, 100, &event);
        let job = buffer.cut().unwrap();
        assert_eq!((job.start, job.end, job.previous), (14, 15, Some(10)));
        // A duplicate's offset is covered by the commit, with no row for it.
        buffer.add_duplicate(15, 100);
        let job = buffer.cut().unwrap();
        assert_eq!((job.start, job.end, job.rows.num_rows()), (15, 16, 0));
    }

    #[test]
    fn a_partition_new_to_the_lake_starts_at_its_first_offset() {
        let event = McpEvent::new(EventId::new(), Timestamp::now(), EventKind::Message);
        let mut buffer = PartitionBuffer::new(Table::Events, 0, 1, None, 100);
        buffer.add_event(500, 10, &event);
        let job = buffer.cut().unwrap();
        assert_eq!((job.start, job.end, job.previous), (500, 501, None));
    }
}
