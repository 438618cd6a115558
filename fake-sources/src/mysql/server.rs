//! One connection of the fake MySQL server: the handshake, then commands until the client
//! quits. Faults act at the handshake (after the client's answer, before its credentials are
//! judged) and on every command.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rand::Rng as _;
use tokio::io::AsyncReadExt as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::Shared;
use super::answers::{self, Answer, SERVER_VERSION, Session};
use super::prepared::{self, Statement, Statements};
use super::wire::{self, HandshakeResponse, NATIVE_PASSWORD, Wire, command};
use crate::auth::{Auth, AuthOutcome};
use crate::control::{Arrival, Controls, Fault, FaultId, Malformed, Response, Transport};

/// Dropping the accept loop drops its `JoinSet`, which aborts every connection task.
/// With `tls`, the greeting offers TLS and a client's SSL request upgrades the connection.
pub(super) async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    tls: Option<TlsAcceptor>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let shared = shared.clone();
                    let tls = tls.clone();
                    connections.spawn(async move {
                        if let Err(error) = serve(stream, shared, tls).await {
                            tracing::debug!(%error, "mysql connection ended");
                        }
                    });
                }
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

fn salt() -> [u8; 20] {
    // Printable, and never NUL: clients read the salt up to a NUL.
    let mut rng = rand::rng();
    std::array::from_fn(|_| rng.random_range(0x21u8..0x7F))
}

/// What the faults decided for one request.
enum Verdict {
    /// Carry on (after any latency), answering normally or with a broken answer.
    Proceed(Option<Malformed>),
    /// Answer with this error instead.
    Error(Answer),
    /// Close the connection.
    Close,
}

struct Connection {
    wire: Wire,
    shared: Arc<Shared>,
    session: Session,
    tls: Option<TlsAcceptor>,
    transport: Transport,
    statements: Statements,
}

async fn serve(
    stream: TcpStream,
    shared: Arc<Shared>,
    tls: Option<TlsAcceptor>,
) -> std::io::Result<()> {
    let connection_id = shared.next_connection.fetch_add(1, Ordering::Relaxed);
    let _ = stream.set_nodelay(true);
    let mut conn = Connection {
        wire: Wire::new(Box::new(stream)),
        tls,
        transport: Transport::Plain,
        statements: Statements::default(),
        session: Session {
            connection_id,
            database: None,
            user: String::new(),
            port: shared.port,
        },
        shared,
    };
    if conn.handshake().await? {
        conn.commands().await?;
    }
    Ok(())
}

impl Connection {
    fn controls(&self) -> &Controls {
        &self.shared.controls
    }

    fn record(&self, method: &str, key: Option<String>, body: String, auth: AuthOutcome) -> u64 {
        self.record_with(method, key, body, auth, Vec::new())
    }

    /// Records a request; `params` are an execution's bound values by position (`"1"`, ...).
    fn record_with(
        &self,
        method: &str,
        key: Option<String>,
        body: String,
        auth: AuthOutcome,
        params: Vec<(String, String)>,
    ) -> u64 {
        self.controls().record(Arrival {
            method: method.to_string(),
            path: self.session.database.clone().unwrap_or_default(),
            query: params,
            form: Vec::new(),
            headers: vec![("user".into(), self.session.user.clone())],
            body,
            key,
            auth,
            transport: self.transport,
        })
    }

