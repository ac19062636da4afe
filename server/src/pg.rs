//! The PostgreSQL wire protocol on `server.pg_listen` (SPEC §10): psql, drivers (psycopg, JDBC),
//! Grafana and other tools sign in with an account's name and password and run SQL as that
//! account.
//!
//! Built on `pgwire` (the protocol) and `arrow-pg` (Arrow values as PostgreSQL rows), not on a
//! shared DataFusion context: every statement runs through
//! [`auditlake_query::Engine::user_session`] for the connection's account (path `pg`), with the
//! same row filters, masks, refusals, limits and query log as every other path.
//!
//! - TLS when `pg_tls_cert` and `pg_tls_key` are set (clients choose it with `sslmode`).
//! - Sign-in: the cleartext password message (so: TLS, or loopback), checked against the
//!   account's argon2id hash by [`crate::auth::Authenticator`], with its per-account and
//!   per-address limits. A wrong password ends the connection with SQLSTATE 28P01.
//! - Simple and extended query protocols. The extended protocol describes a statement by
//!   planning it (nothing runs until Execute). Parameters (`$1`) are not supported.
//! - Transaction and session statements that clients send on their own (`BEGIN`, `COMMIT`,
//!   `ROLLBACK`, `SET`, `DISCARD`; one statement, as DataFusion's parser reads it) are
//!   acknowledged and do nothing: the lake is read-only and each statement sees the lake as it is.
//! - Errors carry SQLSTATEs: 42501 refused, 42601 invalid SQL, 57014 a limit, 53300 too many
//!   statements at once (`[sql] max_concurrent`), XX000 internal.
//!
//! - `pg_catalog` and the PostgreSQL SQL of clients' catalog queries (psql's `\dt` and `\d`,
//!   drivers' table and column listings) come with the session: `auditlake_query::postgres`.

use std::fmt::Debug;
use std::sync::Arc;

use arrow_pg::datatypes::{arrow_schema_to_pg_fields, encode_recordbatch};
use async_trait::async_trait;
use auditlake_query::{Identity, QueryError, QueryResult};
use datafusion::arrow::datatypes::SchemaRef;
use futures::{Sink, SinkExt, stream};
use pgwire::api::auth::{
    DefaultServerParameterProvider, LoginInfo, StartupHandler, finish_authentication,
    protocol_negotiation, save_startup_parameters_to_metadata,
};
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{FieldInfo, QueryResponse, Response, Tag};
use pgwire::api::stmt::QueryParser;
use pgwire::api::{
    ClientInfo, PgWireConnectionState, PgWireServerHandlers, PidSecretKeyGenerator,
    RandomPidSecretKeyGenerator, Type,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::startup::Authentication;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

use crate::auth::Denied;
use crate::sql_api::SqlApi;

/// The handlers of one endpoint (shared by its connections).
pub struct PgHandlers {
    startup: Arc<Startup>,
    queries: Arc<Queries>,
}

impl PgHandlers {
    pub fn new(api: Arc<SqlApi>) -> PgHandlers {
        let mut params = DefaultServerParameterProvider::default();
        params.is_superuser = false;
        params.default_transaction_read_only = true;
        // The version whose system tables `pg_catalog` follows (psql picks its catalog queries
        // by it, and warns when the major versions differ).
        params.server_version = auditlake_query::postgres::SERVER_VERSION.to_string();
        PgHandlers {
            startup: Arc::new(Startup {
                api: Arc::clone(&api),
                params,
                keys: RandomPidSecretKeyGenerator::default(),
            }),
            queries: Arc::new(Queries {
                api: Arc::clone(&api),
                parser: Arc::new(Parser { api }),
            }),
        }
    }
}

impl PgWireServerHandlers for PgHandlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        Arc::clone(&self.queries)
    }
    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        Arc::clone(&self.queries)
    }
    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        Arc::clone(&self.startup)
    }
}

/// A TLS acceptor from a PEM certificate chain and private key; errors name the file.
pub fn tls_acceptor(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> anyhow::Result<pgwire::tokio::TlsAcceptor> {
    use pgwire::tokio::tokio_rustls::rustls;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            anyhow::anyhow!(
                "[server] pg_tls_cert {}: not a PEM certificate chain ({e})",
                cert.display()
            )
        })?;
    if chain.is_empty() {
        anyhow::bail!(
            "[server] pg_tls_cert {}: no certificate in the file",
            cert.display()
        );
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        anyhow::anyhow!(
            "[server] pg_tls_key {}: not a PEM private key ({e})",
            key.display()
        )
    })?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(chain, private)
    .map_err(|e| {
        anyhow::anyhow!(
            "[server] pg_tls_cert {} and pg_tls_key {}: {e}",
            cert.display(),
            key.display()
        )
    })?;
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(pgwire::tokio::TlsAcceptor::from(Arc::new(config)))
}

