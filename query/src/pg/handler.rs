//! Queries over the PostgreSQL protocol, simple and extended (prepared statements), run by
//! the same [`QueryEngine`] as the HTTP API: same read-only check, limits and audit log.

use std::fmt::Debug;
use std::sync::Arc;

use arrow_pg::datatypes::df::deserialize_parameters;
use arrow_pg::datatypes::{arrow_schema_to_pg_fields, encode_recordbatch, into_pg_type};
use async_trait::async_trait;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ParamValues;
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use futures::{Sink, StreamExt, stream};
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{DataRowEncoder, FieldFormat, FieldInfo, QueryResponse, Response, Tag};
use pgwire::api::stmt::QueryParser;
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, Type};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::data::DataRow;
use pgwire::types::format::FormatOptions;

use super::session_commands::{SessionCommand, classify, default_setting};
use super::startup::caller_of;
use super::text_columns::TextColumns;
use crate::engine::{Described, Dialect};
use crate::{Caller, QueryEngine, QueryError, QueryRequest};

/// A statement a client sent, ready to run.
#[derive(Clone, Debug)]
pub enum PgStatement {
    Query { sql: String, described: Described },
    Session(SessionCommand),
}

/// One statement of what a client sent.
enum Piece {
    Query(String),
    Session(SessionCommand),
}

/// Splits `sql` into statements. Text the plain PostgreSQL parser cannot read goes to the
/// engine whole: its parser first rewrites the catalog queries clients send, and its error
/// is the one worth reporting.
fn split(sql: &str, max_depth: usize) -> Result<Vec<Piece>, QueryError> {
    // Before the parser builds (and drops) a tree too deep for the stack.
    crate::nesting::check_nesting(sql, max_depth)?;
    let Ok(statements) = Parser::parse_sql(&PostgreSqlDialect {}, sql) else {
        return Ok(vec![Piece::Query(sql.to_string())]);
    };
    let single = statements.len() == 1;
    statements
        .into_iter()
        .map(|statement| {
            Ok(match classify(&statement)? {
                Some(command) => Piece::Session(command),
                // One statement keeps the client's own text, for the audit log.
                None if single => Piece::Query(sql.trim().trim_end_matches(';').trim_end().to_string()),
                None => Piece::Query(statement.to_string()),
            })
        })
        .collect()
}

/// The PostgreSQL error for `error`: its SQLSTATE, so clients react as to PostgreSQL.
pub fn pg_error(error: &QueryError) -> PgWireError {
    PgWireError::UserError(Box::new(error_info(error)))
}

fn error_info(error: &QueryError) -> ErrorInfo {
    let code = match error {
        QueryError::Forbidden(_) => "42501",
        QueryError::Syntax(_) => "42601",
        QueryError::Plan(message) if message.starts_with("unknown column") => "42703",
        QueryError::Plan(message) if message.contains("not found") => "42P01",
        QueryError::Plan(_) => "42000",
        QueryError::Timeout(_) | QueryError::Cancelled => "57014",
        QueryError::Memory(_) => "53200",
        QueryError::Busy => "53300",
        QueryError::Unauthorized => "28000",
        QueryError::Lake(_) => "58030",
        QueryError::Execution(_) => "XX000",
    };
    ErrorInfo::new("ERROR".into(), code.into(), error.to_string())
}

fn text_fields(name: &str) -> Arc<Vec<FieldInfo>> {
    Arc::new(vec![FieldInfo::new(name.into(), None, None, Type::TEXT, FieldFormat::Text)])
}

