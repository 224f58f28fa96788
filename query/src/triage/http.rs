//! The alert workflow's HTTP API (docs/alerts.md):
//! `GET /api/v1/alerts`, `GET /api/v1/alerts/{id}` and
//! `POST /api/v1/alerts/{id}/{ack,assign,close,reopen,comment}`, `GET /api/v1/rules/stats`
//! `GET /api/v1/entities/risk`, `GET /api/v1/incidents`, `GET /api/v1/incidents/{id}`,
//! `POST /api/v1/incidents/{id}/{action}`, and `GET|POST /api/v1/silences`,
//! `POST /api/v1/silences/{id}/expire`.

use axum::body::Body;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::StreamExt;
use mcpsiem_event::silence::SilenceState;
use mcpsiem_event::{ChangeAction, Verdict};
use mcpsiem_runtime::auth::Caller;
use serde::Deserialize;

use super::filter::AlertFilterParams;
use super::incidents::IncidentParams;
use super::insights::{RiskParams, RuleStatsParams};
use super::silences::NewSilence;
use super::{Triage, TriageError};
use crate::QueryError;
use crate::audit::AuditRecord;
use crate::format::{Encoder, Format};
use crate::http::{caller, error_response};
use crate::request::QueryRequest;

/// The routes, to merge into the query service's router.
pub fn routes(triage: Triage) -> Router {
    Router::new()
        .route("/api/v1/alerts", get(list))
        .route("/api/v1/alerts/{id}", get(show))
        .route("/api/v1/alerts/{id}/{action}", post(change))
        .route("/api/v1/rules/stats", get(rule_stats))
        .route("/api/v1/entities/risk", get(entity_risk))
        .route("/api/v1/incidents", get(list_incidents))
        .route("/api/v1/incidents/{id}", get(show_incident))
        .route("/api/v1/incidents/{id}/{action}", post(change_incident))
        .route("/api/v1/silences", get(list_silences).post(add_silence))
        .route("/api/v1/silences/{id}/expire", post(expire_silence))
        .with_state(triage)
}

/// The request's caller, authenticated by its API key before the handler runs: a request
/// without a valid key is answered as every API answers it (401, the JSON error).
pub struct Authed(pub Caller);

impl FromRequestParts<Triage> for Authed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, triage: &Triage) -> Result<Self, Response> {
        caller(triage.engine(), &parts.headers).map(Authed).map_err(|e| error_response(&e))
    }
}

fn triage_error_response(error: &TriageError) -> Response {
    let status = match error {
        TriageError::Query(e) => return error_response(e),
        TriageError::NotFound(_) => StatusCode::NOT_FOUND,
        TriageError::Conflict(_) => StatusCode::CONFLICT,
        TriageError::Forbidden(_) => StatusCode::FORBIDDEN,
        TriageError::Invalid(_) => StatusCode::BAD_REQUEST,
        TriageError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    let body = serde_json::json!({ "error": error.code(), "message": error.to_string() });
    (status, Json(body)).into_response()
}

async fn list(
    State(triage): State<Triage>,
    Authed(caller): Authed,
    params: Result<Query<AlertFilterParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let params = match params {
        Ok(Query(params)) => params,
        Err(e) => {
            return error_response(&QueryError::Plan(format!(
                "the query string takes state, level, rule, assignee, entity, from, to, limit, offset and format: {e}"
            )));
        }
    };
    let format = params.format.clone();
    let filter = match params.check() {
        Ok(filter) => filter,
        Err(e) => return error_response(&e),
    };
    match format.as_deref() {
        None | Some("json") => match triage.list(&caller, &filter).await {
            Ok(page) => Json(page).into_response(),
            Err(e) => error_response(&e),
        },
        Some("ocsf") => {
            let answer = match triage.list_answer(&caller, &filter).await {
                Ok(answer) => answer,
                Err(e) => return error_response(&e),
            };
            let mut encoder = match Encoder::new(Format::Ocsf, &answer.schema) {
                Ok(encoder) => encoder,
                Err(e) => return error_response(&QueryError::Execution(e.to_string())),
            };
            // A page is at most `MAX_PAGE` alerts: encoded whole, then sent.
            let mut body = Vec::new();
            let mut stream = answer.stream;
            while let Some(batch) = stream.next().await {
                let encoded = batch.and_then(|b| encoder.batch(&b).map_err(|e| QueryError::Execution(e.to_string())));
                match encoded {
                    Ok(bytes) => body.extend_from_slice(&bytes),
                    Err(e) => return error_response(&e),
                }
            }
            ([(header::CONTENT_TYPE, Format::Ocsf.content_type())], Body::from(body)).into_response()
        }
        Some(other) => {
            error_response(&QueryError::Plan(format!("format `{other}` is not offered here; use json or ocsf")))
        }
    }
}

async fn rule_stats(
    State(triage): State<Triage>,
    Authed(caller): Authed,
    params: Result<Query<RuleStatsParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(params)) = params else {
        return error_response(&QueryError::Plan("the query string takes `days` (1 to 3650)".into()));
    };
    match triage.rule_stats(&caller, &params).await {
        Ok(rules) => Json(serde_json::json!({ "rules": rules })).into_response(),
        Err(e) => error_response(&e),
    }
}

