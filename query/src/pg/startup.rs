//! Logging in over the PostgreSQL protocol: the password is an API key, checked against the
//! same hashed keys as the HTTP API; the user name is only recorded.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use futures::{Sink, SinkExt};
use pgwire::api::auth::{
    DefaultServerParameterProvider, StartupHandler, finish_authentication, protocol_negotiation,
    save_startup_parameters_to_metadata,
};
use pgwire::api::{ClientInfo, PgWireConnectionState, PidSecretKeyGenerator, RandomPidSecretKeyGenerator};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::startup::Authentication;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

use mcpsiem_runtime::auth::{ApiKey, Caller, authenticate};

/// Asks for a cleartext password (the API key) and, when it is a known key, keeps the
/// caller in the connection's session extensions, where the client cannot set it.
pub struct ApiKeyStartup {
    keys: Arc<Vec<ApiKey>>,
    /// Where refused logins are recorded.
    engine: crate::QueryEngine,
    parameters: DefaultServerParameterProvider,
    pids: RandomPidSecretKeyGenerator,
}

impl ApiKeyStartup {
    pub fn new(keys: Vec<ApiKey>, engine: crate::QueryEngine) -> Self {
        let mut parameters = DefaultServerParameterProvider::default();
        // Clients show these; they also learn that nothing can be written.
        parameters.server_version = format!("16.6 (mcpsiem {})", env!("CARGO_PKG_VERSION"));
        parameters.default_transaction_read_only = true;
        parameters.is_superuser = false;
        parameters.time_zone = "UTC".into();
        Self { keys: Arc::new(keys), engine, parameters, pids: RandomPidSecretKeyGenerator::default() }
    }
}

/// The caller of this connection, set at login.
pub fn caller_of<C: ClientInfo + ?Sized>(client: &C) -> PgWireResult<Arc<Caller>> {
    client.session_extensions().get::<Caller>().ok_or_else(|| {
        PgWireError::UserError(Box::new(ErrorInfo::new(
            "FATAL".into(),
            "28000".into(),
            "not logged in: connect with an API key as the password".into(),
        )))
    })
}

#[async_trait]
impl StartupHandler for ApiKeyStartup {
    async fn on_startup<C>(&self, client: &mut C, message: PgWireFrontendMessage) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match message {
            PgWireFrontendMessage::Startup(ref startup) => {
                protocol_negotiation(client, startup).await?;
                save_startup_parameters_to_metadata(client, startup);
                client.set_state(PgWireConnectionState::AuthenticationInProgress);
                client.send(PgWireBackendMessage::Authentication(Authentication::CleartextPassword)).await?;
            }
            PgWireFrontendMessage::PasswordMessageFamily(password) => {
                let password = password.into_password()?;
                let user = client.metadata().get("user").cloned().unwrap_or_default();
                let Some(caller) = authenticate(&self.keys, &password.password) else {
                    tracing::warn!(peer = %client.socket_addr(), %user, "PostgreSQL login refused: unknown API key");
                    // Nobody is known yet: the record names the user the client gave.
                    let nobody = Caller {
                        name: format!("unknown (PostgreSQL user {user:?})"),
                        role: mcpsiem_runtime::auth::Role::Analyst,
                    };
                    let sql = format!("-- PostgreSQL login from {}", client.socket_addr());
                    self.engine.audit_refusal(&nobody, &sql, &crate::QueryError::Unauthorized).await;
                    return Err(PgWireError::InvalidPassword(user));
                };
                tracing::info!(peer = %client.socket_addr(), %user, caller = %caller.name, "PostgreSQL login");
                client.session_extensions().insert(caller);
                let (pid, secret) = self.pids.generate(client);
                client.set_pid_and_secret_key(pid, secret);
                finish_authentication(client, &self.parameters).await?;
            }
            _ => {}
        }
        Ok(())
    }
}
