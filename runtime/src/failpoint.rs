//! What a failpoint does when a test sets it to `return`: the process ends at once, like a
//! power cut, with nothing flushed. Failpoints are the `fail` crate's, named
//! `stage::moment`, compiled in only with the `failpoints` feature; tests set them in a
//! child process with `FAILPOINTS=ingest::after_commit=1*off->return` (the second time the
//! point is reached). Every failpoint is listed in `docs/failpoints.md`.

/// Aborts the process at the failpoint `name`.
pub fn crash(name: &str) -> ! {
    eprintln!("failpoint {name} reached: aborting as configured (FAILPOINTS)");
    std::process::abort()
}
