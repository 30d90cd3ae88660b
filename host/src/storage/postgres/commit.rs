//! A commit to a PostgreSQL store: one SQL transaction per [`WriteBatch`], retried when
//! the database refuses it without applying it, and resolved when the connection breaks
//! during `COMMIT`.
//!
//! The transaction runs at `READ COMMITTED` and takes an explicit row lock: it reads
//! its precondition's key `FOR UPDATE` (the host requires the `Meta` row of the latest
//! version), so commits from several hosts queue on that one row, and a host whose
//! head is no longer the stored one is refused ([`StorageError::Conflict`]) and applies
//! nothing. Versions are therefore one gapless order, decided by the database's lock,
//! never by a sequence. A precondition that a key is absent (a new store's first
//! head) locks the table instead, as there is no row to lock. A put of a `Txs` key is a plain `INSERT` on its primary key: an
//! id recorded by another host is a unique violation, a conflict too.
//!
//! Each backend has a row in `semel_sessions`, and each commit writes a fresh random
//! token into it. When the connection breaks after `COMMIT` was sent, the outcome is
//! unknown; the backend ends the old server process if it lingers
//! (`pg_terminate_backend`), takes the row's lock on a new connection — which waits
//! until the old transaction is over, committed or not — and reads the token: its own
//! token means committed, an older one means nothing was applied and the commit may be
//! tried again. No answer goes out before that is known.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::conn::{Conn, Kind, Pool, Sql, kind, storage_error, unavailable};
use crate::limits::{
    PG_COMMIT_ATTEMPTS_MAX, PG_OUTCOME_WAIT_MILLIS_MAX, PG_RETRY_BACKOFF_MILLIS_MAX,
};
use crate::storage::{Precondition, StorageError, Table, WriteBatch};

/// The first pause between attempts, in milliseconds; each pause doubles.
const BACKOFF_MILLIS_MIN: u64 = 5;

/// Keys and their values, in two arrays (one statement's `unnest` parameters).
type Columns<'a> = (Vec<&'a [u8]>, Vec<&'a [u8]>);

/// A batch's writes, the last of each key only, by table.
#[derive(Default)]
struct Writes<'a> {
    puts: BTreeMap<Table, Columns<'a>>,
    deletes: BTreeMap<Table, Vec<&'a [u8]>>,
}

impl<'a> Writes<'a> {
    fn of(batch: &'a WriteBatch) -> Self {
        // One statement may not touch a row twice: later writes of a key win.
        let mut last: BTreeMap<(Table, &[u8]), Option<&[u8]>> = BTreeMap::new();
        for (table, key, value) in batch.ops() {
            last.insert((*table, &key[..]), value.as_deref());
        }
        let mut w = Writes::default();
        for ((table, key), value) in last {
            match value {
                Some(v) => {
                    let (ks, vs) = w.puts.entry(table).or_default();
                    ks.push(key);
                    vs.push(v);
                }
                None => w.deletes.entry(table).or_default().push(key),
            }
        }
        w
    }
}

/// How one attempt ended, when it did not commit.
enum Failed {
    /// Refused with nothing applied, for good: a precondition, a key recorded first.
    Refused(StorageError),
    /// Nothing applied, and another attempt may commit.
    Again(String),
    /// The connection broke before `COMMIT`: nothing applied, but its server process
    /// may still hold the locks until it notices.
    Lost {
        server: Option<(i32, String)>,
        why: String,
    },
    /// The connection broke after `COMMIT` was sent: it may have committed.
    Unknown {
        server: Option<(i32, String)>,
        why: String,
    },
    /// A fault to report.
    Fault(StorageError),
}

