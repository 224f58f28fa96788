//! The tokio runtime of every command that reads the lake (query, serve, export, lake verify).
//!
//! object_store reads local files on tokio's blocking pool. Each read buffer is allocated on
//! the reading thread and freed on a query thread; with tokio's default of up to 512 such
//! threads, the allocator (mimalloc) keeps the freed buffers in many idle threads' heaps and
//! the peak RSS wanders: 0.36–1.58 GB for the same 5M-row export (bench export), 348 MiB
//! steady with two threads, which reuse their own memory at once. Reads from object storage
//! are async and do not use these threads.

use tokio::runtime::{Builder, Runtime};

/// One command, one pass over the files (the CLI's query, export and lake verify).
pub const COMMAND_READ_THREADS: usize = 2;

/// The query service: a few concurrent queries and exports.
pub const SERVICE_READ_THREADS: usize = 4;

/// Stack of each worker thread. Planning and evaluating an expression recurse over its
/// tree; queries are bounded to `query.max_expression_depth`, and this leaves a wide margin
/// over what that depth takes in a debug build. Reserved, not committed: only the pages a
/// deep query touches cost memory.
pub const WORKER_STACK_BYTES: usize = 16 << 20;

/// A multi-threaded runtime whose blocking pool (the local file reads) has `read_threads`.
pub fn build(read_threads: usize) -> std::io::Result<Runtime> {
    Builder::new_multi_thread()
        .max_blocking_threads(read_threads)
        .thread_stack_size(WORKER_STACK_BYTES)
        .enable_all()
        .build()
}
