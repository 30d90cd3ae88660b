//! The PostgreSQL backend: the host's tables in a PostgreSQL database (or an engine
//! that speaks its wire protocol), shared by several hosts at once.
//!
//! `schema.rs` makes the tables and keeps the format, `conn.rs` the pool and its
//! prepared statements, `read.rs` the reads, `commit.rs` a commit: one SQL transaction
//! under a row lock, with retries and the resolution of a lost `COMMIT`. Nothing here
//! knows what a transaction is; the seam stays byte-oriented.
//!
//! Other hosts commit to the same store: [`Backend::shared`] says so, and the host then
//! checks the stored head before it runs a batch and runs again what lost a race
//! (`exec/mod.rs`, `host/submit.rs`).

mod commit;
mod conn;
mod read;
mod schema;

use std::sync::{Arc, Mutex};

pub use schema::PG_FORMAT;

use crate::storage::{Backend, Snapshot, StorageError, Table, WriteBatch};

/// The tables of one host in a PostgreSQL database.
pub struct PostgresBackend {
    pool: conn::Pool,
    /// This backend's row in `semel_sessions` (16 random bytes).
    session: [u8; 16],
    /// A transaction holding the commit lock ([`Backend::hold`]), for the next commit.
    held: Mutex<Option<commit::Held>>,
    /// A transaction holding the turn's lock ([`Backend::take_turn`]).
    turn: Mutex<Option<commit::Held>>,
}

impl std::fmt::Debug for PostgresBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresBackend")
            .field("session", &hex::encode(self.session))
            .finish_non_exhaustive()
    }
}

impl PostgresBackend {
    /// Connects to the database at the libpq-style URL `url` (`postgres://user@host:port/db`
    /// or with `?host=/socket/dir`), making the schema when `create` and there is none.
    ///
    /// # Errors
    /// [`StorageError::Unavailable`] when the database cannot be reached;
    /// [`StorageError::Backend`] for a URL that does not parse or a database error;
    /// [`StorageError::Corrupt`] for a schema of another format. `Ok(None)` when there
    /// is no schema and `create` is false.
    pub fn connect(url: &str, create: bool) -> Result<Option<Self>, StorageError> {
        let pool = conn::pool(conn::Manager::new(url)?);
        if create {
            schema::ensure(&pool)?;
        } else {
            match schema::format(&pool)? {
                Some(PG_FORMAT) => {}
                Some(other) => {
                    return Err(StorageError::Corrupt(format!(
                        "the PostgreSQL store has schema format {other}; this semel reads \
                         format {PG_FORMAT}"
                    )));
                }
                None => return Ok(None),
            }
        }
        let mut session = [0u8; 16];
        getrandom::fill(&mut session)
            .map_err(|e| StorageError::Backend(format!("no randomness for a session: {e}")))?;
        let mut c = pool.get().map_err(|e| conn::unavailable(&e))?;
        c.client
            .execute(
                "INSERT INTO semel_sessions (session, token) VALUES ($1, '\\x')",
                &[&&session[..]],
            )
            .map_err(|e| conn::storage_error("opening a session", &e))?;
        drop(c);
        Ok(Some(Self {
            pool,
            session,
            held: Mutex::new(None),
            turn: Mutex::new(None),
        }))
    }
}

impl Drop for PostgresBackend {
    fn drop(&mut self) {
        // A held transaction must not go back to the pool open: snapshots share it.
        self.release();
        self.end_turn();
        // Best effort, and off the caller's thread (a recovery drops the backend under
        // the committer's lock, and the row may be locked by a lost commit): a session
        // row left behind costs one small row.
        let (pool, session) = (self.pool.clone(), self.session);
        let _ = std::thread::Builder::new()
            .name("semel-pg-session-end".into())
            .spawn(move || {
                if let Ok(mut c) = pool.get() {
                    let _ = c.client.execute(
                        "DELETE FROM semel_sessions WHERE session = $1",
                        &[&&session[..]],
                    );
                }
            });
    }
}

impl Backend for PostgresBackend {
    fn snapshot(&self) -> Result<Arc<dyn Snapshot>, StorageError> {
        Ok(Arc::new(read::PgSnapshot {
            pool: self.pool.clone(),
        }))
    }

    fn commit(&self, batch: &WriteBatch) -> Result<(), StorageError> {
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner()).take();
        commit::commit(&self.pool, &self.session, batch, held)
    }

    /// Opens a transaction that locks `key` of `table` (`FOR UPDATE`): every other
    /// host's commit waits for it, and this backend's next commit runs in it.
    fn hold(&self, table: Table, key: &[u8]) -> Result<(), StorageError> {
        let mut slot = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_some() {
            return Ok(());
        }
        let mut c = self.pool.get().map_err(|e| conn::unavailable(&e))?;
        let (client, prepared) = c.parts();
        let locked = client.batch_execute("BEGIN").and_then(|()| {
            let s = conn::Conn::statement(prepared, client, table, conn::Sql::Lock)?;
            client.query_opt(&s, &[&key])
        });
        match locked {
            Ok(_) => {
                *slot = Some(c);
                Ok(())
            }
            Err(e) => {
                let _ = client.batch_execute("ROLLBACK");
                Err(conn::storage_error("taking the commit lock", &e))
            }
        }
    }

    fn release(&self) {
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(mut c) = held {
            let _ = c.client.batch_execute("ROLLBACK");
        }
    }

    fn shared(&self) -> bool {
        true
    }

    /// The turn is the lock of `semel_schema`'s one row (`FOR UPDATE`), held by an
    /// open transaction on a connection of its own: PostgreSQL hands a row lock to its
    /// waiters in the order they came, and a process that dies lets go of it with its
    /// connection. The wait is the transaction's `lock_timeout`.
    fn take_turn(&self, wait: std::time::Duration) -> Result<bool, StorageError> {
        let mut slot = self.turn.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_some() {
            return Ok(true);
        }
        let mut c = self.pool.get().map_err(|e| conn::unavailable(&e))?;
        let millis = wait.as_millis().max(1);
        let taken = c
            .client
            .batch_execute(&format!(
                "BEGIN; SET LOCAL lock_timeout = {millis}; \
                 SELECT format FROM semel_schema FOR UPDATE"
            ))
            .map(|()| true)
            .or_else(|e| match e.code() {
                Some(&postgres::error::SqlState::LOCK_NOT_AVAILABLE) => Ok(false),
                _ => Err(conn::storage_error("taking the turn to commit", &e)),
            });
        match taken {
            Ok(true) => {
                *slot = Some(c);
                Ok(true)
            }
            other => {
                if !c.client.is_closed() {
                    let _ = c.client.batch_execute("ROLLBACK");
                }
                other
            }
        }
    }

    fn end_turn(&self) {
        let turn = self.turn.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(mut c) = turn {
            let _ = c.client.batch_execute("ROLLBACK");
        }
    }
}
