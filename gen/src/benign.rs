//! Ordinary work: plausible tool sequences, arguments and results.

use mcpsiem_event::{OwnedEvent, Timestamp};
use rand::Rng;
use rand::seq::IndexedRandom;
use serde_json::json;

use super::session::Session;
use super::world::{CHANNELS, REPOS, SITES, SOURCE_FILES, TABLES, ToolRole};

/// Arguments and a result for a benign call of `tool`.
pub fn benign_call(rng: &mut impl Rng, user: &str, tool: &str) -> (serde_json::Value, String) {
    let repo = *REPOS.choose(rng).expect("repos");
    let file = *SOURCE_FILES.choose(rng).expect("files");
    match tool {
        "read_file" => (json!({"path": format!("/home/dev/projects/{repo}/{file}")}), file_body(rng, file)),
        "list_directory" => (
            json!({"path": format!("/home/dev/projects/{repo}")}),
            "[DIR] src\n[DIR] tests\n[FILE] README.md\n[FILE] Cargo.toml\n[FILE] Makefile".into(),
        ),
        "search_files" => (
            json!({"path": format!("/home/dev/projects/{repo}"), "pattern": "*.rs"}),
            format!("/home/dev/projects/{repo}/src/main.rs\n/home/dev/projects/{repo}/src/lib.rs"),
        ),
        "write_file" => (
            json!({"path": format!("/home/dev/projects/{repo}/{file}"), "content": "// updated by agent\n"}),
            format!("Successfully wrote to /home/dev/projects/{repo}/{file}"),
        ),
        "delete_file" => (json!({"path": format!("/home/dev/projects/{repo}/target/tmp.log")}), "Deleted".into()),
        "search_repositories" => {
            (json!({"query": repo}), format!("{{\"total_count\":1,\"items\":[{{\"full_name\":\"corp/{repo}\"}}]}}"))
        }
        "get_file_contents" => (json!({"owner": "corp", "repo": repo, "path": file}), file_body(rng, file)),
        "list_commits" => (
            json!({"owner": "corp", "repo": repo}),
            format!("[{{\"sha\":\"{:040x}\",\"message\":\"fix: handle empty cart\"}}]", rng.random::<u128>()),
        ),
        "create_issue" => (
            json!({"owner": "corp", "repo": repo, "title": "Flaky test in CI", "body": "The integration test times out on the 2-core runner."}),
            format!("{{\"number\":{},\"state\":\"open\"}}", rng.random_range(100..9000)),
        ),
        "create_pull_request" => (
            json!({"owner": "corp", "repo": repo, "title": "Refactor handler", "head": "feature/refactor", "base": "main"}),
            format!("{{\"number\":{},\"state\":\"open\"}}", rng.random_range(100..9000)),
        ),
        "delete_branch" => {
            (json!({"owner": "corp", "repo": repo, "branch": "feature/old-spike"}), "Branch deleted".into())
        }
        "list_channels" => (
            json!({"limit": 50}),
            "[{\"id\":\"C024BE91L\",\"name\":\"eng\"},{\"id\":\"C05ENG0PS\",\"name\":\"ops\"}]".into(),
        ),
        "get_channel_history" => (
            json!({"channel_id": CHANNELS.choose(rng).expect("channels"), "limit": 20}),
            "[{\"user\":\"U123\",\"text\":\"deploy finished\"},{\"user\":\"U456\",\"text\":\"thanks!\"}]".into(),
        ),
        "post_message" => (
            json!({"channel_id": CHANNELS.choose(rng).expect("channels"), "text": "Build is green again."}),
            "{\"ok\":true}".into(),
        ),
        "query" => {
            let table = TABLES.choose(rng).expect("tables");
            (
                json!({"sql": format!("SELECT count(*) FROM {table} WHERE day = current_date")}),
                format!("[{{\"count\":{}}}]", rng.random_range(10..100_000)),
            )
        }
        "list_tables" => (json!({}), TABLES.join("\n")),
        "drop_table" => (json!({"table": "tmp_import_staging"}), "DROP TABLE".into()),
        "fetch" => (json!({"url": SITES.choose(rng).expect("sites"), "max_length": 5000}), page_text(rng)),
        "http_request" => {
            (json!({"url": "https://status.example.com/api/v1/health", "method": "GET"}), "{\"status\":\"ok\"}".into())
        }
        "search_emails" => {
            (json!({"query": "from:ci@corp.example.com"}), "[{\"id\":\"m1\",\"subject\":\"Nightly build\"}]".into())
        }
        "read_email" => (
            json!({"id": format!("m{}", rng.random_range(1..500))}),
            "Subject: Nightly build\n\nAll jobs passed.".into(),
        ),
        "send_email" => (
            json!({"to": ["team@corp.example.com"], "subject": "Weekly status", "body": format!("Status from {user}: on track.")}),
            "Message sent".into(),
        ),
        "searchJiraIssuesUsingJql" => {
            (json!({"jql": "project = OPS AND status = Open"}), "[{\"key\":\"OPS-101\"},{\"key\":\"OPS-117\"}]".into())
        }
        "getJiraIssue" => (
            json!({"issueKey": format!("OPS-{}", rng.random_range(1..400))}),
            "{\"summary\":\"Rotate certificates\",\"status\":\"In Progress\"}".into(),
        ),
        "createJiraIssue" => {
            (json!({"projectKey": "OPS", "summary": "Disk usage alert on db-2"}), "{\"key\":\"OPS-412\"}".into())
        }
        other => match super::real_world::example_call(other) {
            Some(call) => (serde_json::from_str(call.arguments).unwrap_or_else(|_| json!({})), call.result.to_owned()),
            None => (json!({}), format!("{other} done")),
        },
    }
}

