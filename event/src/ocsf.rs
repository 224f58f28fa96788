//! Alerts as OCSF Detection Findings (class 2004, schema 1.3.0): how SIEMs and security lakes
//! (Splunk, Sentinel, Amazon Security Lake) exchange findings.
//!
//! The mapping (docs/delivery.md says it for users): the alert id is the finding's
//! `finding_info.uid` and `metadata.uid`; the rule is the `analytic` (a rule, with its id and
//! title); the level is the severity; `attack.*` tags become `attacks` (one per technique,
//! with the rule's first tactic); the alert's group becomes `observables` (users, addresses,
//! and the others as "Other"); the first and last matching events' times are the finding's
//! first and last seen times; the matched event ids are `related_events`. What OCSF has no
//! place for (the whole group, the other tags, the SQL that finds the events, the rule kind)
//! is kept under `unmapped`.

use serde_json::{Map, Value, json};

use crate::{Alert, Level, Timestamp};

/// The OCSF schema version the findings follow.
pub const OCSF_VERSION: &str = "1.3.0";
const DETECTION_FINDING: u32 = 2004;
const CREATE: u32 = 1;

/// The OCSF Detection Finding of `alert`, as JSON.
pub fn detection_finding(alert: &Alert, product_version: &str) -> Value {
    let (severity_id, severity) = severity(alert.level);
    json!({
        "class_uid": DETECTION_FINDING,
        "class_name": "Detection Finding",
        "category_uid": 2,
        "category_name": "Findings",
        "activity_id": CREATE,
        "activity_name": "Create",
        "type_uid": DETECTION_FINDING * 100 + CREATE,
        "type_name": "Detection Finding: Create",
        "time": millis(alert.last_time),
        "start_time": millis(alert.first_time),
        "end_time": millis(alert.last_time),
        "severity_id": severity_id,
        "severity": severity,
        "status_id": 1,
        "status": "New",
        "message": alert.rule_title,
        "count": alert.count,
        "metadata": {
            "version": OCSF_VERSION,
            "uid": alert.id,
            "product": {"name": "mcpsiem", "vendor_name": "mcpsiem", "version": product_version},
            "labels": alert.tags,
        },
        "finding_info": {
            "uid": alert.id,
            "title": alert.rule_title,
            "analytic": {"uid": alert.rule_id, "name": alert.rule_title, "type_id": 1, "type": "Rule"},
            "attacks": attacks(&alert.tags),
            "first_seen_time": millis(alert.first_time),
            "last_seen_time": millis(alert.last_time),
            "types": [alert.source.as_str()],
            "data_sources": ["mcp"],
            "related_events": alert.event_ids.iter().map(|id| json!({"uid": id})).collect::<Vec<_>>(),
        },
        "observables": observables(alert),
        "unmapped": {
            "group": alert.group,
            "sql": alert.sql,
            "source": alert.source.as_str(),
        },
    })
}

fn millis(t: Timestamp) -> i64 {
    t.as_micros().div_euclid(1000)
}

fn severity(level: Level) -> (u8, &'static str) {
    match level {
        Level::Informational => (1, "Informational"),
        Level::Low => (2, "Low"),
        Level::Medium => (3, "Medium"),
        Level::High => (4, "High"),
        Level::Critical => (5, "Critical"),
    }
}

/// MITRE ATT&CK Enterprise tactics by the name Sigma tags use (`attack.initial_access`).
const TACTICS: &[(&str, &str, &str)] = &[
    ("reconnaissance", "TA0043", "Reconnaissance"),
    ("resource_development", "TA0042", "Resource Development"),
    ("initial_access", "TA0001", "Initial Access"),
    ("execution", "TA0002", "Execution"),
    ("persistence", "TA0003", "Persistence"),
    ("privilege_escalation", "TA0004", "Privilege Escalation"),
    ("defense_evasion", "TA0005", "Defense Evasion"),
    ("credential_access", "TA0006", "Credential Access"),
    ("discovery", "TA0007", "Discovery"),
    ("lateral_movement", "TA0008", "Lateral Movement"),
    ("collection", "TA0009", "Collection"),
    ("command_and_control", "TA0011", "Command and Control"),
    ("exfiltration", "TA0010", "Exfiltration"),
    ("impact", "TA0040", "Impact"),
];

/// A technique tag's id (`attack.t1550.001` → `T1550.001`); `None` for other tags.
fn technique_id(tag: &str) -> Option<String> {
    let rest = tag.strip_prefix("attack.t")?;
    let (main, sub) = rest.split_once('.').map_or((rest, None), |(m, s)| (m, Some(s)));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(main) || sub.is_some_and(|s| !digits(s)) {
        return None;
    }
    Some(match sub {
        Some(sub) => format!("T{main}.{sub}"),
        None => format!("T{main}"),
    })
}

