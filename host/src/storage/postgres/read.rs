//! Reads of a PostgreSQL store: each one statement on a pooled connection, at the
//! database's latest commit.
//!
//! Such a snapshot is not one transaction, and needs not be: every table but `Meta` only
//! gains rows for new versions (state rows carry their version in the key, and the host
//! reads at a version), so statements read one after another agree. The head in `Meta`
//! is read by a check that its version did not move meanwhile (`Head::read`). Holding a
//! `REPEATABLE READ` transaction open as long as a host keeps its snapshot would instead
//! pin a connection and hold back vacuum for as long as a host is idle.

use std::collections::HashMap;
use std::ops::Bound;

use postgres::types::ToSql;

use super::conn::{Hi, Kind, Pool, Sql, kind, storage_error, unavailable};
use crate::limits::{PG_CONNECTIONS_MAX, PG_RANGE_PAGE_ROWS};
use crate::storage::{Snapshot, StorageError, Table};

/// The latest state of a PostgreSQL store.
pub(super) struct PgSnapshot {
    pub pool: Pool,
}

impl PgSnapshot {
    /// Runs `sql` of `table` with `params`, on another connection if one was lost:
    /// after a restart of the database every idle connection of the pool is dead, and
    /// each is dropped when it fails, so the last try gets a new one.
    fn rows(
        &self,
        table: Table,
        sql: Sql,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<postgres::Row>, StorageError> {
        let mut last = None;
        for _ in 0..=PG_CONNECTIONS_MAX {
            let mut conn = self.pool.get().map_err(|e| unavailable(&e))?;
            let (client, prepared) = conn.parts();
            let result = super::conn::Conn::statement(prepared, client, table, sql)
                .and_then(|s| client.query(&s, params));
            match result {
                Ok(rows) => return Ok(rows),
                Err(e) if kind(&e) == Kind::Lost => last = Some(e),
                Err(e) => return Err(storage_error("reading", &e)),
            }
        }
        let e = last.expect("every attempt lost its connection");
        Err(storage_error("reading", &e))
    }
}

impl Snapshot for PgSnapshot {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        let rows = self.rows(table, Sql::Get, &[&key])?;
        Ok(rows.first().map(|r| r.get(0)))
    }

    fn get_many(&self, table: Table, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>, StorageError> {
        if keys.len() < 2 {
            return keys.iter().map(|k| self.get(table, k)).collect();
        }
        // One round trip for all of them (a batch's ids, looked up again under the
        // writer lock: one each would hold it for hundreds of round trips).
        let rows = self.rows(table, Sql::GetMany, &[&keys])?;
        let found: HashMap<Vec<u8>, Vec<u8>> = rows
            .into_iter()
            .map(|r| (r.get::<_, Vec<u8>>(0), r.get::<_, Vec<u8>>(1)))
            .collect();
        Ok(keys.iter().map(|k| found.get(*k).cloned()).collect())
    }

    fn range(
        &self,
        table: Table,
        lo: Bound<&[u8]>,
        hi: Bound<&[u8]>,
        reverse: bool,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StorageError> {
        // The smallest key above `k` is `k ‖ 0`: every bound becomes an inclusive start.
        let mut from: Vec<u8> = match lo {
            Bound::Included(k) => k.to_vec(),
            Bound::Excluded(k) => [k, &[0]].concat(),
            Bound::Unbounded => Vec::new(),
        };
        let (mut hi_kind, mut to): (Hi, Vec<u8>) = match hi {
            Bound::Included(k) => (Hi::Included, k.to_vec()),
            Bound::Excluded(k) => (Hi::Excluded, k.to_vec()),
            Bound::Unbounded => (Hi::None, Vec::new()),
        };
        // Pages grow from a few rows: most walks stop at their first entry.
        let mut page: i64 = 8;
        loop {
            let sql = Sql::Range {
                hi: hi_kind,
                reverse,
            };
            let rows = match hi_kind {
                Hi::None => self.rows(table, sql, &[&from, &page])?,
                _ => self.rows(table, sql, &[&from, &to, &page])?,
            };
            let full = i64::try_from(rows.len()).unwrap_or(i64::MAX) == page;
            let mut last: Option<Vec<u8>> = None;
            for row in &rows {
                let (k, v): (&[u8], &[u8]) = (row.get(0), row.get(1));
                if !visit(k, v) {
                    return Ok(());
                }
                last = Some(k.to_vec());
            }
            let Some(last) = last.filter(|_| full) else {
                return Ok(());
            };
            if reverse {
                (hi_kind, to) = (Hi::Excluded, last);
            } else {
                from = [&last[..], &[0]].concat();
            }
            page = (page * 4).min(PG_RANGE_PAGE_ROWS);
        }
    }

    fn newest_in(
        &self,
        table: Table,
        lo: &[u8],
        hi: &[u8],
    ) -> Result<Option<Vec<u8>>, StorageError> {
        let rows = self.rows(table, Sql::Newest, &[&lo, &hi])?;
        Ok(rows.first().map(|r| r.get(0)))
    }
}