fn file_body(rng: &mut impl Rng, file: &str) -> String {
    let lines = rng.random_range(3..40);
    let mut body = format!("// {file}\n");
    for i in 0..lines {
        body.push_str(&format!("fn step_{i}(input: &str) -> usize {{ input.len() + {i} }}\n"));
    }
    body
}

fn page_text(rng: &mut impl Rng) -> String {
    let paragraphs = rng.random_range(2..12);
    (0..paragraphs)
        .map(|i| format!("Section {i}. The request method token is case-sensitive and names the operation to perform."))
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// A whole benign session: open, list tools, then a plausible run of calls; with `extras`,
/// also what real clients send besides tool calls (pings, resources, prompts, log levels,
/// cancellations) and the odd failing call.
pub fn benign_session(
    rng: &mut impl Rng,
    session: &mut Session<'_>,
    start: Timestamp,
    extras: bool,
) -> Vec<OwnedEvent> {
    let mut events = session.open(rng, start);
    let mut at = start.plus_micros(rng.random_range(200_000..1_500_000));
    let tools = session.server.tools.clone();
    events.extend(session.list_tools(rng, at, &tools));
    let calls = rng.random_range(2..=14);
    for _ in 0..calls {
        at = at.plus_micros(rng.random_range(2_000_000..90_000_000));
        // Destructive tools are rare in normal work, and public sinks less common than reads.
        let tool = loop {
            let candidate = tools.choose(rng).expect("servers offer tools");
            let keep = match candidate.role {
                ToolRole::Destructive => rng.random_bool(0.01),
                ToolRole::PublicSink => rng.random_bool(0.25),
                _ => true,
            };
            if keep {
                break candidate;
            }
        };
        let (arguments, result) = benign_call(rng, &session.user.id, tool.name);
        let mut call = session.call_tool(rng, at, tool.name, arguments, &result);
        if extras && rng.random_bool(0.03) {
            fail_call(&mut call);
        }
        events.push(call);
        if extras {
            let after = at.plus_micros(rng.random_range(100_000..5_000_000));
            events.extend(other_requests(rng, session, after));
        }
    }
    events
}

/// A tool call whose tool failed: an error result, as `isError: true` carries it.
fn fail_call(call: &mut OwnedEvent) {
    if call.tool_result.is_some() {
        let text = "Error: upstream request failed with status 503 (Service Unavailable); retry later";
        call.tool_result = Some(text.into());
        call.tool_result_size = Some(text.len() as i64);
        call.tool_result_is_error = Some(true);
    }
}

/// Requests and notifications besides tool calls, at the rates a coding agent sends them.
fn other_requests(rng: &mut impl Rng, session: &mut Session<'_>, at: Timestamp) -> Vec<OwnedEvent> {
    let mut events = Vec::new();
    let roll: f64 = rng.random();
    if roll < 0.05 {
        let took = rng.random_range(300..5_000);
        events.push(session.request(rng, at, "ping", took));
    } else if roll < 0.12 {
        let took = rng.random_range(2_000..40_000);
        events.push(session.request(rng, at, "resources/list", took));
        let took = rng.random_range(2_000..90_000);
        let mut read = session.request(rng, at.plus_micros(300_000), "resources/read", took);
        let repo = *REPOS.choose(rng).expect("repos");
        read.resource_uri = Some(format!("file:///home/dev/projects/{repo}/README.md").into());
        events.push(read);
    } else if roll < 0.15 {
        let took = rng.random_range(2_000..20_000);
        events.push(session.request(rng, at, "prompts/list", took));
        let took = rng.random_range(2_000..20_000);
        let mut get = session.request(rng, at.plus_micros(500_000), "prompts/get", took);
        get.prompt_name = Some("code_review".into());
        events.push(get);
    } else if roll < 0.16 {
        let took = rng.random_range(500..5_000);
        events.push(session.request(rng, at, "logging/setLevel", took));
    } else if roll < 0.17 {
        events.push(session.notification(rng, at, "notifications/cancelled"));
    }
    events
}
