//! The PostgreSQL protocol with real clients: Debian's psql (simple queries and its catalog
//! queries) and tokio-postgres (prepared statements with parameters), under the same keys,
//! read-only rule, limits and audit log as the HTTP API.

use std::net::SocketAddr;
use std::process::Output;

use crate::support::query_lake::{ADMIN, ANALYST, EVENTS, config, lake, serve_with_pg};

/// Runs psql against `pg` with `key` as the password; `args` after the connection options.
fn psql(pg: SocketAddr, key: &str, args: &[&str]) -> Output {
    std::process::Command::new("psql")
        .env("PGPASSWORD", key)
        .env("PGCONNECT_TIMEOUT", "10")
        .args(["-h", &pg.ip().to_string(), "-p", &pg.port().to_string(), "-U", "soc", "-d", "mcpsiem"])
        .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
        .args(args)
        .output()
        .expect("psql runs (scripts/setup installs postgresql-client)")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim().to_string()
}

#[test]
fn psql_logs_in_with_a_key_and_queries_read_only_with_helpful_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (_, pg) = serve_with_pg(lake(dir.path()), config());

    let out = psql(pg, ANALYST, &["-c", "SELECT count(*) FROM events"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), EVENTS.to_string());

    // Several statements in one simple query, with the settings drivers send first.
    let out = psql(
        pg,
        ANALYST,
        &[
            "-c",
            "SET application_name = 'grafana'; SHOW application_name; \
             SELECT mcp_method_name FROM events WHERE mcp_method_name = 'tools/call' LIMIT 1",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "grafana\ntools/call");

    // psql's own catalog query behind \dt lists the lake's tables.
    let out = psql(pg, ANALYST, &["-c", r"\dt"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listing = text(&out.stdout);
    for table in ["events", "alerts", "deadletters"] {
        assert!(listing.lines().any(|l| l.split('|').any(|c| c == table)), "{table} missing from \\dt:\n{listing}");
    }

    // psql's \d is two queries, the second naming the table by the OID the first found: the
    // columns it lists are the table's own, for every table and view, every time.
    let describe = |key: &str, table: &str| -> Vec<String> {
        let out = psql(pg, key, &["-c", &format!(r"\d {table}")]);
        assert!(out.status.success(), "\\d {table}: {}", text(&out.stderr));
        text(&out.stdout).lines().filter_map(|l| l.split('|').next()).map(str::to_string).collect()
    };
    let columns_of = |key: &str, table: &str| -> Vec<String> {
        let sql = format!("SELECT * FROM {table} LIMIT 0");
        let out = psql(pg, key, &["-P", "tuples_only=off", "-P", "footer=off", "-c", &sql]);
        assert!(out.status.success(), "{sql}: {}", text(&out.stderr));
        text(&out.stdout).split('|').map(str::to_string).collect()
    };
    let tables = ["events", "alerts", "deadletters", "alert_changes", "silences", "alert_deliveries"];
    let views = mcpsiem_query::views::VIEWS.iter().map(|v| v.name);
    for table in tables.into_iter().chain(views) {
        let columns = columns_of(ANALYST, table);
        assert!(columns.len() > 1, "{table}: {columns:?}");
        assert_eq!(describe(ANALYST, table), columns, "\\d {table}");
        assert_eq!(describe(ANALYST, table), columns, "\\d {table}, asked again");
    }
    assert_eq!(describe(ADMIN, "audit_log"), columns_of(ADMIN, "audit_log"), "\\d audit_log");

    let out = psql(pg, "not-a-key", &["-c", "SELECT 1"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("assword"), "{}", text(&out.stderr));

    for forbidden in [
        "CREATE TABLE t (a INT)",
        "INSERT INTO events (event_id) VALUES ('x')",
        "SET datafusion.execution.batch_size = 1",
    ] {
        let out = psql(pg, ANALYST, &["-c", forbidden]);
        assert!(!out.status.success(), "{forbidden} ran");
        assert!(text(&out.stderr).contains("read-only"), "{forbidden}: {}", text(&out.stderr));
    }

    let out = psql(pg, ANALYST, &["-c", "SELECT client_adress FROM events"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("did you mean `client_address`"), "{}", text(&out.stderr));

    // The audit log is the admin's, and records the PostgreSQL queries like the others.
    let out = psql(pg, ANALYST, &["-c", "SELECT count(*) FROM audit_log"]);
    assert!(!out.status.success());
    let out = psql(
        pg,
        ADMIN,
        &["-c", "SELECT outcome, rows FROM audit_log WHERE caller = 'ana' AND sql = 'SELECT count(*) FROM events'"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "ok|1");
    // All three refused writes, the `SET datafusion.*` too (refused before the engine).
    let out = psql(pg, ADMIN, &["-c", "SELECT count(*) FROM audit_log WHERE caller = 'ana' AND outcome = 'forbidden'"]);
    assert_eq!(text(&out.stdout), "3", "{}", text(&out.stderr));
    // The failed login above is in the log too.
    let out = psql(
        pg,
        ADMIN,
        &["-c", "SELECT count(*) FROM audit_log WHERE outcome = 'unauthorized' AND caller LIKE 'unknown%'"],
    );
    assert_ne!(text(&out.stdout), "0", "{}", text(&out.stderr));
}

#[test]
fn a_driver_runs_prepared_statements_with_parameters_within_the_limits() {
    let dir = tempfile::tempdir().unwrap();
    let (_, pg) = serve_with_pg(lake(dir.path()), config());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async move {
        let connect = |key: &'static str| async move {
            let (client, connection) = tokio_postgres::Config::new()
                .host(pg.ip().to_string())
                .port(pg.port())
                .user("soc")
                .password(key)
                .dbname("mcpsiem")
                .connect(tokio_postgres::NoTls)
                .await?;
            tokio::spawn(connection);
            Ok::<_, tokio_postgres::Error>(client)
        };
        assert!(connect("not-a-key").await.is_err());
        let client = connect(ANALYST).await.unwrap();

        let calls: i64 = client
            .query_one("SELECT count(*) FROM events WHERE mcp_method_name = $1", &[&"tools/call"])
            .await
            .unwrap()
            .get(0);
        let all: i64 = client.query_one("SELECT count(*) FROM events", &[]).await.unwrap().get(0);
        assert!(calls > 0 && calls < all, "{calls} of {all}");

        // The same prepared statement with another value; typed parameters and columns.
        let statement = client
            .prepare("SELECT count(*) AS n, min(event_time) AS first FROM events WHERE mcp_method_name = $1")
            .await
            .unwrap();
        assert_eq!(statement.columns()[0].name(), "n");
        let listed: i64 = client.query_one(&statement, &[&"tools/list"]).await.unwrap().get("n");
        assert!(listed > 0 && listed + calls <= all);
        let sum: i64 = client.query_one("SELECT $1::BIGINT + 1", &[&41i64]).await.unwrap().get(0);
        assert_eq!(sum, 42);

        // The row cap (500 in the test configuration) holds here too.
        let rows = client.query("SELECT event_id FROM events", &[]).await.unwrap();
        assert_eq!(rows.len(), 500);

        let error = client.query("DROP TABLE events", &[]).await.unwrap_err();
        let db = error.as_db_error().expect("a server error");
        assert_eq!(db.code().code(), "42501");
        assert!(db.message().contains("read-only"), "{}", db.message());
        // The connection survives a refused statement.
        let one: i64 = client.query_one("SELECT CAST(1 AS BIGINT)", &[]).await.unwrap().get(0);
        assert_eq!(one, 1);
    });
}