/// Commits `batch` as one SQL transaction, writing a fresh token into the row of
/// `session` — first in the transaction `held` has open (it holds the commit lock, see
/// `PostgresBackend::hold`), if any.
pub(super) fn commit(
    pool: &Pool,
    session: &[u8],
    batch: &WriteBatch,
    mut held: Option<Held>,
) -> Result<(), StorageError> {
    let writes = Writes::of(batch);
    let mut delay = BACKOFF_MILLIS_MIN;
    let mut why = String::new();
    for _ in 0..PG_COMMIT_ATTEMPTS_MAX {
        let token = fresh_token()?;
        let (mut conn, begun) = match held.take() {
            Some(conn) => (conn, true),
            None => (pool.get().map_err(|e| unavailable(&e))?, false),
        };
        let failed = match attempt(
            &mut conn,
            begun,
            session,
            &token,
            batch.precondition(),
            &writes,
        ) {
            Ok(()) => return Ok(()),
            Err(failed) => failed,
        };
        drop(conn);
        match failed {
            Failed::Refused(e) | Failed::Fault(e) => return Err(e),
            Failed::Again(msg) => why = msg,
            Failed::Lost { server, why: lost } => {
                // Its locks go with it, so the next attempt does not wait behind them.
                if let Some(server) = &server
                    && let Ok(mut conn) = pool.get()
                {
                    let _ = end_server(&mut conn, server);
                }
                why = lost;
            }
            Failed::Unknown { server, why: lost } => {
                if resolve(pool, session, &token, server.as_ref(), &lost)? {
                    return Ok(());
                }
                why = lost;
            }
        }
        std::thread::sleep(jittered(delay));
        delay = (delay * 2).min(PG_RETRY_BACKOFF_MILLIS_MAX);
    }
    Err(StorageError::Unavailable(format!(
        "PostgreSQL store: the commit was refused {PG_COMMIT_ATTEMPTS_MAX} times, nothing of it \
         was applied; the last time: {why}"
    )))
}

/// A pooled connection with a transaction open on it.
pub(super) type Held = r2d2::PooledConnection<super::conn::Manager>;

/// One attempt: the transaction, from `BEGIN` (unless `begun`) to `COMMIT`; rolled back
/// when it fails before `COMMIT`, so the connection goes back to the pool clean.
fn attempt(
    conn: &mut Conn,
    begun: bool,
    session: &[u8],
    token: &[u8],
    precondition: Option<&Precondition>,
    writes: &Writes<'_>,
) -> Result<(), Failed> {
    let result = attempt_open(conn, begun, session, token, precondition, writes);
    if result.is_err() && !conn.client.is_closed() {
        let _ = conn.client.batch_execute("ROLLBACK");
    }
    result
}

fn attempt_open(
    conn: &mut Conn,
    begun: bool,
    session: &[u8],
    token: &[u8],
    precondition: Option<&Precondition>,
    writes: &Writes<'_>,
) -> Result<(), Failed> {
    let server = conn.server.clone();
    let (client, prepared) = conn.parts();
    let lost_server = server.clone();
    let before_commit = |e: postgres::Error| match kind(&e) {
        // Before `COMMIT` the server rolls back whatever it did not finish.
        Kind::Retry => Failed::Again(storage_error("committing", &e).to_string()),
        Kind::Lost | Kind::Ambiguous => Failed::Lost {
            server: lost_server.clone(),
            why: storage_error("committing", &e).to_string(),
        },
        Kind::Timeout => Failed::Fault(storage_error("committing", &e)),
        Kind::Duplicate => Failed::Refused(StorageError::Conflict(format!(
            "a key that must be new is recorded already (another host committed it first): {e}"
        ))),
        Kind::Other => Failed::Fault(storage_error("committing", &e)),
    };
    if !begun {
        client.batch_execute("BEGIN").map_err(before_commit)?;
    }
    let tx = client;
    if let Some(p) = precondition {
        if p.value.is_none() {
            let s =
                Conn::statement(prepared, tx, p.table, Sql::LockTable).map_err(before_commit)?;
            tx.execute(&s, &[]).map_err(before_commit)?;
        }
        let s = Conn::statement(prepared, tx, p.table, Sql::Lock).map_err(before_commit)?;
        let row = tx.query_opt(&s, &[&&p.key[..]]).map_err(before_commit)?;
        let found: Option<Vec<u8>> = row.map(|r| r.get(0));
        p.check(found.as_deref()).map_err(Failed::Refused)?;
    }
    for (&table, keys) in &writes.deletes {
        let s = Conn::statement(prepared, tx, table, Sql::Delete).map_err(before_commit)?;
        tx.execute(&s, &[keys]).map_err(before_commit)?;
    }
    for (&table, (keys, values)) in &writes.puts {
        // A transaction id is recorded once: another host's record of it is a conflict.
        let sql = match table {
            Table::Txs => Sql::Insert,
            _ => Sql::Upsert,
        };
        let s = Conn::statement(prepared, tx, table, sql).map_err(before_commit)?;
        tx.execute(&s, &[keys, values]).map_err(before_commit)?;
    }
    let marked = tx
        .execute(
            "UPDATE semel_sessions SET token = $2 WHERE session = $1",
            &[&session, &token],
        )
        .map_err(before_commit)?;
    if marked != 1 {
        // The session's row was removed (by hand): without it no outcome can be resolved.
        tx.execute(
            "INSERT INTO semel_sessions (session, token) VALUES ($1, $2)",
            &[&session, &token],
        )
        .map_err(before_commit)?;
    }
    tx.batch_execute("COMMIT").map_err(|e| match kind(&e) {
        Kind::Lost | Kind::Ambiguous => Failed::Unknown {
            server,
            why: storage_error("committing", &e).to_string(),
        },
        // The server answered: it did not commit.
        _ => before_commit(e),
    })
}

