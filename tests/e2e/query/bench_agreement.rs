//! The forensic queries of `mcpsiem bench query`, on a small generated lake, give the same
//! number of rows through mcpsiem's engine as through DuckDB on the same files: the figures
//! the benchmark reports compare like with like.

#[test]
fn forensic_queries_agree_with_duckdb_on_the_same_files() {
    let dir = tempfile::tempdir().unwrap();
    let options = mcpsiem_bench::query::QueryBenchOptions {
        events: 30_000,
        days: 2,
        runs: 1,
        dir: dir.path().join("bench"),
        only: Vec::new(),
    };
    let report = mcpsiem_bench::query::query_bench(&options).unwrap();
    assert_eq!(report.queries.len(), 9);
    for query in &report.queries {
        assert!(query.rows_agree, "{} gives {} rows in mcpsiem, another count in DuckDB", query.name, query.rows);
    }
    let rows = |name: &str| report.queries.iter().find(|q| q.name == name).unwrap().rows;
    // The needles find something, and the join finds every alert's events.
    for name in ["needle_token", "session_reconstruction", "user_activity_window", "alerts_joined_to_events"] {
        assert!(rows(name) > 0, "{name} found nothing");
    }
    // At least the two days' hours (the generator runs on past them until it has its events).
    assert!(rows("hourly_counts") >= 48, "{} hours", rows("hourly_counts"));
}
