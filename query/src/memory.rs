//! Memory of queries: each query's own limit inside one budget shared by every running
//! query, and the answer's rows and encoded bytes counted in both until they leave.
//!
//! DataFusion counts what its operators hold (sorts, joins, aggregations) but not the
//! batches a plan hands out, nor the bytes the answer formats make of them. A wide answer
//! (2,000-byte rows, 8,192 rows a batch) holds tens of megabytes per query between the plan
//! and the socket; eight of them at once took RSS to 5x the configured limit (bench
//! answers). Here those bytes are reserved like an operator's, so the limits bound them.

use std::fmt;
use std::sync::Arc;

use datafusion::common::{DataFusionError, Result};
use datafusion::execution::memory_pool::{FairSpillPool, MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation};

/// The pool of one query: `query.memory_limit_bytes` of its own, each byte also taken from
/// the service's `query.total_memory_bytes`.
#[derive(Debug)]
pub struct QueryPool {
    own: FairSpillPool,
    own_limit: usize,
    shared: Arc<SharedPool>,
}

/// What every running query draws from.
#[derive(Debug)]
pub struct SharedPool {
    pool: FairSpillPool,
    limit: usize,
}

impl SharedPool {
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self { pool: FairSpillPool::new(limit), limit })
    }

    /// Bytes reserved by every running query now.
    pub fn reserved(&self) -> usize {
        self.pool.reserved()
    }
}

impl QueryPool {
    pub fn new(own_limit: usize, shared: Arc<SharedPool>) -> Self {
        Self { own: FairSpillPool::new(own_limit), own_limit, shared }
    }
}

impl fmt::Display for QueryPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "query pool ({} of {} bytes)", self.own.reserved(), self.own_limit)
    }
}

impl MemoryPool for QueryPool {
    fn name(&self) -> &str {
        "mcpsiem_query"
    }

    fn register(&self, consumer: &MemoryConsumer) {
        self.own.register(consumer);
        self.shared.pool.register(consumer);
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        self.own.unregister(consumer);
        self.shared.pool.unregister(consumer);
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.own.grow(reservation, additional);
        self.shared.pool.grow(reservation, additional);
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.own.shrink(reservation, shrink);
        self.shared.pool.shrink(reservation, shrink);
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> Result<()> {
        let consumer = reservation.consumer().name();
        self.own.try_grow(reservation, additional).map_err(|_| {
            DataFusionError::ResourcesExhausted(format!(
                "{consumer} asked for {additional} more bytes and this query's query.memory_limit_bytes ({} bytes) is used up",
                self.own_limit
            ))
        })?;
        if self.shared.pool.try_grow(reservation, additional).is_err() {
            self.own.shrink(reservation, additional);
            return Err(DataFusionError::ResourcesExhausted(format!(
                "{consumer} asked for {additional} more bytes and query.total_memory_bytes ({} bytes, shared by every running query) is used up; retry when other queries end",
                self.shared.limit
            )));
        }
        Ok(())
    }

    fn reserved(&self) -> usize {
        self.own.reserved()
    }

    fn memory_limit(&self) -> MemoryLimit {
        MemoryLimit::Finite(self.own_limit.min(self.shared.limit))
    }
}

/// The bytes an answer holds between the plan and the client: the batch being encoded and
/// the encoded pieces not yet written to the socket.
#[derive(Debug)]
pub struct AnswerMemory {
    /// The batch handed out last; the one before it is done with once the next is asked for.
    batch: MemoryReservation,
}

impl AnswerMemory {
    pub fn new(pool: &Arc<dyn MemoryPool>) -> Self {
        Self { batch: MemoryConsumer::new("the answer").register(pool) }
    }

    /// Holds `bytes` for the batch about to be handed out (the previous one is released).
    pub fn hold_batch(&self, bytes: usize) -> Result<()> {
        self.batch.free();
        self.batch.try_grow(bytes)
    }

    /// Takes `bytes` for an encoded piece; they are given back when the piece is dropped.
    pub fn hold_piece(&self, bytes: usize) -> Result<MemoryReservation> {
        let piece = self.batch.new_empty();
        piece.try_grow(bytes)?;
        Ok(piece)
    }

    /// An empty reservation of the answer's consumer, to take pieces from (`new_empty` and
    /// `try_grow`) where the answer's stream cannot be borrowed.
    pub fn holder(&self) -> MemoryReservation {
        self.batch.new_empty()
    }

    /// Lets the last batch go (the answer ended).
    pub fn release(&self) {
        self.batch.free();
    }
}

/// An encoded piece of an answer with its reservation: the bytes count against the limits
/// until the server has written them (then the buffer, and with it the piece, is dropped).
pub struct HeldPiece {
    pub bytes: Vec<u8>,
    pub _held: Option<MemoryReservation>,
}

impl AsRef<[u8]> for HeldPiece {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl From<HeldPiece> for bytes::Bytes {
    fn from(piece: HeldPiece) -> Self {
        bytes::Bytes::from_owner(piece)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pools(own: usize, total: usize) -> (Arc<SharedPool>, Arc<dyn MemoryPool>, Arc<dyn MemoryPool>) {
        let shared = SharedPool::new(total);
        let a: Arc<dyn MemoryPool> = Arc::new(QueryPool::new(own, shared.clone()));
        let b: Arc<dyn MemoryPool> = Arc::new(QueryPool::new(own, shared.clone()));
        (shared, a, b)
    }

    #[test]
    fn one_query_stops_at_its_own_limit() {
        let (shared, a, _) = pools(100, 1_000);
        let r = MemoryConsumer::new("sort").register(&a);
        r.try_grow(100).unwrap();
        let e = r.try_grow(1).unwrap_err().to_string();
        assert!(e.contains("query.memory_limit_bytes (100 bytes)"), "{e}");
        assert_eq!(shared.reserved(), 100);
    }

    #[test]
    fn queries_together_stop_at_the_total_and_a_refusal_takes_nothing() {
        let (shared, a, b) = pools(100, 150);
        let ra = MemoryConsumer::new("answer").register(&a);
        let rb = MemoryConsumer::new("answer").register(&b);
        ra.try_grow(100).unwrap();
        let e = rb.try_grow(60).unwrap_err().to_string();
        assert!(e.contains("query.total_memory_bytes (150 bytes"), "{e}");
        assert_eq!(b.reserved(), 0, "the refused bytes are not left in the query's own pool");
        rb.try_grow(50).unwrap();
        drop(ra);
        assert_eq!(shared.reserved(), 50);
        rb.try_grow(50).unwrap();
        assert_eq!(shared.reserved(), 100);
    }

    #[test]
    fn a_piece_is_counted_until_dropped() {
        let (shared, a, _) = pools(100, 1_000);
        let answer = AnswerMemory::new(&a);
        answer.hold_batch(40).unwrap();
        let piece = answer.hold_piece(30).unwrap();
        assert_eq!(shared.reserved(), 70);
        assert!(answer.hold_piece(31).is_err());
        answer.hold_batch(10).unwrap();
        assert_eq!(shared.reserved(), 40);
        let bytes = bytes::Bytes::from(HeldPiece { bytes: vec![1, 2, 3], _held: Some(piece) });
        assert_eq!(&bytes[..], &[1, 2, 3]);
        assert_eq!(shared.reserved(), 40, "held while the buffer lives");
        drop(bytes);
        assert_eq!(shared.reserved(), 10);
        answer.release();
        assert_eq!(shared.reserved(), 0);
    }
}
