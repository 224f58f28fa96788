//! The PostgreSQL wire protocol, so that psql, DBeaver, Grafana and Metabase connect to the
//! lake directly. Logins use API keys as passwords; queries go through the same engine,
//! limits and audit log as the HTTP API.

pub mod catalog;
mod handler;
mod session_commands;
mod startup;
mod text_columns;

use std::future::Future;
use std::sync::Arc;

use pgwire::api::PgWireServerHandlers;
use pgwire::api::auth::StartupHandler;
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use tokio::net::TcpListener;

pub use handler::{PgHandler, pg_error};
pub use startup::ApiKeyStartup;

use crate::QueryEngine;

/// Everything one PostgreSQL connection needs.
pub struct PgServices {
    handler: Arc<PgHandler>,
    startup: Arc<ApiKeyStartup>,
}

impl PgServices {
    pub fn new(engine: QueryEngine) -> Self {
        let startup = Arc::new(ApiKeyStartup::new(engine.config().api_keys.clone(), engine.clone()));
        Self { handler: Arc::new(PgHandler::new(engine)), startup }
    }
}

impl PgWireServerHandlers for PgServices {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.handler.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.handler.clone()
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.startup.clone()
    }
}

/// Serves PostgreSQL clients on `listener` until `shutdown` resolves. Connections are
/// plain TCP: keep `query.pg_listen` on localhost or put a TLS proxy in front, as the
/// password is an API key.
pub async fn serve(engine: QueryEngine, listener: TcpListener, shutdown: impl Future<Output = ()>) {
    let services = Arc::new(PgServices::new(engine));
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    let services = services.clone();
                    tokio::spawn(async move {
                        metrics::gauge!("mcpsiem_query_pg_connections").increment(1.0);
                        if let Err(e) = pgwire::tokio::process_socket(socket, None, services).await {
                            tracing::debug!(%peer, error = %e, "PostgreSQL connection ended with an error");
                        }
                        metrics::gauge!("mcpsiem_query_pg_connections").decrement(1.0);
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot accept a PostgreSQL connection");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    }
}
