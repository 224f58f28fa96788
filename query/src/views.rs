//! Saved forensic views: the questions analysts ask every incident, as tables they filter
//! with `WHERE` (a token, a session, a user) like any other. Each is plain SQL over the
//! lake's tables, so `start`/`end` prune it as they prune the tables.

use datafusion::prelude::SessionContext;

use crate::QueryError;

/// One saved view: its name and the SQL it stands for.
pub struct ForensicView {
    pub name: &'static str,
    pub description: &'static str,
    sql: &'static str,
}

/// The views, documented in `docs/query.md`.
pub const VIEWS: &[ForensicView] = &[
    ForensicView {
        name: "token_activity",
        description: "one row per bearer-token fingerprint: when, from where, by whom, on which servers, refusals",
        sql: "SELECT auth_token_fingerprint,
                  min(event_time) AS first_seen, max(event_time) AS last_seen, count(*) AS events,
                  count(DISTINCT client_address) AS client_addresses,
                  array_agg(DISTINCT client_address) AS addresses,
                  array_agg(DISTINCT user_agent_original) AS user_agents,
                  array_agg(DISTINCT enduser_id) AS users,
                  array_agg(DISTINCT mcp_server_name) AS servers,
                  count(*) FILTER (WHERE http_response_status_code IN (401, 403)) AS refused,
                  max(auth_token_sub) AS token_sub, max(auth_token_iss) AS token_iss
           FROM events WHERE auth_token_fingerprint IS NOT NULL
           GROUP BY auth_token_fingerprint",
    },
    ForensicView {
        name: "session_tool_chains",
        description: "one row per MCP session: its user, client, servers and the tools called, in order",
        sql: "SELECT mcp_session_id, max(enduser_id) AS enduser_id, max(mcp_client_name) AS mcp_client_name,
                  min(event_time) AS first_time, max(event_time) AS last_time,
                  array_agg(DISTINCT mcp_server_name) AS servers,
                  string_agg(gen_ai_tool_name, ' -> ' ORDER BY event_time) AS chain,
                  count(*) AS calls,
                  count(*) FILTER (WHERE mcp_tool_result_is_error) AS failed_calls
           FROM events
           WHERE mcp_method_name = 'tools/call' AND mcp_session_id IS NOT NULL
           GROUP BY mcp_session_id",
    },
    ForensicView {
        name: "alert_events",
        description: "each alert with each event it was raised on",
        sql: "SELECT a.alert_id, a.alert_time, a.rule_id, a.rule_title, a.level, a.group_values,
                  e.event_id, e.event_time, e.event_kind, e.enduser_id, e.auth_token_fingerprint,
                  e.client_address, e.mcp_session_id, e.mcp_server_name, e.mcp_method_name,
                  e.gen_ai_tool_name, e.gen_ai_tool_call_arguments, e.gen_ai_tool_call_result
           FROM (SELECT alert_id, alert_time, rule_id, rule_title, level, group_values,
                        unnest(event_ids) AS event_id FROM alerts) a
           JOIN events e ON e.event_id = a.event_id",
    },
    ForensicView {
        name: "mcp_servers",
        description: "MCP inventory: every server seen, first and last seen, its clients and users, and whether it is approved",
        sql: "SELECT mcp_server_name, min(event_time) AS first_seen, max(event_time) AS last_seen,
                  count(*) AS events,
                  array_agg(DISTINCT mcp_server_version) AS versions,
                  array_agg(DISTINCT server_address) AS addresses,
                  array_agg(DISTINCT mcp_client_name) AS clients,
                  array_agg(DISTINCT enduser_id) AS users,
                  count(DISTINCT gen_ai_tool_name) AS tools,
                  {approved} AS approved
           FROM events WHERE mcp_server_name IS NOT NULL
           GROUP BY mcp_server_name",
    },
    ForensicView {
        name: "mcp_tools",
        description: "MCP inventory: every tool of every server, first and last seen, who used it, its current description hash and how often it changed",
        sql: "SELECT mcp_server_name, gen_ai_tool_name,
                  min(event_time) AS first_seen, max(event_time) AS last_seen,
                  count(*) FILTER (WHERE mcp_method_name = 'tools/call') AS calls,
                  count(DISTINCT enduser_id) AS users,
                  count(DISTINCT mcp_client_name) AS clients,
                  last_value(mcp_tool_description_sha256 ORDER BY event_time)
                      FILTER (WHERE mcp_tool_description_sha256 IS NOT NULL) AS description_sha256,
                  greatest(count(DISTINCT mcp_tool_description_sha256) - 1, 0) AS description_changes,
                  last_value(mcp_tool_input_schema_sha256 ORDER BY event_time)
                      FILTER (WHERE mcp_tool_input_schema_sha256 IS NOT NULL) AS input_schema_sha256,
                  {approved} AS approved_server
           FROM events WHERE mcp_server_name IS NOT NULL AND gen_ai_tool_name IS NOT NULL
           GROUP BY mcp_server_name, gen_ai_tool_name",
    },
    ForensicView {
        name: "alert_status",
        description: "each alert with its triage state (new, acknowledged, closed, silenced), assignee, verdict, when it last changed, and the repeats the detector folded into it (how many, last seen), derived from alert_changes",
        // The latest change that sets a state decides the state and the verdict, the latest
        // assignment the assignee, ordered by (changed_at, change_id): the same rule as
        // `AlertStatus::from_changes`, which a test keeps in agreement with this view. A
        // change stored twice (the delivery stage's record of a silenced alert, read again
        // after a crash, or a detector's repeat sent again) is one row twice: it ranks the
        // same and counts once. Repeats are not triage: they leave `changes` and
        // `updated_at` alone.
        sql: "SELECT a.*, COALESCE(s.state, 'new') AS state, s.assignee, s.verdict,
                  s.updated_at, COALESCE(s.changes, 0) AS changes, COALESCE(s.repeats, 0) AS repeats,
                  CASE WHEN s.last_repeat > a.last_time THEN s.last_repeat ELSE a.last_time END AS last_seen
           FROM alerts a LEFT JOIN (
               SELECT alert_id,
                      max(CASE WHEN state IS NOT NULL AND state_rank = 1 THEN state END) AS state,
                      max(CASE WHEN state IS NOT NULL AND state_rank = 1 THEN verdict END) AS verdict,
                      max(CASE WHEN action = 'assign' AND assign_rank = 1 THEN assignee END) AS assignee,
                      max(changed_at) FILTER (WHERE action <> 'repeat') AS updated_at,
                      count(DISTINCT change_id) FILTER (WHERE action <> 'repeat') AS changes,
                      sum(CASE WHEN copy = 1 THEN repeat_count END) AS repeats,
                      max(repeat_last_time) AS last_repeat
               FROM (SELECT alert_id, change_id, action, state, verdict, assignee, changed_at,
                            repeat_count, repeat_last_time,
                            row_number() OVER (PARTITION BY alert_id, state IS NULL
                                               ORDER BY changed_at DESC, change_id DESC) AS state_rank,
                            row_number() OVER (PARTITION BY alert_id, action = 'assign'
                                               ORDER BY changed_at DESC, change_id DESC) AS assign_rank,
                            row_number() OVER (PARTITION BY change_id ORDER BY changed_at) AS copy
                     FROM alert_changes) ranked
               GROUP BY alert_id) s ON s.alert_id = a.alert_id",
    },
    ForensicView {
        name: "silence_status",
        description: "the latest version of each silence (made, or expired early) with its state now: pending, active or expired",
        sql: "SELECT silence_id, actor, interface, action, starts_at, ends_at, reason, matchers, version_at,
                  CASE WHEN now() < starts_at THEN 'pending' WHEN now() < ends_at THEN 'active' ELSE 'expired' END AS state
           FROM (SELECT *, row_number() OVER (PARTITION BY silence_id ORDER BY version_at DESC, action DESC) AS version_rank
                 FROM silences) versions
           WHERE version_rank = 1",
    },
    ForensicView {
        name: "rule_stats",
        description: "one row per rule that raised alerts: how many, when last, the verdicts its closed alerts got and its false-positive ratio",
        // The ratio counts closed alerts with a verdict on the rule's quality: duplicates
        // say nothing about the rule and are left out (docs/alerts.md).
        sql: "SELECT rule_id, max(rule_title) AS rule_title, count(*) AS alerts, max(alert_time) AS last_fired,
                  count(*) FILTER (WHERE state = 'new') AS new,
                  count(*) FILTER (WHERE state = 'acknowledged') AS acknowledged,
                  count(*) FILTER (WHERE state = 'closed') AS closed,
                  count(*) FILTER (WHERE verdict = 'true_positive') AS true_positives,
                  count(*) FILTER (WHERE verdict = 'false_positive') AS false_positives,
                  count(*) FILTER (WHERE verdict = 'benign_positive') AS benign_positives,
                  count(*) FILTER (WHERE verdict = 'duplicate') AS duplicates,
                  CAST(count(*) FILTER (WHERE verdict = 'false_positive') AS DOUBLE)
                      / CAST(NULLIF(count(*) FILTER (WHERE verdict IN ('true_positive', 'false_positive', 'benign_positive')), 0) AS DOUBLE)
                      AS false_positive_ratio
           FROM alert_status GROUP BY rule_id",
    },
];