/// One attack per technique tag, each with the rule's first tactic; the first tactic alone
/// when the rule names no technique. Sigma tags do not say which tactic goes with which
/// technique, so pairing every tactic with every technique would claim too much.
fn attacks(tags: &[String]) -> Vec<Value> {
    let tactic = tags.iter().find_map(|tag| {
        let name = tag.strip_prefix("attack.")?;
        TACTICS.iter().find(|(tag_name, ..)| *tag_name == name).map(|(_, uid, name)| json!({"uid": uid, "name": name}))
    });
    let mut out = Vec::new();
    for id in tags.iter().filter_map(|t| technique_id(t)) {
        let mut attack = Map::new();
        if let Some(tactic) = &tactic {
            attack.insert("tactic".into(), tactic.clone());
        }
        match id.split_once('.') {
            Some((main, _)) => {
                attack.insert("technique".into(), json!({"uid": main}));
                attack.insert("sub_technique".into(), json!({"uid": id}));
            }
            None => {
                attack.insert("technique".into(), json!({"uid": id}));
            }
        }
        out.push(Value::Object(attack));
    }
    if out.is_empty()
        && let Some(tactic) = tactic
    {
        out.push(json!({"tactic": tactic}));
    }
    out
}

/// The group's entities: users and addresses by their OCSF observable types, the rest as
/// "Other" named by their field.
fn observables(alert: &Alert) -> Vec<Value> {
    alert
        .group
        .iter()
        .map(|(field, value)| {
            let (type_id, type_name) = match field.as_str() {
                "enduser.id" | "auth.token.sub" => (4, "User Name"),
                "client.address" | "server.address" if value.parse::<std::net::IpAddr>().is_ok() => (2, "IP Address"),
                "client.address" | "server.address" => (1, "Hostname"),
                "url.full" | "mcp.server.resource_uri" => (6, "URL String"),
                _ => (99, "Other"),
            };
            json!({"name": field, "value": value, "type_id": type_id, "type": type_name})
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::AlertSource;

    fn alert() -> Alert {
        Alert {
            id: "01JD0000000000000000000000".into(),
            rule_id: "3f6f0c1e-2a57-4d0c-9b0e-6b1f4c1a0002".into(),
            rule_title: "MCP token used from a new client address".into(),
            level: Level::High,
            tags: vec![
                "attack.credential_access".into(),
                "attack.defense_evasion".into(),
                "attack.t1550.001".into(),
                "attack.t1078".into(),
                "safe-mcp.t1202".into(),
            ],
            source: AlertSource::FirstSeen,
            first_time: Timestamp::parse("2026-11-24T10:00:00Z").unwrap(),
            last_time: Timestamp::parse("2026-11-24T10:05:00.123456Z").unwrap(),
            group: BTreeMap::from([
                ("enduser.id".to_string(), "alice@corp.example.com".to_string()),
                ("client.address".to_string(), "203.0.113.7".to_string()),
                ("auth.token.identity".to_string(), "fp:ab12".to_string()),
            ]),
            count: 2,
            event_ids: vec!["01JDA".into(), "01JDB".into()],
            sql: "SELECT * FROM events WHERE event_id IN ('01JDA','01JDB')".into(),
        }
    }

    #[test]
    fn an_alert_becomes_a_detection_finding_with_its_rule_severity_times_and_entities() {
        let f = detection_finding(&alert(), "0.1.0");
        assert_eq!(f["class_uid"], 2004);
        assert_eq!(f["type_uid"], 200401);
        assert_eq!(f["metadata"]["version"], "1.3.0");
        assert_eq!(f["severity_id"], 4);
        assert_eq!(f["time"], 1_795_514_700_123_i64);
        assert_eq!(f["finding_info"]["first_seen_time"], 1_795_514_400_000_i64);
        assert_eq!(f["finding_info"]["uid"], "01JD0000000000000000000000");
        assert_eq!(f["finding_info"]["analytic"]["uid"], "3f6f0c1e-2a57-4d0c-9b0e-6b1f4c1a0002");
        assert_eq!(f["finding_info"]["related_events"][1]["uid"], "01JDB");
        let observables = f["observables"].as_array().unwrap();
        let type_of = |name: &str| observables.iter().find(|o| o["name"] == name).map(|o| o["type_id"].clone());
        assert_eq!(type_of("enduser.id"), Some(json!(4)));
        assert_eq!(type_of("client.address"), Some(json!(2)));
        assert_eq!(type_of("auth.token.identity"), Some(json!(99)));
        assert_eq!(f["unmapped"]["group"]["auth.token.identity"], "fp:ab12");
    }

    #[test]
    fn technique_tags_become_attacks_with_the_first_tactic() {
        let f = detection_finding(&alert(), "0.1.0");
        assert_eq!(
            f["finding_info"]["attacks"],
            json!([
                {"tactic": {"uid": "TA0006", "name": "Credential Access"}, "technique": {"uid": "T1550"}, "sub_technique": {"uid": "T1550.001"}},
                {"tactic": {"uid": "TA0006", "name": "Credential Access"}, "technique": {"uid": "T1078"}}
            ])
        );
        assert_eq!(
            attacks(&["attack.exfiltration".into()]),
            vec![json!({"tactic": {"uid": "TA0010", "name": "Exfiltration"}})]
        );
        assert!(
            attacks(&["attack.t15x".into(), "attack.t".into(), "attack.t1550.".into(), "owasp-mcp.mcp01".into()])
                .is_empty()
        );
    }
}
