//! Connections to a PostgreSQL store: a pool (r2d2) of clients, each preparing its
//! statements once, on first use; and how a driver error is classified.

use std::collections::HashMap;
use std::time::Duration;

use postgres::error::SqlState;
use postgres::{GenericClient, NoTls, Statement};

use super::schema::table_name;
use crate::limits::{PG_CONNECT_MILLIS_MAX, PG_CONNECTIONS_MAX, PG_STATEMENT_MILLIS_MAX};
use crate::storage::{StorageError, Table};

/// The statements of the backend, each prepared per table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Sql {
    /// `$1` key → value.
    Get,
    /// `$1` keys → those of them present, with their values.
    GetMany,
    /// The greatest key in `[$1, $2]` → its value.
    Newest,
    /// Keys from `$1` (inclusive), up to `$2` as `hi` says, `LIMIT` the last parameter.
    Range { hi: Hi, reverse: bool },
    /// `$1` key → value, locking the row until the transaction ends.
    Lock,
    /// Puts of `$1` keys with `$2` values, replacing what is there.
    Upsert,
    /// Puts of `$1` keys with `$2` values that must be new (a key there: unique violation).
    Insert,
    /// Deletes of `$1` keys.
    Delete,
    /// The table locked against writers until the transaction ends: for a precondition
    /// that a key is absent, which no row lock can hold.
    LockTable,
}

/// A range's upper bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Hi {
    None,
    Included,
    Excluded,
}

impl Sql {
    fn text(self, table: Table) -> String {
        let t = table_name(table);
        match self {
            Sql::Get => format!("SELECT v FROM {t} WHERE k = $1"),
            Sql::GetMany => format!("SELECT k, v FROM {t} WHERE k = ANY($1::bytea[])"),
            Sql::Newest => {
                format!("SELECT v FROM {t} WHERE k >= $1 AND k <= $2 ORDER BY k DESC LIMIT 1")
            }
            Sql::Range { hi, reverse } => {
                let order = if reverse { "DESC" } else { "ASC" };
                let (bound, limit) = match hi {
                    Hi::None => ("", "$2"),
                    Hi::Included => (" AND k <= $2", "$3"),
                    Hi::Excluded => (" AND k < $2", "$3"),
                };
                format!(
                    "SELECT k, v FROM {t} WHERE k >= $1{bound} ORDER BY k {order} LIMIT {limit}"
                )
            }
            Sql::Lock => format!("SELECT v FROM {t} WHERE k = $1 FOR UPDATE"),
            Sql::Upsert => format!(
                "INSERT INTO {t} (k, v) SELECT * FROM unnest($1::bytea[], $2::bytea[]) \
                 ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v"
            ),
            Sql::Insert => {
                format!("INSERT INTO {t} (k, v) SELECT * FROM unnest($1::bytea[], $2::bytea[])")
            }
            Sql::Delete => format!("DELETE FROM {t} WHERE k = ANY($1::bytea[])"),
            Sql::LockTable => format!("LOCK TABLE {t} IN SHARE ROW EXCLUSIVE MODE"),
        }
    }
}

/// One connection and the statements prepared on it.
pub(super) struct Conn {
    pub client: postgres::Client,
    prepared: HashMap<(Table, Sql), Statement>,
    /// The server process of this connection and when it started, so that a host
    /// whose commit lost this connection can end that process (see `commit.rs`);
    /// `None` where the engine does not say (CockroachDB has no `backend_start`).
    pub server: Option<(i32, String)>,
}

impl Conn {
    /// The statement `sql` of `table`, prepared through `client` (this connection, or a
    /// transaction on it) the first time.
    pub fn statement(
        prepared: &mut HashMap<(Table, Sql), Statement>,
        client: &mut impl GenericClient,
        table: Table,
        sql: Sql,
    ) -> Result<Statement, postgres::Error> {
        if let Some(s) = prepared.get(&(table, sql)) {
            return Ok(s.clone());
        }
        let s = client.prepare(&sql.text(table))?;
        prepared.insert((table, sql), s.clone());
        Ok(s)
    }

    /// The client and the prepared statements, borrowed apart.
    pub fn parts(&mut self) -> (&mut postgres::Client, &mut HashMap<(Table, Sql), Statement>) {
        (&mut self.client, &mut self.prepared)
    }
}

/// Opens connections for the pool.
pub(super) struct Manager {
    config: postgres::Config,
}