    /// Applies the faults for a request (`key`: the query, if it is one).
    async fn faults(&mut self, seq: u64, key: Option<&str>) -> Verdict {
        let plan = self.controls().plan(key);
        if !plan.latency.is_zero() {
            tokio::time::sleep(plan.latency).await;
        }
        match plan.action {
            None | Some((_, Fault::Latency(_))) => Verdict::Proceed(None),
            Some((_, Fault::Malformed(kind))) => Verdict::Proceed(Some(kind)),
            Some((_, Fault::DropConnection)) => {
                self.controls().respond(seq, Response::Dropped);
                Verdict::Close
            }
            Some((id, Fault::BlackHole)) => {
                self.controls().respond(seq, Response::BlackHoled);
                if self.hold(id).await {
                    Verdict::Proceed(None)
                } else {
                    Verdict::Close
                }
            }
            Some((
                _,
                Fault::Error {
                    status,
                    body,
                    headers,
                },
            )) => {
                let sqlstate = headers.get("sqlstate").map_or("HY000", String::as_str);
                let message = if body.is_empty() {
                    "error injected by fake-sources"
                } else {
                    body.as_str()
                };
                Verdict::Error(Answer::Error(super::SqlError::new(
                    status, sqlstate, message,
                )))
            }
        }
    }

    /// Holds a black-holed request until its fault is cleared (true) or the client gives up
    /// by closing or sending anything else, such as the `COM_QUIT` of a dropped client (false).
    async fn hold(&mut self, id: FaultId) -> bool {
        let mut probe = [0u8; 1];
        let controls = self.shared.clone();
        tokio::select! {
            () = controls.controls.wait_cleared(id) => true,
            // Data or the end of the stream: either way the client moved on.
            _ = self.wire.stream.read(&mut probe) => false,
        }
    }

    async fn answer(&mut self, seq: u64, answer: &Answer) -> std::io::Result<()> {
        self.controls().respond(
            seq,
            Response::Answered {
                status: answer.status(),
            },
        );
        self.wire.send(&answer.packets()).await
    }

    /// A broken answer; `binary` for an execution of a prepared statement.
    async fn malformed(&mut self, seq: u64, kind: Malformed, binary: bool) -> std::io::Result<()> {
        let packets = match kind {
            // A result set that announces a column and then breaks off mid-definition.
            Malformed::InvalidJson => vec![vec![1], vec![3, b'd', b'e']],
            // A well-formed answer a scaler cannot read as a number.
            Malformed::WrongShape => {
                let answer = answers::from_value(
                    "SELECT value",
                    super::MySqlValue::Text("not a number".into()),
                );
                if binary {
                    prepared::binary_packets(&answer)
                } else {
                    answer.packets()
                }
            }
            // What a statement without a result set answers.
            Malformed::EmptyBody => vec![wire::ok()],
        };
        self.controls()
            .respond(seq, Response::Answered { status: 0 });
        self.wire.send(&packets).await
    }

    /// Greets, reads the client's answer, applies faults and checks credentials. True when
    /// the client is in.
    async fn handshake(&mut self) -> std::io::Result<bool> {
        let salt = salt();
        let greeting = wire::greeting(
            self.session.connection_id,
            SERVER_VERSION,
            &salt,
            self.tls.is_some(),
        );
        self.wire.send(&[greeting]).await?;
        let mut packet = self.wire.read_packet().await?;
        if let Some(acceptor) = self.tls.clone()
            && wire::is_ssl_request(&packet)
        {
            // TLS from here on; the handshake answer follows over it, in the same sequence.
            let placeholder: Box<dyn wire::Io> =
                Box::new(tokio::io::join(tokio::io::empty(), tokio::io::sink()));
            let plain = std::mem::replace(&mut self.wire.stream, placeholder);
            let stream = acceptor.accept(plain).await?;
            let client_certificate = stream.get_ref().1.peer_certificates().is_some();
            self.wire.stream = Box::new(stream);
            self.transport = Transport::Tls { client_certificate };
            packet = self.wire.read_packet().await?;
        }
        let Some(mut response) = HandshakeResponse::parse(&packet) else {
            let error = wire::error(1043, "08S01", "Bad handshake");
            self.wire.send(&[error]).await?;
            return Ok(false);
        };
        self.session.user = response.username.clone();
        self.session.database = response.database.clone();
        let auth = self.controls().auth();
        if matches!(auth, Auth::Basic { .. })
            && response.auth_plugin.as_deref().unwrap_or(NATIVE_PASSWORD) != NATIVE_PASSWORD
        {
            // The client answered for another plugin: ask again for a native-password answer.
            self.wire.send(&[wire::auth_switch(&salt)]).await?;
            response.auth_response = self.wire.read_packet().await?;
        }
        let outcome = judge(&auth, &response, &salt);
        let seq = self.record("CONNECT", None, String::new(), outcome.clone());
        match self.faults(seq, None).await {
            Verdict::Close => return Ok(false),
            Verdict::Error(answer) => {
                self.answer(seq, &answer).await?;
                return Ok(false);
            }
            Verdict::Proceed(Some(kind)) if !outcome.is_rejected() => {
                self.malformed(seq, kind, false).await?;
                return Ok(false);
            }
            Verdict::Proceed(_) => {}
        }
        if outcome.is_rejected() {
            let using = if response.auth_response.is_empty() {
                "NO"
            } else {
                "YES"
            };
            let denied = Answer::Error(super::SqlError::new(
                1045,
                "28000",
                format!(
                    "Access denied for user '{}'@'localhost' (using password: {using})",
                    response.username
                ),
            ));
            self.answer(seq, &denied).await?;
            return Ok(false);
        }
        self.answer(seq, &Answer::Ok).await?;
        Ok(true)
    }