/// Whether the commit that wrote `token` took effect, after its connection broke during
/// `COMMIT`: asked again until [`PG_OUTCOME_WAIT_MILLIS_MAX`] has passed.
///
/// # Errors
/// [`StorageError::Unavailable`] saying the outcome is unknown, when the database
/// cannot be asked in that time.
fn resolve(
    pool: &Pool,
    session: &[u8],
    token: &[u8],
    server: Option<&(i32, String)>,
    lost: &str,
) -> Result<bool, StorageError> {
    let deadline = Instant::now() + Duration::from_millis(PG_OUTCOME_WAIT_MILLIS_MAX);
    let mut delay = BACKOFF_MILLIS_MIN;
    loop {
        match ask(pool, session, server) {
            Ok(stored) => return Ok(stored == token),
            Err(e) if Instant::now() >= deadline => {
                return Err(StorageError::Unavailable(format!(
                    "PostgreSQL store: the connection broke during COMMIT ({lost}) and whether \
                     the commit took effect is unknown: {e}"
                )));
            }
            Err(_) => {}
        }
        std::thread::sleep(jittered(delay));
        delay = (delay * 2).min(PG_RETRY_BACKOFF_MILLIS_MAX);
    }
}

/// Ends the server process `server` (its pid and start time) if it is still there:
/// one whose client is gone may linger, holding its locks, until it notices.
fn end_server(conn: &mut Conn, server: &(i32, String)) -> Result<(), postgres::Error> {
    conn.client
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE pid = $1 AND backend_start::text = $2",
            &[&server.0, &server.1],
        )
        .map(drop)
}

/// The session's token once no transaction of the lost connection can still change it.
fn ask(
    pool: &Pool,
    session: &[u8],
    server: Option<&(i32, String)>,
) -> Result<Vec<u8>, StorageError> {
    let mut conn = pool.get().map_err(|e| unavailable(&e))?;
    let ask = |e: postgres::Error| storage_error("asking whether a commit took effect", &e);
    if let Some(server) = server {
        end_server(&mut conn, server).map_err(ask)?;
    }
    let mut tx = conn.client.transaction().map_err(ask)?;
    let row = tx
        .query_opt(
            "SELECT token FROM semel_sessions WHERE session = $1 FOR UPDATE",
            &[&session],
        )
        .map_err(ask)?;
    tx.commit().map_err(ask)?;
    // No row: the lost commit may be the one inserting it (it was removed by hand), and
    // a lock on no row waits for nothing: ask again rather than guess.
    row.map(|r| r.get(0)).ok_or_else(|| {
        StorageError::Unavailable("the session's row is missing from semel_sessions".into())
    })
}

fn fresh_token() -> Result<[u8; 16], StorageError> {
    let mut token = [0u8; 16];
    getrandom::fill(&mut token)
        .map_err(|e| StorageError::Backend(format!("no randomness for a commit token: {e}")))?;
    Ok(token)
}

/// `millis` with up to half of it added at random, so hosts that collided spread out.
fn jittered(millis: u64) -> Duration {
    let mut b = [0u8; 8];
    let extra = match getrandom::fill(&mut b) {
        Ok(()) => u64::from_le_bytes(b) % (millis / 2 + 1),
        Err(_) => 0,
    };
    Duration::from_millis(millis + extra)
}
