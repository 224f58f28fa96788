//! A small lake of generated events laid out like the ingester's, and a query service on it.

use std::net::SocketAddr;

use mcpsiem_event::{EventColumns, Timestamp};
use mcpsiem_gen::{GenOptions, Generator, Scenario};
use mcpsiem_ingest::parquet_file::{ParquetSettings, split_by_hour};
use mcpsiem_lake::{Lake, Table};
use mcpsiem_query::{ApiKey, QueryConfig, QueryEngine, Role};

pub const ANALYST: &str = "analyst-key";
pub const ADMIN: &str = "admin-key";
pub const EVENTS: u64 = 3000;

/// A lake of generated events written the way the ingester lays them out.
pub fn lake(dir: &std::path::Path) -> Lake {
    let lake = Lake::open(dir.to_str().unwrap()).unwrap();
    let options = GenOptions {
        events: EVENTS,
        seed: 5,
        start: Timestamp::parse("2026-11-02T00:00:00Z").unwrap(),
        days: 1,
        attacks: Scenario::ALL.to_vec(),
        ..GenOptions::default()
    };
    let mut columns = EventColumns::with_capacity(EVENTS as usize);
    for event in Generator::new(options) {
        columns.append(&event);
    }
    let batch = columns.finish();
    let settings = ParquetSettings { zstd_level: 3, row_group_rows: 1000 };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for (i, (hour, part)) in split_by_hour(Table::Events, &batch).unwrap().into_iter().enumerate() {
        let bytes = settings.encode(Table::Events, std::slice::from_ref(&part)).unwrap();
        let path = object_store::path::Path::from(format!("{}/test-{i}.parquet", hour.path(Table::Events)));
        runtime.block_on(lake.put(&path, bytes)).unwrap();
    }
    lake
}

pub fn config() -> QueryConfig {
    QueryConfig {
        api_keys: vec![
            ApiKey { name: "ana".into(), sha256: mcpsiem_runtime::auth::hash_key(ANALYST), role: Role::Analyst },
            ApiKey { name: "root".into(), sha256: mcpsiem_runtime::auth::hash_key(ADMIN), role: Role::Admin },
        ],
        timeout_seconds: 2,
        memory_limit_bytes: 64 << 20,
        max_rows: 500,
        max_concurrent: 4,
        queue_seconds: 20,
        ..QueryConfig::default()
    }
}

/// The query service's HTTP API on a free port, on its own runtime thread.
pub fn serve(lake: Lake, config: QueryConfig) -> SocketAddr {
    serve_with_pg(lake, config).0
}

/// The query service with its PostgreSQL listener on free ports: (HTTP, PostgreSQL).
pub fn serve_with_pg(lake: Lake, config: QueryConfig) -> (SocketAddr, SocketAddr) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async move {
            let engine = QueryEngine::new(lake, config);
            let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let pg = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send((http.local_addr().unwrap(), pg.local_addr().unwrap())).unwrap();
            tokio::spawn(mcpsiem_query::pg::serve(engine.clone(), pg, std::future::pending()));
            axum::serve(http, mcpsiem_query::http::router(engine, None)).await.unwrap();
        });
    });
    rx.recv().unwrap()
}