    async fn commands(&mut self) -> std::io::Result<()> {
        loop {
            self.wire.reset_sequence();
            let packet = match self.wire.read_packet().await {
                Ok(packet) => packet,
                // The client went away without COM_QUIT.
                Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(error) => return Err(error),
            };
            let Some((&code, argument)) = packet.split_first() else {
                continue;
            };
            if matches!(
                code,
                command::STMT_PREPARE
                    | command::STMT_EXECUTE
                    | command::STMT_SEND_LONG_DATA
                    | command::STMT_CLOSE
                    | command::STMT_RESET
                    | command::STMT_FETCH
            ) {
                if self.statement_command(code, argument).await? {
                    continue;
                }
                return Ok(());
            }
            let argument = String::from_utf8_lossy(argument).into_owned();
            let (method, key) = match code {
                command::QUIT => ("QUIT", None),
                command::INIT_DB => ("INIT_DB", None),
                command::QUERY => ("QUERY", Some(argument.clone())),
                command::PING => ("PING", None),
                command::RESET_CONNECTION => ("RESET_CONNECTION", None),
                _ => ("UNKNOWN_COMMAND", None),
            };
            if code == command::INIT_DB {
                self.session.database = Some(argument.clone());
            }
            let body = if code == command::QUERY || code == command::INIT_DB {
                argument.clone()
            } else {
                format!("0x{code:02x}")
            };
            let seq = self.record(method, key.clone(), body, AuthOutcome::NotRequired);
            if code == command::QUIT {
                self.controls().respond(seq, Response::Dropped);
                return Ok(());
            }
            let malformed = match self.faults(seq, key.as_deref()).await {
                Verdict::Close => return Ok(()),
                Verdict::Error(answer) => {
                    self.answer(seq, &answer).await?;
                    continue;
                }
                Verdict::Proceed(malformed) => malformed,
            };
            if let Some(kind) = malformed {
                self.malformed(seq, kind, false).await?;
                continue;
            }
            if code == command::RESET_CONNECTION {
                self.statements.clear();
            }
            let answer = match code {
                command::QUERY => self.query(&argument),
                command::INIT_DB | command::PING | command::RESET_CONNECTION => Answer::Ok,
                _ => Answer::Error(super::SqlError::new(1047, "08S01", "Unknown command")),
            };
            self.answer(seq, &answer).await?;
        }
    }

    fn query(&mut self, sql: &str) -> Answer {
        if let Some(value) = self.shared.values.current(sql) {
            return answers::from_value(sql, value);
        }
        answers::builtin(sql, &mut self.session)
            .unwrap_or_else(|| answers::unknown(sql, self.controls().unknown_keys(), &self.session))
    }

