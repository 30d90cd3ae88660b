//! The schema of a PostgreSQL store, made on first use, and its format version.
//!
//! One table per [`Table`], each `(k bytea PRIMARY KEY, v bytea NOT NULL)`: the backend
//! stays byte-oriented, as the seam is. PostgreSQL orders `bytea` byte by byte (then
//! by length), which is the order every backend keeps, so a read of the newest version
//! of a state entry is one backward scan of the primary key's B-tree: `k BETWEEN entry ‖
//! 0 AND entry ‖ version ORDER BY k DESC LIMIT 1` (state keys end in their version,
//! big-endian: `state/keys.rs`). `semel_sessions` holds one row per open backend, whose
//! token each commit rewrites in its own transaction (how a lost `COMMIT` is resolved:
//! `commit.rs`). `semel_schema` holds the format.

use postgres::error::SqlState;

use super::conn::Pool;
use crate::storage::{StorageError, Table};

/// The schema's format: a store of another one is refused, never converted silently.
pub const PG_FORMAT: i32 = 1;

/// Attempts at making the schema: two hosts creating it at once may collide in the
/// catalog (a unique violation on a type name), and the second then finds it made.
const CREATE_ATTEMPTS: u32 = 3;

/// The SQL name of `table`'s table.
pub(super) fn table_name(table: Table) -> String {
    format!("semel_{}", table.name())
}

fn create_sql() -> String {
    let mut sql = String::from(
        "CREATE TABLE IF NOT EXISTS semel_schema (\
             one boolean PRIMARY KEY DEFAULT true CHECK (one), format integer NOT NULL);\n\
         CREATE TABLE IF NOT EXISTS semel_sessions (\
             session bytea PRIMARY KEY, token bytea NOT NULL, \
             opened timestamptz NOT NULL DEFAULT now());\n",
    );
    for table in Table::ALL {
        sql.push_str(&format!(
            "CREATE TABLE IF NOT EXISTS {} (k bytea PRIMARY KEY, v bytea NOT NULL);\n",
            table_name(table)
        ));
    }
    sql.push_str(&format!(
        "INSERT INTO semel_schema (format) VALUES ({PG_FORMAT}) ON CONFLICT DO NOTHING;\n"
    ));
    sql
}

/// The store's format, or `None` when the database holds no Semel schema.
pub(super) fn format(pool: &Pool) -> Result<Option<i32>, StorageError> {
    let mut conn = pool.get().map_err(|e| super::conn::unavailable(&e))?;
    let exists: bool = conn
        .client
        .query_one("SELECT to_regclass('semel_schema') IS NOT NULL", &[])
        .map_err(|e| super::conn::storage_error("reading the schema", &e))?
        .get(0);
    if !exists {
        return Ok(None);
    }
    let row = conn
        .client
        .query_opt("SELECT format FROM semel_schema", &[])
        .map_err(|e| super::conn::storage_error("reading the schema's format", &e))?;
    Ok(row.map(|r| r.get(0)))
}

/// Makes the schema where there is none, and checks the format of one that is there.
///
/// # Errors
/// [`StorageError::Corrupt`] for a store of another format; the database's errors.
pub(super) fn ensure(pool: &Pool) -> Result<(), StorageError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut conn = pool.get().map_err(|e| super::conn::unavailable(&e))?;
        let made = conn.client.transaction().and_then(|mut tx| {
            tx.batch_execute(&create_sql())?;
            tx.commit()
        });
        match made {
            Ok(()) => break,
            Err(e)
                if attempt < CREATE_ATTEMPTS
                    && e.code().is_some_and(|c| {
                        *c == SqlState::UNIQUE_VIOLATION || *c == SqlState::DUPLICATE_TABLE
                    }) => {}
            Err(e) => return Err(super::conn::storage_error("making the schema", &e)),
        }
    }
    match format(pool)? {
        Some(PG_FORMAT) => Ok(()),
        Some(other) => Err(StorageError::Corrupt(format!(
            "the PostgreSQL store has schema format {other}; this semel reads format {PG_FORMAT}"
        ))),
        None => Err(StorageError::Corrupt(
            "the PostgreSQL store's schema was made but holds no format".into(),
        )),
    }
}