/// Answers a session command; `SET` values are kept in the connection for `SHOW`.
fn session_response<C: ClientInfo>(client: &mut C, command: &SessionCommand) -> PgWireResult<Response> {
    Ok(match command {
        SessionCommand::Set { name, value } => {
            client.metadata_mut().insert(name.clone(), value.clone());
            Response::Execution(Tag::new("SET"))
        }
        SessionCommand::Show { name } => {
            let value = client
                .metadata()
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
                .or_else(|| default_setting(name).map(str::to_string))
                .ok_or_else(|| {
                    PgWireError::UserError(Box::new(ErrorInfo::new(
                        "ERROR".into(),
                        "42704".into(),
                        format!("unrecognized configuration parameter \"{name}\""),
                    )))
                })?;
            let column = if name == "transaction isolation level" { "transaction_isolation" } else { name };
            let fields = text_fields(column);
            let mut encoder = DataRowEncoder::new(fields.clone());
            encoder.encode_field(&value)?;
            let row = encoder.take_row();
            Response::Query(QueryResponse::new(fields, stream::iter([Ok::<DataRow, PgWireError>(row)])))
        }
        SessionCommand::Begin => Response::TransactionStart(Tag::new("BEGIN")),
        SessionCommand::Commit => Response::TransactionEnd(Tag::new("COMMIT")),
        SessionCommand::Rollback => Response::TransactionEnd(Tag::new("ROLLBACK")),
        SessionCommand::Discard { tag } => Response::Execution(Tag::new(tag)),
    })
}

/// Runs statements for PostgreSQL clients.
pub struct PgHandler {
    engine: QueryEngine,
    parser: Arc<PgQueryParser>,
}

impl PgHandler {
    pub fn new(engine: QueryEngine) -> Self {
        Self { parser: Arc::new(PgQueryParser { engine: engine.clone() }), engine }
    }

    async fn run(
        &self,
        caller: &Caller,
        sql: String,
        params: Option<ParamValues>,
        format: &Format,
        options: Arc<FormatOptions>,
    ) -> Result<QueryResponse, PgWireError> {
        let request = QueryRequest { sql, params, dialect: Dialect::Postgres, ..QueryRequest::default() };
        let answer = self.engine.run(caller, request).await.map_err(|e| pg_error(&e))?;
        let text = TextColumns::for_schema(&answer.schema);
        let fields = Arc::new(arrow_schema_to_pg_fields(text.schema(), format, Some(options))?);
        let encode_with = fields.clone();
        let rows = answer
            .stream
            .map(move |batch| -> Box<dyn Iterator<Item = PgWireResult<DataRow>> + Send> {
                match batch.and_then(|batch| text.convert(batch).map_err(|e| QueryError::Execution(e.to_string()))) {
                    Ok(batch) => encode_recordbatch(encode_with.clone(), batch),
                    Err(e) => Box::new(std::iter::once(Err(pg_error(&e)))),
                }
            })
            .flat_map(stream::iter);
        Ok(QueryResponse::new(fields, rows))
    }
}

#[async_trait]
impl SimpleQueryHandler for PgHandler {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let caller = caller_of(client)?;
        let pieces = match split(query, self.engine.max_expression_depth()) {
            Ok(pieces) => pieces,
            Err(e) => {
                self.engine.audit_refusal(&caller, query, &e).await;
                return Err(pg_error(&e));
            }
        };
        let options = Arc::new(FormatOptions::from_client_metadata(client.metadata()));
        let mut responses = Vec::with_capacity(pieces.len());
        for piece in pieces {
            let response = match piece {
                Piece::Session(command) => session_response(client, &command),
                Piece::Query(sql) => {
                    self.run(&caller, sql, None, &Format::UnifiedText, options.clone()).await.map(Response::Query)
                }
            };
            match response {
                Ok(response) => responses.push(response),
                // Like PostgreSQL, the statements after a failed one do not run.
                Err(PgWireError::UserError(info)) => {
                    responses.push(Response::Error(info));
                    break;
                }
                Err(other) => return Err(other),
            }
        }
        Ok(responses)
    }
}

/// Parses and describes prepared statements (plans them, without reading rows).
pub struct PgQueryParser {
    engine: QueryEngine,
}

#[async_trait]
impl QueryParser for PgQueryParser {
    type Statement = PgStatement;