    /// One prepared-statement command; false when the connection is to close.
    async fn statement_command(&mut self, code: u8, payload: &[u8]) -> std::io::Result<bool> {
        let id = prepared::statement_id(payload).unwrap_or(0);
        let (method, body, replies) = match code {
            command::STMT_PREPARE => {
                return self.prepare(&String::from_utf8_lossy(payload)).await;
            }
            command::STMT_EXECUTE => return self.execute(id, payload).await,
            command::STMT_SEND_LONG_DATA => {
                let param = payload
                    .get(4..6)
                    .map_or(0, |b| u16::from_le_bytes([b[0], b[1]]));
                if let Some(statement) = self.statements.get_mut(id) {
                    statement.add_long_data(usize::from(param), payload.get(6..).unwrap_or(&[]));
                }
                (
                    "SEND_LONG_DATA",
                    format!("statement {id} parameter {param}"),
                    false,
                )
            }
            command::STMT_CLOSE => {
                self.statements.remove(id);
                ("CLOSE_STMT", format!("statement {id}"), false)
            }
            command::STMT_RESET => ("RESET_STMT", format!("statement {id}"), true),
            _ => ("FETCH_STMT", format!("statement {id}"), true),
        };
        let seq = self.record(method, None, body, AuthOutcome::NotRequired);
        if !replies {
            // Neither closing a statement nor sending it data gets an answer.
            self.controls().respond(seq, Response::Dropped);
            return Ok(true);
        }
        match self.faults(seq, None).await {
            Verdict::Close => return Ok(false),
            Verdict::Error(answer) => {
                self.answer(seq, &answer).await?;
                return Ok(true);
            }
            Verdict::Proceed(_) => {}
        }
        let answer = match (code, self.statements.get_mut(id)) {
            (command::STMT_RESET, Some(statement)) => {
                statement.reset();
                Answer::Ok
            }
            (command::STMT_RESET, None) => {
                Answer::Error(prepared::unknown_statement(id, "mysqld_stmt_reset"))
            }
            (_, Some(_)) => Answer::Error(super::SqlError::new(
                1421,
                "HY000",
                format!("The statement ({id}) has no open cursor"),
            )),
            (_, None) => Answer::Error(prepared::unknown_statement(id, "mysqld_stmt_fetch")),
        };
        self.answer(seq, &answer).await?;
        Ok(true)
    }

    /// `COM_STMT_PREPARE`: the statement id, its parameters and the columns its executions
    /// will answer with. A statement over a table nobody scripted fails here, as it does on a
    /// real server.
    async fn prepare(&mut self, sql: &str) -> std::io::Result<bool> {
        let seq = self.record("PREPARE", None, sql.to_string(), AuthOutcome::NotRequired);
        match self.faults(seq, None).await {
            Verdict::Close => return Ok(false),
            Verdict::Error(answer) => {
                self.answer(seq, &answer).await?;
                return Ok(true);
            }
            Verdict::Proceed(Some(kind)) => {
                self.malformed(seq, kind, false).await?;
                return Ok(true);
            }
            Verdict::Proceed(None) => {}
        }
        let statement = Statement::new(sql);
        let columns = match self.prepared_columns(&statement) {
            Ok(columns) => columns,
            Err(error) => {
                self.answer(seq, &Answer::Error(error)).await?;
                return Ok(true);
            }
        };
        let params = statement.params();
        let id = self.statements.add(statement);
        self.controls()
            .respond(seq, Response::Answered { status: 0 });
        self.wire
            .send(&prepared::prepare_packets(id, params, &columns))
            .await?;
        Ok(true)
    }