/// Connections open at once; a further one is closed at once (statements are limited apart,
/// by `[sql] max_concurrent`).
const MAX_CONNECTIONS: usize = 64;

/// Serves connections from `listener` until `stop` turns true.
pub async fn run(
    listener: tokio::net::TcpListener,
    tls: Option<pgwire::tokio::TlsAcceptor>,
    handlers: Arc<PgHandlers>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let connections = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    let Ok(permit) = Arc::clone(&connections).try_acquire_owned() else {
                        tracing::warn!(%peer, "PostgreSQL endpoint: {MAX_CONNECTIONS} connections open; refused");
                        continue;
                    };
                    let handlers = Arc::clone(&handlers);
                    let tls = tls.clone();
                    tokio::spawn(async move {
                        let _permit = permit;
                        if let Err(e) = pgwire::tokio::process_socket(socket, tls, handlers).await {
                            tracing::debug!(%peer, error = %e, "PostgreSQL connection ended");
                        }
                    });
                }
                Err(e) => tracing::warn!(error = %e, "PostgreSQL endpoint: accept failed"),
            },
            _ = stop.changed() => return,
        }
    }
}

struct Startup {
    api: Arc<SqlApi>,
    params: DefaultServerParameterProvider,
    keys: RandomPidSecretKeyGenerator,
}