    async fn parse_sql<C>(&self, client: &C, sql: &str, _types: &[Option<Type>]) -> PgWireResult<Option<PgStatement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let caller = caller_of(client)?;
        let mut pieces = match split(sql, self.engine.max_expression_depth()) {
            Ok(pieces) => pieces,
            Err(e) => {
                self.engine.audit_refusal(&caller, sql, &e).await;
                return Err(pg_error(&e));
            }
        };
        if pieces.len() > 1 {
            return Err(pg_error(&QueryError::Plan(
                "a prepared statement holds one statement; prepare them one at a time".into(),
            )));
        }
        Ok(match pieces.pop() {
            None => None,
            Some(Piece::Session(command)) => Some(PgStatement::Session(command)),
            Some(Piece::Query(sql)) => {
                let request = QueryRequest { sql: sql.clone(), dialect: Dialect::Postgres, ..QueryRequest::default() };
                let described = self.engine.describe(&caller, &request).await.map_err(|e| pg_error(&e))?;
                Some(PgStatement::Query { sql, described })
            }
        })
    }

    fn get_parameter_types(&self, statement: &PgStatement) -> PgWireResult<Vec<Type>> {
        match statement {
            PgStatement::Query { described, .. } => {
                described.params.iter().map(|ty| ty.as_ref().map_or(Ok(Type::UNKNOWN), into_pg_type)).collect()
            }
            PgStatement::Session(_) => Ok(Vec::new()),
        }
    }

    fn get_result_schema(&self, statement: &PgStatement, format: Option<&Format>) -> PgWireResult<Vec<FieldInfo>> {
        match statement {
            PgStatement::Query { described, .. } => {
                let text = TextColumns::for_schema(&described.schema);
                arrow_schema_to_pg_fields(text.schema(), format.unwrap_or(&Format::UnifiedText), None)
            }
            PgStatement::Session(SessionCommand::Show { name }) => Ok(text_fields(name).as_ref().clone()),
            PgStatement::Session(_) => Ok(Vec::new()),
        }
    }
}

#[async_trait]
impl ExtendedQueryHandler for PgHandler {
    type Statement = PgStatement;
    type QueryParser = PgQueryParser;

    fn query_parser(&self) -> Arc<PgQueryParser> {
        self.parser.clone()
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<PgStatement>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = PgStatement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match &portal.statement.statement {
            PgStatement::Session(command) => session_response(client, command),
            PgStatement::Query { sql, described } => {
                let caller = caller_of(client)?;
                let params = if portal.parameter_len() == 0 {
                    None
                } else {
                    let inferred: Vec<Option<&DataType>> = described.params.iter().map(Option::as_ref).collect();
                    Some(deserialize_parameters(portal, &inferred)?)
                };
                let options = Arc::new(FormatOptions::from_client_metadata(client.metadata()));
                let response = self.run(&caller, sql.clone(), params, &portal.result_column_format, options).await?;
                Ok(Response::Query(response))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: usize = crate::nesting::DEFAULT_MAX_EXPRESSION_DEPTH;

    #[test]
    fn a_script_splits_into_session_commands_and_queries() {
        let pieces = split("SET application_name = 'x'; SELECT 1; select 2;", D).unwrap();
        assert_eq!(pieces.len(), 3);
        assert!(matches!(&pieces[0], Piece::Session(SessionCommand::Set { name, .. }) if name == "application_name"));
        assert!(matches!(&pieces[1], Piece::Query(q) if q == "SELECT 1"));
        assert!(matches!(&pieces[2], Piece::Query(q) if q == "SELECT 2"));
        // A single statement keeps its own text.
        assert!(matches!(&split("select  1 ;", D).unwrap()[0], Piece::Query(q) if q == "select  1"));
        // Unparseable text goes to the engine whole.
        assert!(matches!(&split("SELEC 1", D).unwrap()[0], Piece::Query(q) if q == "SELEC 1"));
    }

    #[test]
    fn errors_carry_postgres_sqlstates() {
        assert_eq!(error_info(&QueryError::Forbidden("x".into())).code, "42501");
        assert_eq!(error_info(&QueryError::Plan("unknown column `x`".into())).code, "42703");
        assert_eq!(error_info(&QueryError::Timeout(std::time::Duration::from_secs(1))).code, "57014");
    }
}