impl Manager {
    /// A manager for the libpq-style URL `url`, with the connect and statement limits.
    pub fn new(url: &str) -> Result<Self, StorageError> {
        let mut config: postgres::Config = url
            .parse()
            .map_err(|e| StorageError::Backend(format!("not a PostgreSQL URL ({e})")))?;
        config
            .connect_timeout(Duration::from_millis(PG_CONNECT_MILLIS_MAX))
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(10))
            .application_name("semel")
            // A held commit lock that is never used is ended by the server too.
            .options(&format!(
                "-c statement_timeout={PG_STATEMENT_MILLIS_MAX} \
                 -c idle_in_transaction_session_timeout={PG_STATEMENT_MILLIS_MAX}"
            ));
        Ok(Self { config })
    }
}

impl r2d2::ManageConnection for Manager {
    type Connection = Conn;
    type Error = postgres::Error;

    fn connect(&self) -> Result<Conn, postgres::Error> {
        let mut client = self.config.connect(NoTls)?;
        let server = client
            .query_one(
                "SELECT pid, backend_start::text FROM pg_stat_activity WHERE pid = pg_backend_pid()",
                &[],
            )
            .ok()
            .map(|row| (row.get(0), row.get(1)));
        Ok(Conn {
            server,
            client,
            prepared: HashMap::new(),
        })
    }

    fn is_valid(&self, conn: &mut Conn) -> Result<(), postgres::Error> {
        conn.client.simple_query("").map(drop)
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        conn.client.is_closed()
    }
}

/// The pool of a backend.
pub(super) type Pool = r2d2::Pool<Manager>;

/// A pool of at most [`PG_CONNECTIONS_MAX`] connections, made without connecting (the
/// caller connects first, to report a database that cannot be reached by its error).
pub(super) fn pool(manager: Manager) -> Pool {
    r2d2::Pool::builder()
        .max_size(PG_CONNECTIONS_MAX)
        .min_idle(Some(0))
        // A broken connection is found when used, and the use is retried on another:
        // checking each one out with a round trip would double the cost of a read.
        .test_on_check_out(false)
        .connection_timeout(Duration::from_millis(PG_CONNECT_MILLIS_MAX))
        .build_unchecked(manager)
}

/// What a driver error means for the operation that met it.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// The database refused this attempt and applied nothing, and another may succeed:
    /// a serialization failure or a deadlock.
    Retry,
    /// The connection is gone, or the server is going away: the statement may or may
    /// not have reached it.
    Lost,
    /// A key that must be new was there (another host recorded it first).
    Duplicate,
    /// The statement waited past its timeout (for another host's lock, say) and was
    /// cancelled: nothing of it applied, and waiting again would not help soon.
    Timeout,
    /// CockroachDB's "result is ambiguous" (40003): as a lost connection at `COMMIT`.
    Ambiguous,
    /// Anything else: a fault to report.
    Other,
}

/// Classifies `e`.
pub(super) fn kind(e: &postgres::Error) -> Kind {
    match e.code() {
        Some(c)
            if *c == SqlState::T_R_SERIALIZATION_FAILURE
                || *c == SqlState::T_R_DEADLOCK_DETECTED =>
        {
            Kind::Retry
        }
        Some(c) if *c == SqlState::UNIQUE_VIOLATION => Kind::Duplicate,
        Some(c) if *c == SqlState::QUERY_CANCELED || *c == SqlState::LOCK_NOT_AVAILABLE => {
            Kind::Timeout
        }
        Some(c) if *c == SqlState::T_R_STATEMENT_COMPLETION_UNKNOWN => Kind::Ambiguous,
        Some(c)
            if *c == SqlState::ADMIN_SHUTDOWN
                || *c == SqlState::CRASH_SHUTDOWN
                || *c == SqlState::CANNOT_CONNECT_NOW
                || *c == SqlState::CONNECTION_FAILURE =>
        {
            Kind::Lost
        }
        Some(_) => Kind::Other,
        // No SQLSTATE: the driver's own error — the socket, a closed connection.
        None => Kind::Lost,
    }
}

/// `e` as a storage error: [`StorageError::Unavailable`] when the database cannot be
/// reached, else [`StorageError::Backend`] with the server's message.
pub(super) fn storage_error(what: &str, e: &postgres::Error) -> StorageError {
    let detail = match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    };
    match kind(e) {
        Kind::Lost | Kind::Timeout | Kind::Ambiguous => {
            StorageError::Unavailable(format!("PostgreSQL store, {what}: {detail}"))
        }
        _ => StorageError::Backend(format!("PostgreSQL store, {what}: {detail}")),
    }
}

/// A pool that cannot give a connection: the database is down or unreachable.
pub(super) fn unavailable(e: &r2d2::Error) -> StorageError {
    StorageError::Unavailable(format!("PostgreSQL store cannot be reached: {e}"))
}