fn user_error(severity: &str, code: &str, message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        severity.to_owned(),
        code.to_owned(),
        message,
    )))
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match message {
            PgWireFrontendMessage::Startup(ref startup) => {
                protocol_negotiation(client, startup).await?;
                save_startup_parameters_to_metadata(client, startup);
                client.set_state(PgWireConnectionState::AuthenticationInProgress);
                client
                    .send(PgWireBackendMessage::Authentication(
                        Authentication::CleartextPassword,
                    ))
                    .await?;
            }
            PgWireFrontendMessage::PasswordMessageFamily(pwd) => {
                let pwd = pwd.into_password()?;
                let user = LoginInfo::from_client_info(client)
                    .user()
                    .unwrap_or_default()
                    .to_string();
                let addr = client.socket_addr().ip();
                match self.api.auth.password(&user, &pwd.password, addr).await {
                    Ok(_) => {
                        let (pid, key) = self.keys.generate(client);
                        client.set_pid_and_secret_key(pid, key);
                        finish_authentication(client, &self.params).await?;
                    }
                    Err(Denied::Unauthorized) => {
                        return Err(user_error(
                            "FATAL",
                            "28P01",
                            format!("password authentication failed for user \"{user}\""),
                        ));
                    }
                    Err(Denied::Throttled(wait)) => {
                        return Err(user_error(
                            "FATAL",
                            "28000",
                            format!(
                                "too many failed sign-ins for this account or address; try again in {} s",
                                wait.as_secs().max(1)
                            ),
                        ));
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

struct Queries {
    api: Arc<SqlApi>,
    parser: Arc<Parser>,
}

/// The connection's account (signed in at startup, so it exists unless the config changed).
fn identity<C: ClientInfo>(api: &SqlApi, client: &C) -> PgWireResult<Identity> {
    let user = client
        .metadata()
        .get(pgwire::api::METADATA_USER)
        .cloned()
        .unwrap_or_default();
    api.auth
        .accounts()
        .get(&user)
        .map(Identity::of)
        .ok_or_else(|| user_error("FATAL", "28000", format!("no account \"{user}\"")))
}

/// Statements a client sends on its own that change nothing here, recognised by DataFusion's
/// parser (one statement, of one of these kinds), so that nothing else is acknowledged unrun.
fn no_op_tag(sql: &str) -> Option<&'static str> {
    use datafusion::sql::parser::{DFParser, Statement as DfStatement};
    use datafusion::sql::sqlparser::ast::Statement;
    let mut statements = DFParser::parse_sql(sql).ok()?;
    if statements.len() != 1 {
        return None;
    }
    let DfStatement::Statement(statement) = statements.pop_front()? else {
        return None;
    };
    match *statement {
        Statement::StartTransaction { .. } => Some("BEGIN"),
        Statement::Commit { .. } => Some("COMMIT"),
        Statement::Rollback { .. } => Some("ROLLBACK"),
        Statement::Set(_) => Some("SET"),
        Statement::Discard { .. } => Some("DISCARD ALL"),
        _ => None,
    }
}

fn query_error(e: &QueryError) -> PgWireError {
    let code = match e {
        QueryError::Refused(_) => "42501",
        QueryError::Invalid(_) => "42601",
        QueryError::Limit(_) => "57014",
        QueryError::Failed(_) => "XX000",
        QueryError::Busy(_) => "53300",
    };
    user_error("ERROR", code, e.to_string())
}

fn encode(result: QueryResult, format: &Format) -> PgWireResult<Response> {
    let fields = Arc::new(arrow_schema_to_pg_fields(&result.schema, format, None)?);
    let mut rows = Vec::new();
    for batch in result.batches {
        rows.extend(encode_recordbatch(Arc::clone(&fields), batch));
    }
    Ok(Response::Query(QueryResponse::new(
        fields,
        stream::iter(rows),
    )))
}

impl Queries {
    async fn run<C: ClientInfo>(
        &self,
        client: &C,
        sql: &str,
        format: &Format,
    ) -> PgWireResult<Response> {
        if let Some(tag) = no_op_tag(sql) {
            return Ok(Response::Execution(Tag::new(tag)));
        }
        let who = identity(&self.api, client)?;
        let result = crate::sql_api::run(&self.api, &who, sql, auditlake_query::QueryPath::Pg)
            .await
            .map_err(|e| query_error(&e))?;
        encode(result, format)
    }
}

#[async_trait]
impl SimpleQueryHandler for Queries {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if query.trim().trim_matches(';').trim().is_empty() {
            return Ok(vec![Response::EmptyQuery]);
        }
        Ok(vec![self.run(client, query, &Format::UnifiedText).await?])
    }
}

/// A statement of the extended protocol: its text and, unless it is a no-op, the columns its
/// plan answers with.
#[derive(Debug, Clone)]
pub struct Statement {
    sql: String,
    schema: Option<SchemaRef>,
}

struct Parser {
    api: Arc<SqlApi>,
}

#[async_trait]
impl QueryParser for Parser {
    type Statement = Statement;

    async fn parse_sql<C>(
        &self,
        client: &C,
        sql: &str,
        _types: &[Option<Type>],
    ) -> PgWireResult<Option<Statement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        if no_op_tag(sql).is_some() {
            return Ok(Some(Statement {
                sql: sql.to_string(),
                schema: None,
            }));
        }
        let who = identity(&self.api, client)?;
        let schema = crate::sql_api::describe(&self.api, &who, sql)
            .await
            .map_err(|e| query_error(&e))?;
        Ok(Some(Statement {
            sql: sql.to_string(),
            schema: Some(schema),
        }))
    }

    fn get_parameter_types(&self, _stmt: &Statement) -> PgWireResult<Vec<Type>> {
        Ok(Vec::new())
    }

    fn get_result_schema(
        &self,
        stmt: &Statement,
        column_format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        match &stmt.schema {
            None => Ok(Vec::new()),
            Some(schema) => arrow_schema_to_pg_fields(
                schema,
                column_format.unwrap_or(&Format::UnifiedText),
                None,
            ),
        }
    }
}

#[async_trait]
impl ExtendedQueryHandler for Queries {
    type Statement = Statement;
    type QueryParser = Parser;

    fn query_parser(&self) -> Arc<Parser> {
        Arc::clone(&self.parser)
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Statement>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo
            + pgwire::api::ClientPortalStore
            + Sink<PgWireBackendMessage>
            + Unpin
            + Send
            + Sync,
        C::PortalStore: pgwire::api::store::PortalStore<Statement = Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let sql = portal.statement.statement.sql.clone();
        self.run(client, &sql, &portal.result_column_format).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_certificate_or_key_is_named() {
        let dir = std::env::temp_dir().join(format!("auditlake-pg-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "not a certificate").unwrap();
        let e = tls_acceptor(&junk, &junk).err().unwrap().to_string();
        assert!(e.contains("pg_tls_cert") && e.contains("junk.pem"), "{e}");
        let e = tls_acceptor(&dir.join("missing.pem"), &junk)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("missing.pem"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn client_housekeeping_is_a_no_op() {
        assert_eq!(no_op_tag("SET extra_float_digits = 3"), Some("SET"));
        assert_eq!(no_op_tag("  begin;"), Some("BEGIN"));
        assert_eq!(no_op_tag("SELECT 1"), None);
        assert_eq!(no_op_tag("SETTLE"), None);
        // several statements are never acknowledged unrun: they go to the guard, which refuses
        assert_eq!(no_op_tag("SET x = 1; DROP TABLE events"), None);
    }
}