    /// The columns an execution of `statement` will answer with: those of the value set for
    /// its text, or for a text it matches with values in place of its `?`; else those of the
    /// built-in or unknown answer, whose error fails the prepare.
    fn prepared_columns(
        &self,
        statement: &Statement,
    ) -> Result<Vec<(String, wire::ColumnType)>, super::SqlError> {
        let sql = statement.sql.as_str();
        let scripted = self.shared.values.current(sql).or_else(|| {
            self.shared
                .values
                .snapshot()
                .into_iter()
                .find(|view| statement.matches(&view.key))
                .and_then(|view| view.current)
        });
        let answer = match scripted {
            // An error set for the text is the execution's answer, not the prepare's.
            Some(super::MySqlValue::Error(_)) => {
                answers::from_value(sql, super::MySqlValue::NoRows)
            }
            Some(value) => answers::from_value(sql, value),
            None => answers::builtin(sql, &mut self.session.clone()).unwrap_or_else(|| {
                answers::unknown(sql, self.controls().unknown_keys(), &self.session)
            }),
        };
        match answer {
            Answer::Rows { columns, .. } => Ok(columns),
            Answer::Ok => Ok(Vec::new()),
            Answer::Error(error) => Err(error),
        }
    }

    /// `COM_STMT_EXECUTE`: binds the values, then answers from the value set for the text
    /// with their literals in place of the `?`, else for the text as prepared, else as a query
    /// of the substituted text would be answered; rows in the binary protocol.
    async fn execute(&mut self, id: u32, payload: &[u8]) -> std::io::Result<bool> {
        let bound = match self.statements.get_mut(id) {
            None => Err(prepared::unknown_statement(id, "mysqld_stmt_execute")),
            Some(statement) => prepared::bind(statement, payload).map(|literals| {
                (
                    statement.sql.clone(),
                    statement.substitute(&literals),
                    literals,
                )
            }),
        };
        let (raw, sql, literals) = match bound {
            Ok(bound) => bound,
            Err(error) => {
                let seq = self.record(
                    "EXECUTE",
                    None,
                    format!("statement {id}"),
                    AuthOutcome::NotRequired,
                );
                self.answer(seq, &Answer::Error(error)).await?;
                return Ok(true);
            }
        };
        let values = &self.shared.values;
        let key = if values.current(&sql).is_none() && values.current(&raw).is_some() {
            raw
        } else {
            sql.clone()
        };
        let params = literals
            .into_iter()
            .enumerate()
            .map(|(i, literal)| ((i + 1).to_string(), literal))
            .collect();
        let seq = self.record_with(
            "EXECUTE",
            Some(key.clone()),
            sql.clone(),
            AuthOutcome::NotRequired,
            params,
        );
        match self.faults(seq, Some(&key)).await {
            Verdict::Close => return Ok(false),
            Verdict::Error(answer) => {
                self.answer(seq, &answer).await?;
                return Ok(true);
            }
            Verdict::Proceed(Some(kind)) => {
                self.malformed(seq, kind, true).await?;
                return Ok(true);
            }
            Verdict::Proceed(None) => {}
        }
        let answer = match self.shared.values.current(&key) {
            Some(value) => answers::from_value(&sql, value),
            None => self.query(&sql),
        };
        self.controls().respond(
            seq,
            Response::Answered {
                status: answer.status(),
            },
        );
        self.wire.send(&prepared::binary_packets(&answer)).await?;
        Ok(true)
    }
}

/// Judges the client's credentials: `Auth::Basic` is a MySQL user and password checked with
/// `mysql_native_password`; other HTTP-only modes admit nobody.
fn judge(auth: &Auth, response: &HandshakeResponse, salt: &[u8; 20]) -> AuthOutcome {
    match auth {
        Auth::None => AuthOutcome::NotRequired,
        Auth::Basic { username, password } => {
            if response.username != *username {
                AuthOutcome::Rejected {
                    reason: format!("unknown user {:?}", response.username),
                }
            } else if response.auth_response
                != wire::native_password_scramble(password.expose(), salt)
            {
                AuthOutcome::Rejected {
                    reason: "wrong password".into(),
                }
            } else {
                AuthOutcome::Accepted
            }
        }
        _ => AuthOutcome::Rejected {
            reason: "the mysql fake checks only basic (user and password) credentials".into(),
        },
    }
}