async fn entity_risk(
    State(triage): State<Triage>,
    Authed(caller): Authed,
    params: Result<Query<RiskParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(params)) = params else {
        return error_response(&QueryError::Plan("the query string takes `days`, `type` and `limit`".into()));
    };
    match triage.entity_risk(&caller, &params).await {
        Ok(entities) => Json(serde_json::json!({ "entities": entities })).into_response(),
        Err(e) => error_response(&e),
    }
}

async fn show(State(triage): State<Triage>, Authed(caller): Authed, Path(id): Path<String>) -> Response {
    match triage.show(&caller, &id).await {
        Ok(detail) => Json(detail).into_response(),
        Err(e) => triage_error_response(&e),
    }
}

/// The body of a change; which members count depends on the action.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeBody {
    /// `assign`: who (absent or null: nobody).
    pub assignee: Option<String>,
    /// `close`: true_positive, false_positive, benign_positive or duplicate.
    pub verdict: Option<String>,
    /// `close`, `reopen`: why; `comment`: the comment.
    pub comment: Option<String>,
}

/// The action a path and body ask for.
pub fn action_of(name: &str, body: ChangeBody) -> Result<ChangeAction, String> {
    let verdicts = "true_positive, false_positive, benign_positive or duplicate";
    match name {
        "ack" | "acknowledge" => Ok(ChangeAction::Acknowledge),
        "assign" => Ok(ChangeAction::Assign { assignee: body.assignee.filter(|a| !a.is_empty()) }),
        "close" => {
            let verdict = body.verdict.ok_or_else(|| format!("closing needs a `verdict`: {verdicts}"))?;
            let verdict =
                Verdict::parse(&verdict).ok_or_else(|| format!("`{verdict}` is not a verdict; use {verdicts}"))?;
            Ok(ChangeAction::Close { verdict, comment: body.comment })
        }
        "reopen" => Ok(ChangeAction::Reopen { comment: body.comment }),
        "comment" => Ok(ChangeAction::Comment {
            text: body.comment.ok_or_else(|| "a comment needs its text in `comment`".to_string())?,
        }),
        other => Err(format!("`{other}` is not an alert action; use ack, assign, close, reopen or comment")),
    }
}

/// The interface a change came through: the CLI and the console say so in a header.
fn interface(headers: &HeaderMap) -> &'static str {
    match headers.get("x-mcpsiem-interface").and_then(|v| v.to_str().ok()) {
        Some("cli") => "cli",
        Some("console") => "console",
        _ => "api",
    }
}

async fn change(
    State(triage): State<Triage>,
    Authed(caller): Authed,
    headers: HeaderMap,
    Path((id, name)): Path<(String, String)>,
    body: Option<Json<ChangeBody>>,
) -> Response {
    change_answer(triage, caller, &headers, id, name, body, false).await
}

async fn change_incident(
    State(triage): State<Triage>,
    Authed(caller): Authed,
    headers: HeaderMap,
    Path((id, name)): Path<(String, String)>,
    body: Option<Json<ChangeBody>>,
) -> Response {
    change_answer(triage, caller, &headers, id, name, body, true).await
}

/// Makes, audits and answers one change of an alert or an incident.
async fn change_answer(
    triage: Triage,
    caller: Caller,
    headers: &HeaderMap,
    id: String,
    name: String,
    body: Option<Json<ChangeBody>>,
    incident: bool,
) -> Response {
    let what = if incident { "incident" } else { "alert" };
    let what = format!("{name} {what} {}", id.chars().take(80).collect::<String>());
    let mut record = AuditRecord::start(&caller, &QueryRequest { sql: what, ..QueryRequest::default() });
    record.action = "alert_change".into();
    let outcome = match action_of(&name, body.map(|Json(b)| b).unwrap_or_default()) {
        Ok(action) if incident => triage.change_incident(&caller, &id, action, interface(headers)).await,
        Ok(action) => triage.change(&caller, &id, action, interface(headers)).await,
        Err(message) => Err(TriageError::Invalid(message)),
    };
    match outcome {
        Ok(outcome) => {
            record.outcome = "ok".into();
            record.rows = 1;
            record.detail = Some(outcome.change.to_json());
            triage.engine().audit(record).await;
            Json(outcome).into_response()
        }
        Err(e) => {
            record.outcome = e.code().into();
            record.error = Some(e.to_string());
            triage.engine().audit(record).await;
            triage_error_response(&e)
        }
    }
}

