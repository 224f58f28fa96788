//! The saved forensic views over a lake with every attack scenario and one alert: the MCP
//! inventory against the approved list, token activity, tool chains, alerts with events.

use std::collections::BTreeMap;

use crate::support::query_lake::lake;
use mcpsiem_event::{Alert, AlertSource, Level, Timestamp, alert_batch};
use mcpsiem_ingest::parquet_file::{ParquetSettings, split_by_hour};
use mcpsiem_lake::Table;
use serde_json::Value;

/// `mcpsiem query SQL --format json` with `config`; the rows.
fn query(config: &std::path::Path, sql: &str) -> Vec<Value> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mcpsiem"))
        .arg("--config")
        .arg(config)
        .args(["query", sql, "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
    match serde_json::from_slice(&out.stdout).unwrap() {
        Value::Array(rows) => rows,
        other => panic!("{sql}: not rows: {other}"),
    }
}

fn number(row: &Value, column: &str) -> u64 {
    row[column].as_u64().unwrap_or_else(|| panic!("{column} in {row}"))
}

#[test]
fn forensic_views_answer_the_incident_questions() {
    let dir = tempfile::tempdir().unwrap();
    let lake = lake(dir.path());
    let approved = mcpsiem_gen::approved_server_names();
    let config = dir.path().join("mcpsiem.toml");
    std::fs::write(
        &config,
        format!(
            "[lake]\nlocation = {:?}\n[detect.lists]\napproved_servers = {:?}\n",
            dir.path().display().to_string(),
            approved
        ),
    )
    .unwrap();

    // One alert on the two first tool calls, stored as the ingester stores alerts.
    let first = query(
        &config,
        "SELECT event_id, event_time FROM events WHERE mcp_method_name = 'tools/call' ORDER BY event_time, event_id LIMIT 2",
    );
    let ids: Vec<String> = first.iter().map(|r| r["event_id"].as_str().unwrap().to_string()).collect();
    let time = Timestamp::parse(first[1]["event_time"].as_str().unwrap()).unwrap();
    let alert = Alert {
        id: "01JTESTALERT0000000000000".into(),
        rule_id: "test-rule".into(),
        rule_title: "Test rule".into(),
        level: Level::High,
        tags: vec![],
        source: AlertSource::Detection,
        first_time: time,
        last_time: time,
        group: BTreeMap::new(),
        count: 2,
        event_ids: ids.clone(),
        sql: String::new(),
    };
    let settings = ParquetSettings { zstd_level: 3, row_group_rows: 1000 };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for (hour, part) in split_by_hour(Table::Alerts, &alert_batch(&[alert])).unwrap() {
        let bytes = settings.encode(Table::Alerts, std::slice::from_ref(&part)).unwrap();
        let path = object_store::path::Path::from(format!("{}/test.parquet", hour.path(Table::Alerts)));
        runtime.block_on(lake.put(&path, bytes)).unwrap();
    }

    // Inventory: every server, approved exactly when it is on the list; the rogue ones seen.
    let servers = query(&config, "SELECT mcp_server_name, approved, first_seen, users FROM mcp_servers ORDER BY 1");
    let distinct = query(&config, "SELECT count(DISTINCT mcp_server_name) AS n FROM events");
    assert_eq!(servers.len() as u64, number(&distinct[0], "n"));
    for row in &servers {
        let name = row["mcp_server_name"].as_str().unwrap();
        assert_eq!(row["approved"].as_bool(), Some(approved.iter().any(|a| a == name)), "{row}");
    }
    assert!(servers.iter().any(|r| r["approved"] == false) && servers.iter().any(|r| r["approved"] == true));

    // The rug pull changed a tool's description after it was first listed.
    let tools = query(
        &config,
        "SELECT mcp_server_name, gen_ai_tool_name, description_changes FROM mcp_tools WHERE description_changes > 0",
    );
    assert!(!tools.is_empty(), "no tool changed its description");

    // Token activity: one row per token; a replayed token shows more than one address.
    let tokens = query(&config, "SELECT count(*) AS n, max(client_addresses) AS most FROM token_activity");
    let distinct = query(&config, "SELECT count(DISTINCT auth_token_fingerprint) AS n FROM events");
    assert_eq!(number(&tokens[0], "n"), number(&distinct[0], "n"));
    assert!(number(&tokens[0], "most") >= 2, "{}", tokens[0]);

    // Tool chains: one row per session that called tools, in call order.
    let chains = query(&config, "SELECT count(*) AS n, max(calls) AS most FROM session_tool_chains");
    let sessions =
        query(&config, "SELECT count(DISTINCT mcp_session_id) AS n FROM events WHERE mcp_method_name = 'tools/call'");
    assert_eq!(number(&chains[0], "n"), number(&sessions[0], "n"));
    let longest = query(&config, "SELECT chain, calls FROM session_tool_chains ORDER BY calls DESC LIMIT 1");
    let chain = longest[0]["chain"].as_str().unwrap();
    assert_eq!(chain.split(" -> ").count() as u64, number(&longest[0], "calls"), "{chain}");

    // Alerts with their events.
    let joined = query(&config, "SELECT event_id, rule_title FROM alert_events ORDER BY event_id");
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(joined.iter().map(|r| r["event_id"].as_str().unwrap().to_string()).collect::<Vec<_>>(), expected);
    assert!(joined.iter().all(|r| r["rule_title"] == "Test rule"));
}