/// `mcp_server_name IN (…)` for the approved inventory, or `false` when there is none.
fn approved_predicate(approved_servers: &[String]) -> String {
    if approved_servers.is_empty() {
        return "false".into();
    }
    let names: Vec<String> = approved_servers.iter().map(|s| format!("'{}'", s.replace('\'', "''"))).collect();
    format!("(mcp_server_name IN ({}))", names.join(", "))
}

/// Registers the views `sql` mentions, or every view when `all` (planning every view for
/// every query would cost each query the planning of five aggregations).
pub async fn register_views(
    ctx: &SessionContext,
    sql: &str,
    all: bool,
    approved_servers: &[String],
) -> Result<(), QueryError> {
    // The views `sql` names and, through their own text, the views those read.
    let mut wanted = sql.to_ascii_lowercase();
    let mut chosen = vec![all; VIEWS.len()];
    while let Some(i) = (0..VIEWS.len()).find(|&i| !chosen[i] && wanted.contains(VIEWS[i].name)) {
        chosen[i] = true;
        wanted.push_str(VIEWS[i].sql);
    }
    // In the list's order: a view is listed after the views it reads.
    for (view, _) in VIEWS.iter().zip(chosen).filter(|(_, chosen)| *chosen) {
        let text = view.sql.replace("{approved}", &approved_predicate(approved_servers));
        let plan = ctx.state().create_logical_plan(&text).await?;
        let frame = datafusion::dataframe::DataFrame::new(ctx.state(), plan);
        ctx.register_table(view.name, frame.into_view())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_approved_list_is_quoted() {
        assert_eq!(approved_predicate(&[]), "false");
        assert_eq!(approved_predicate(&["a".into(), "o'b".into()]), "(mcp_server_name IN ('a', 'o''b'))");
    }
}