async fn list_incidents(
    State(triage): State<Triage>,
    Authed(caller): Authed,
    params: Result<Query<IncidentParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(params)) = params else {
        return error_response(&QueryError::Plan("the query string takes state, days, limit and offset".into()));
    };
    match triage.incidents(&caller, &params).await {
        Ok(page) => Json(page).into_response(),
        Err(e) => error_response(&e),
    }
}

async fn show_incident(State(triage): State<Triage>, Authed(caller): Authed, Path(id): Path<String>) -> Response {
    match triage.incident(&caller, &id).await {
        Ok(detail) => Json(detail).into_response(),
        Err(e) => triage_error_response(&e),
    }
}

/// `GET /api/v1/silences?state=`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SilenceListParams {
    pub state: Option<String>,
}

async fn list_silences(
    State(triage): State<Triage>,
    Authed(caller): Authed,
    params: Result<Query<SilenceListParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(params)) = params else {
        return error_response(&QueryError::Plan("the query string takes `state` (pending, active or expired)".into()));
    };
    let state = match params.state.as_deref().map(|s| (s, SilenceState::parse(s))) {
        None => None,
        Some((_, Some(state))) => Some(state),
        Some((other, None)) => {
            return error_response(&QueryError::Plan(format!(
                "`{other}` is not a silence state; use pending, active or expired"
            )));
        }
    };
    match triage.silences(&caller, state).await {
        Ok(silences) => Json(serde_json::json!({ "silences": silences })).into_response(),
        Err(e) => error_response(&e),
    }
}

/// Audits one silence change and answers it.
async fn silence_answer(
    triage: &Triage,
    mut record: AuditRecord,
    outcome: Result<mcpsiem_event::silence::Silence, TriageError>,
) -> Response {
    record.action = "silence_change".into();
    match outcome {
        Ok(silence) => {
            record.outcome = "ok".into();
            record.rows = 1;
            record.detail = Some(silence.to_json());
            triage.engine().audit(record).await;
            let state = silence.state(mcpsiem_event::Timestamp::now());
            Json(super::silences::SilenceView { state, silence }).into_response()
        }
        Err(e) => {
            record.outcome = e.code().into();
            record.error = Some(e.to_string());
            triage.engine().audit(record).await;
            triage_error_response(&e)
        }
    }
}

async fn add_silence(
    State(triage): State<Triage>,
    Authed(caller): Authed,
    headers: HeaderMap,
    body: Result<Json<NewSilence>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let record = AuditRecord::start(&caller, &QueryRequest { sql: "add silence".into(), ..QueryRequest::default() });
    let outcome = match body {
        Ok(Json(asked)) => triage.add_silence(&caller, asked, interface(&headers)).await,
        Err(e) => Err(TriageError::Invalid(format!(
            "the body must be JSON with `matchers`, `reason` and `ends_at` or `duration_minutes` (and optional `starts_at`): {e}"
        ))),
    };
    silence_answer(&triage, record, outcome).await
}

async fn expire_silence(
    State(triage): State<Triage>,
    Authed(caller): Authed,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let what = format!("expire silence {}", id.chars().take(80).collect::<String>());
    let record = AuditRecord::start(&caller, &QueryRequest { sql: what, ..QueryRequest::default() });
    let outcome = triage.expire_silence(&caller, &id, interface(&headers)).await;
    silence_answer(&triage, record, outcome).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_come_from_the_path_and_body() {
        assert_eq!(action_of("ack", ChangeBody::default()), Ok(ChangeAction::Acknowledge));
        let close =
            ChangeBody { verdict: Some("false_positive".into()), comment: Some("noise".into()), ..Default::default() };
        assert_eq!(
            action_of("close", close),
            Ok(ChangeAction::Close { verdict: Verdict::FalsePositive, comment: Some("noise".into()) })
        );
        assert!(action_of("close", ChangeBody::default()).unwrap_err().contains("needs a `verdict`"));
        let wrong = ChangeBody { verdict: Some("maybe".into()), ..Default::default() };
        assert!(action_of("close", wrong).unwrap_err().contains("`maybe` is not a verdict"));
        assert!(action_of("delete", ChangeBody::default()).unwrap_err().contains("use ack, assign"));
        assert_eq!(action_of("assign", ChangeBody::default()), Ok(ChangeAction::Assign { assignee: None }));
    }
}
