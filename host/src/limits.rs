//! Every limit the host enforces, each a named constant with its unit last.
//!
//! The table in `docs/ABI.md` lists them with what happens past each one; a test in
//! `tests/all/limits.rs` holds each at the limit and one past it.

/// Largest contract module accepted at deploy, in bytes (binary wasm, after WAT conversion).
pub const CODE_BYTES_MAX: usize = 1024 * 1024;
/// Largest linear memory a contract instance may have, in 64 KiB wasm pages.
pub const MEMORY_PAGES_MAX: u64 = 256;
/// Largest table a contract may declare, in elements.
pub const TABLE_ELEMENTS_MAX: u64 = 4096;
/// Size of a wasm page, in bytes.
pub const WASM_PAGE_BYTES: u64 = 65536;
/// Longest contract name, in bytes (names are `[A-Za-z0-9_.-]`, at least one byte).
pub const CONTRACT_NAME_BYTES_MAX: usize = 64;
/// Longest method name, in bytes.
pub const METHOD_NAME_BYTES_MAX: usize = 64;
/// Longest sender name, in bytes.
pub const SENDER_BYTES_MAX: usize = 256;
/// Longest storage key, in bytes.
pub const KEY_BYTES_MAX: usize = 1024;
/// Largest storage value, in bytes.
pub const VALUE_BYTES_MAX: usize = 64 * 1024;
/// Largest call argument (a transaction call's or a nested call's), in bytes.
pub const ARG_BYTES_MAX: usize = 64 * 1024;
/// Largest output a frame may set, and so the largest `call` result, in bytes.
pub const OUTPUT_BYTES_MAX: usize = 64 * 1024;
/// Largest `revert` message, in bytes.
pub const REVERT_MESSAGE_BYTES_MAX: usize = 4 * 1024;
/// Longest event topic, in bytes.
pub const EVENT_TOPIC_BYTES_MAX: usize = 256;
/// Largest event data, in bytes.
pub const EVENT_DATA_BYTES_MAX: usize = 16 * 1024;
/// Most events one transaction may emit (kept ones and discarded ones alike).
pub const EVENTS_PER_TX_MAX: usize = 1024;
/// Most calls in one transaction.
pub const CALLS_PER_TX_MAX: usize = 64;
/// Largest amount of data one `blake3` host call may hash, in bytes.
pub const HASH_INPUT_BYTES_MAX: usize = 1024 * 1024;
/// Largest `log` message kept, in bytes (longer ones are refused like any oversize input).
pub const LOG_MESSAGE_BYTES_MAX: usize = 4 * 1024;
/// Deepest stack of contract frames: the top-level call is depth 1.
pub const CALL_DEPTH_MAX: usize = 16;
/// Wasm stack a whole transaction may use, in bytes, across all its frames.
pub const WASM_STACK_BYTES_MAX: usize = 512 * 1024;
/// Largest transaction file the CLI reads, in bytes.
pub const TX_JSON_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Gas limit of a transaction that names none.
pub const GAS_LIMIT_DEFAULT: u64 = 10_000_000;
/// Largest gas limit a transaction may ask for.
pub const GAS_LIMIT_MAX: u64 = 10_000_000_000;
/// Gas given to a read-only query.
pub const QUERY_GAS_LIMIT: u64 = 100_000_000;
/// Contract instances alive at once across all transactions and queries of a host.
pub const INSTANCES_MAX: u32 = 1000;
/// How long a CLI process waits for another one holding the data dir, in milliseconds.
pub const DATA_DIR_LOCK_WAIT_MS: u64 = 30_000;
/// Bytes of compiled code a host's in-memory module cache keeps by default: the least
/// recently used modules go first once their sizes add up past it (`HostOptions`).
pub const MODULE_CACHE_BYTES_DEFAULT: usize = 256 << 20;
/// Contract instances one transaction may create (one per frame run), so a loop of
/// calls cannot exhaust the host's instance pool.
pub const INSTANCES_PER_TX_MAX: usize = 256;
/// Transactions and queries executing at once per runtime; more wait for a turn. A turn
/// covers `INSTANCES_PER_TURN` instances; one run at a time may go past that, up to
/// `INSTANCES_PER_TX_MAX` (and one more made early that no frame took), holding the
/// runtime's one large turn. So together they never exhaust the pool of `INSTANCES_MAX`
/// (which would otherwise be a host failure that depends on timing), and a batch on many
/// workers is not held to a few runs at once.
pub const CONCURRENT_EXECUTIONS_MAX: usize = 64;
/// Instances a run may hold under an ordinary turn, counting one made early that no
/// frame took: a run that would make more first waits for the large turn.
pub const INSTANCES_PER_TURN: usize = 8;
/// How long a group commit's leader waits, in microseconds, for submitters that are
/// executing and about to stage, so that they share its commit (and fsync). Bounds the
/// latency a slow transaction can add to others' commits.
pub const GROUP_WAIT_MICROS_MAX: u64 = 100;
/// How long a submitter waiting for the writer lock polls it, in microseconds, before
/// it sleeps (see `host/writer_lock.rs`).
pub const WRITER_SPIN_MICROS_MAX: u64 = 50;
/// How long the recycler thread polls for work, in microseconds, before it sleeps (see
/// `vm/prewarm/recycler.rs`): longer than a small transaction, so a lone submitter's hand-overs
/// find it awake.
pub const RECYCLER_SPIN_MICROS_MAX: u64 = 200;
/// Entries (keys and prefixes, read and write, over all contracts) an access set may
/// declare: a pessimistic batch's lock table holds them all at once.
pub const ACCESS_SET_ENTRIES_MAX: usize = 1024;
/// Transactions one parallel batch holds at most: its multi-version map and read sets
/// live until the batch is committed, so this bounds their memory. A longer batch is
/// executed as consecutive batches of at most this many, in order.
pub const BATCH_TRANSACTIONS_MAX: usize = 10_000;
/// Executor threads at most (`--workers`).
pub const WORKERS_MAX: usize = 64;
/// Largest request body `semel serve` reads, in bytes: a transaction file's limit, so
/// whatever `semel tx` takes, `POST /v1/tx` takes too. Past it: 413 `too-large`.
pub const HTTP_BODY_BYTES_MAX: usize = TX_JSON_BYTES_MAX;
/// Longest a request may take on `semel serve`, body and answer included, in
/// milliseconds. Past it: 408; a transaction already queued still runs and is recorded,
/// and a retry of its id gets its receipt.
pub const HTTP_REQUEST_MILLIS_MAX: u64 = 30_000;
/// Longest a client may take to send a request's headers, in milliseconds, so a slow
/// client cannot hold a connection open: past it the connection is closed.
pub const HTTP_HEADER_READ_MILLIS_MAX: u64 = 5_000;
/// Connections `semel serve` holds open at once; one more is answered 503 `busy` and
/// closed.
pub const HTTP_CONNECTIONS_MAX: usize = 1024;
/// `POST /v1/verify` requests `semel serve` runs at once (each re-executes the whole
/// log); one more is answered 503 `busy`.
pub const HTTP_VERIFIES_MAX: usize = 1;
/// Transactions waiting in `semel serve`'s queue for the executor; a request that would
/// take it past this is answered 503 `busy`, recording nothing.
pub const QUEUED_TRANSACTIONS_MAX: usize = 16_384;
/// What a 503 `busy` answer asks a client to wait before retrying, in seconds
/// (`Retry-After`).
pub const BUSY_RETRY_AFTER_SECS: u64 = 1;
/// Most events one listing (`Host::events`, `semel events`, `GET /v1/events`) returns, in
/// events: a larger `limit` is refused. Each may carry up to `EVENT_DATA_BYTES_MAX` of data.
pub const EVENTS_LIST_MAX: usize = 10_000;
/// Events a listing returns when it names no limit, in events.
pub const EVENTS_LIST_DEFAULT: usize = 100;
/// Entries one listing over HTTP may ask for (`GET /v1/log?limit=`), so one request
/// cannot make the server build an unbounded answer.
pub const LIST_ENTRIES_MAX: usize = 10_000;
/// Bytes of store pages redb keeps cached in memory (its default is 1 GiB): past it the
/// least used pages are dropped and read again from the file (the OS page cache), so a
/// long-running host's memory stays flat while its data grows. Up to half of it may be
/// pages written since the last durable commit (a checkpoint of the write-ahead log).
pub const STORE_CACHE_BYTES: usize = 64 << 20;
/// Connections a host keeps to a PostgreSQL store at most (its pool), in connections.
pub const PG_CONNECTIONS_MAX: u32 = 16;
/// How long opening a connection to a PostgreSQL store may take, in milliseconds.
pub const PG_CONNECT_MILLIS_MAX: u64 = 5_000;
/// How long a statement may run on a PostgreSQL store before it is cancelled (a commit
/// waiting for another host's row lock included), in milliseconds.
pub const PG_STATEMENT_MILLIS_MAX: u64 = 30_000;
/// Attempts of one commit to a PostgreSQL store that fail and leave nothing behind (a
/// serialization failure, a deadlock, a lost connection) before it gives up, in attempts.
pub const PG_COMMIT_ATTEMPTS_MAX: u32 = 8;
/// The longest pause between two attempts of a commit, in milliseconds (they double
/// from 5 ms, with jitter).
pub const PG_RETRY_BACKOFF_MILLIS_MAX: u64 = 1_000;
/// How long a host keeps asking a PostgreSQL store whether a commit whose connection
/// broke during `COMMIT` took effect, before it answers "unknown" (503), in milliseconds.
pub const PG_OUTCOME_WAIT_MILLIS_MAX: u64 = 15_000;
/// Rows one page of a range read fetches from a PostgreSQL store, at most, in rows.
pub const PG_RANGE_PAGE_ROWS: i64 = 512;
/// How long a host on a shared store keeps its turn to commit while other hosts wait
/// for theirs (`storage/commit_turns.rs`), in milliseconds: their requests wait about this long
/// per host ahead of them, and each hand-over costs a group's commit and a few round
/// trips, which a longer turn spreads over more groups.
pub const STORE_TURN_MILLIS: u64 = 100;
/// How long a host waits for its turn before it runs without one, in milliseconds: a
/// host cut off from the database may hold it until the database notices.
pub const STORE_TURN_WAIT_MILLIS_MAX: u64 = 250;
/// How long after it last saw another host commit a host keeps taking turns, in
/// milliseconds.
pub const STORE_TURNS_KEPT_MILLIS: u64 = 1_000;
/// Times a host on a shared store runs a transaction again because another host
/// committed first, before it answers with the conflict, in runs.
pub const STORE_RACE_RETRIES_MAX: u32 = 32;
