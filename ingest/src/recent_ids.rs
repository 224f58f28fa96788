//! The event ids a partition took most recently, to drop a second copy of an event.
//!
//! Collectors send a record again when its delivery was in doubt (a crash between Kafka's
//! acknowledgement and the spool's cursor, a timeout in flight), and clients retry posts;
//! the copy lands in the same partition (same key) a little later. A bounded set of the last
//! ids per partition, refilled from Kafka after each assignment (the records just before the
//! lake's resume point are read again for their ids only), removes those copies.

use std::collections::{HashSet, VecDeque};

/// The last `capacity` ids, oldest forgotten first.
#[derive(Debug)]
pub struct RecentIds {
    capacity: usize,
    order: VecDeque<u128>,
    seen: HashSet<u128>,
}

impl RecentIds {
    pub fn new(capacity: usize) -> Self {
        let initial = capacity.min(4096);
        Self { capacity, order: VecDeque::with_capacity(initial), seen: HashSet::with_capacity(initial) }
    }

    /// Remembers `id`; false when it is remembered already (a duplicate).
    pub fn insert(&mut self, id: u128) -> bool {
        if self.capacity == 0 {
            return true;
        }
        if !self.seen.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > self.capacity
            && let Some(oldest) = self.order.pop_front()
        {
            self.seen.remove(&oldest);
        }
        true
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

/// The `event.id` of a record, reading nothing else into memory; `None` for a record that
/// is not an event (its dead letter has no id to compare).
pub fn event_id_of(record: &[u8]) -> Option<u128> {
    #[derive(serde::Deserialize)]
    struct IdOnly<'a> {
        #[serde(rename = "event.id", borrow)]
        id: &'a str,
    }
    let only: IdOnly<'_> = serde_json::from_slice(record).ok()?;
    ulid::Ulid::from_string(only.id).ok().map(|u| u.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_copy_is_refused_until_it_falls_out_of_the_window() {
        let mut recent = RecentIds::new(3);
        assert!(recent.insert(1));
        assert!(!recent.insert(1));
        assert!(recent.insert(2) && recent.insert(3) && recent.insert(4));
        assert_eq!(recent.len(), 3);
        // 1 was forgotten when 4 came: past the window a copy is taken again.
        assert!(recent.insert(1));
        assert!(!recent.insert(4));
    }

    #[test]
    fn a_window_of_zero_turns_it_off() {
        let mut recent = RecentIds::new(0);
        assert!(recent.insert(7) && recent.insert(7));
        assert!(recent.is_empty());
    }

    #[test]
    fn ids_are_read_from_records_and_other_records_have_none() {
        let record = br#"{"event.time":"2026-11-20T10:00:00Z","event.id":"01JD0000000000000000000004","x":{"y":[1]}}"#;
        assert_eq!(event_id_of(record), Some(ulid::Ulid::from_string("01JD0000000000000000000004").unwrap().0));
        assert_eq!(event_id_of(b"not json"), None);
        assert_eq!(event_id_of(br#"{"event.id":42}"#), None);
    }
}
