//! The endpoints of interface §6: each reads its request, asks the host (reads
//! directly, transactions through the queue) and answers with the JSON the CLI prints
//! with `--json`, or a problem.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use semel::{
    Batch, Check, CheckedTx, Host, InputError, QueryError, Receipt, StateListing, Status,
    SubmitError, Transaction, Uuid,
};
use serde::Deserialize;
use serde_json::Value;

use semel::limits::{HTTP_VERIFIES_MAX, LIST_ENTRIES_MAX};

use super::App;
use super::metrics::Outcome;
use super::openapi::{EventRecordJson, TxAnswerJson, TxRequestJson};
use super::problem::{Kind, Problem};
use super::queue::Refused;
use crate::answers::{BatchItemJson, ConflictJson, SimulatedItemJson, SimulatedJson};
use semel::json::{ContractJson, EntryJson, HistoryJson, QueryJson, ReceiptJson};

type Answer = Result<Response, Problem>;

/// Times every request for the latency histogram, by matched route.
pub async fn timed(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    app.metrics.latency(&route, start.elapsed().as_secs_f64());
    response
}

fn host_failure(e: impl std::fmt::Display) -> Problem {
    let detail = e.to_string();
    // `StorageError::Unavailable`, through the errors that wrap it transparently: a
    // store that cannot be reached is 503 with `Retry-After`, never a wrong answer.
    match detail.starts_with(UNAVAILABLE_PREFIX) {
        true => Problem::new(Kind::Unavailable, detail),
        false => Problem::new(Kind::HostFailure, detail),
    }
}

/// How [`semel::StorageError::Unavailable`] displays.
const UNAVAILABLE_PREFIX: &str = "storage unavailable: ";

fn json_response(value: &impl serde::Serialize) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response(),
        Err(e) => host_failure(format!("cannot encode the answer: {e}")).into_response(),
    }
}

fn submit_problem(e: &SubmitError) -> Problem {
    match e {
        SubmitError::Rejected(InputError::Unauthorized(_)) => {
            Problem::new(Kind::Unauthorized, e.to_string())
        }
        SubmitError::Rejected(_) => Problem::bad_input(e.to_string()),
        SubmitError::Conflict { .. } => Problem::new(Kind::Conflict, e.to_string()),
        _ => host_failure(e),
    }
}

/// Refuses a body that is not declared JSON.
fn require_json(headers: &HeaderMap) -> Result<(), Problem> {
    match headers.get(header::CONTENT_TYPE).map(HeaderValue::to_str) {
        Some(Ok(ct)) if is_json(ct) => {}
        Some(Ok(ct)) => {
            return Err(Problem::bad_input(format!(
                "the body must be application/json, not {ct:?}"
            )));
        }
        Some(Err(_)) => return Err(Problem::bad_input("the Content-Type header is not text")),
        None => {
            return Err(Problem::bad_input(
                "the request needs Content-Type: application/json",
            ));
        }
    }
    Ok(())
}

/// A transaction body as JSON text: refuses other content types, and applies an
/// `Idempotency-Key` header (the id of a single transaction). Borrowed unless the
/// header's id must be written in.
fn tx_text<'a>(headers: &HeaderMap, body: &'a Bytes) -> Result<Cow<'a, [u8]>, Problem> {
    require_json(headers)?;
    let Some(key) = headers.get("idempotency-key") else {
        return Ok(Cow::Borrowed(body));
    };
    let key = key
        .to_str()
        .ok()
        .and_then(|k| Uuid::parse_str(k.trim()).ok())
        .ok_or_else(|| Problem::bad_input("the Idempotency-Key header is not a UUID"))?;
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| Problem::bad_input(format!("malformed transaction: {e}")))?;
    let Value::Object(fields) = &value else {
        return Err(Problem::bad_input(
            "Idempotency-Key names the id of one transaction; a batch gives each its \"id\"",
        ));
    };
    match fields.get("id") {
        Some(Value::String(id)) => match Uuid::parse_str(id) {
            Ok(id) if id == key => Ok(Cow::Borrowed(body)),
            Ok(id) => Err(Problem::bad_input(format!(
                "the Idempotency-Key header ({key}) and the body's \"id\" ({id}) differ"
            ))),
            Err(_) => Err(Problem::bad_input(format!(
                "transaction id {id:?} is not a UUID"
            ))),
        },
        Some(_) => Err(Problem::bad_input(
            "the transaction's \"id\" must be a string",
        )),
        // Inserted as text after the opening brace, so the rest stays byte for byte
        // (argument bytes are the JSON as written).
        None => {
            let open = body
                .iter()
                .position(|b| *b == b'{')
                .expect("a JSON object starts with a brace");
            let mut text = Vec::with_capacity(body.len() + 50);
            text.extend_from_slice(&body[..=open]);
            text.extend_from_slice(format!("\"id\":\"{key}\",").as_bytes());
            text.extend_from_slice(&body[open + 1..]);
            Ok(Cow::Owned(text))
        }
    }
}

fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Reads a transaction or batch, deploys by `code_hash` found in the store.
fn parse(host: &Host, text: &[u8]) -> Result<Batch, Problem> {
    let lookup = |hash: &semel::CodeHash| {
        host.code(hash)
            .map_err(|e| InputError::Json(format!("cannot read stored code: {e}")))
    };
    Transaction::batch_from_json_resolving(text, &lookup)
        .map_err(|e| Problem::bad_input(e.to_string()))
}

/// Runs `f`, which reads the store, on this thread — or, for a store in a database,
/// after telling the runtime this thread blocks: each read is a round trip there, and
/// the database client blocks on a runtime of its own, which an async worker may not.
/// A local store answers in microseconds, so it pays nothing for this.
fn store_call<T>(app: &App, f: impl FnOnce() -> T) -> T {
    match app.remote {
        true => tokio::task::block_in_place(f),
        false => f(),
    }
}

/// [`store_call`] for a read that may wait for this host's staged batches to be
/// durable (a receipt, or anything of the latest version: up to a group commit's
/// fsync), which it then tells the runtime too.
fn read_call<T>(app: &App, f: impl FnOnce() -> T) -> T {
    match app.remote || app.host.has_staged() {
        true => tokio::task::block_in_place(f),
        false => f(),
    }
}

/// Runs `f` on a blocking thread when it may compile code (a deploy), else here.
async fn maybe_blocking<T: Send + 'static>(
    deploys: bool,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Problem> {
    if deploys {
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| host_failure(format!("a check failed: {e}")))
    } else {
        Ok(f())
    }
}

/// Without `--allow-unsigned`, refuses a request with an unsigned transaction (before
/// the host sees any of it).
fn require_signed(app: &App, txs: &[Transaction]) -> Result<(), Problem> {
    if app.allow_unsigned {
        return Ok(());
    }
    match txs.iter().position(|t| t.signature.is_none()) {
        None => Ok(()),
        Some(i) => Err(Problem::new(
            Kind::Unauthorized,
            format!(
                "transaction {} ({}) is unsigned: this server takes signed transactions \
                 only (started without --allow-unsigned)",
                i, txs[i].id
            ),
        )),
    }
}

/// Whether a transaction carries code (compiled when checked: work for a blocking thread).
fn has_deploy(txs: &[Transaction]) -> bool {
    txs.iter().any(|t| t.body.code().is_some())
}

/// Looks `new` up again, after another request's run of some of their ids: those now
/// recorded (or refused) get their answer in the `None` places of `answered`, in order;
/// the rest are returned, to run.
async fn check_again(
    app: &Arc<App>,
    new: Vec<CheckedTx>,
    answered: &mut [Option<Result<Receipt, SubmitError>>],
) -> Result<Vec<CheckedTx>, Problem> {
    let host = Arc::clone(&app.host);
    let txs: Vec<Transaction> = new.iter().map(|c| c.tx().clone()).collect();
    let checked = maybe_blocking(app.remote, move || {
        txs.iter().map(|tx| host.check(tx)).collect::<Vec<_>>()
    })
    .await?;
    let slots = answered.iter_mut().filter(|a| a.is_none());
    let mut still_new = Vec::new();
    for (slot, c) in slots.zip(checked) {
        match c {
            Ok(Check::New(tx)) => still_new.push(tx),
            Ok(Check::Recorded(receipt)) => *slot = Some(Ok(receipt)),
            Err(e) => *slot = Some(Err(e)),
        }
    }
    Ok(still_new)
}

/// `POST /v1/tx`: a transaction or a batch.
#[utoipa::path(post, path = "/v1/tx",
    request_body(content = TxRequestJson, content_type = "application/json",
        description = "A transaction (calls, a deploy, a migrate or a set_admin), or a batch: an array of them"),
    params(("Idempotency-Key" = Option<String>, Header, description = "The transaction's id (a UUID), instead of the body's \"id\"")),
    responses(
        (status = 200, description = "The receipt (committed, reverted or a duplicate), or a batch's array", body = TxAnswerJson),
        (status = 400, description = "Bad input: nothing recorded", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Unauthorized: a signature missing or that does not verify, or a sender not the key's account; nothing recorded", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The id is recorded with other content: nothing changed", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Queue full or shutting down: retry after Retry-After seconds", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "Host or storage failure", body = Problem, content_type = "application/problem+json")))]
pub async fn post_tx(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Answer {
    let text = tx_text(&headers, &body)?;
    let (txs, one) = match store_call(&app, || parse(&app.host, &text)) {
        Ok(Batch::One(tx)) => (vec![tx], true),
        Ok(Batch::Many(txs)) => (txs, false),
        Err(p) => {
            app.metrics.outcome(Outcome::Rejected);
            return Err(p);
        }
    };
    if let Err(p) = require_signed(&app, &txs) {
        app.metrics.outcome(Outcome::Rejected);
        return Err(p);
    }
    if txs.len() > app.queue.max() {
        return Err(Problem::new(
            Kind::TooLarge,
            format!(
                "a batch of {} transactions is more than QUEUED_TRANSACTIONS_MAX ({})",
                txs.len(),
                app.queue.max()
            ),
        ));
    }
    // Checked whole first, and a retry of a recorded id answered here, out of the
    // queue's way; what is new goes to the queue checked.
    let host = Arc::clone(&app.host);
    let ids: Vec<Uuid> = txs.iter().map(|t| t.id).collect();
    let checked = maybe_blocking(has_deploy(&txs) || app.remote, move || {
        txs.iter().map(|tx| host.check(tx)).collect::<Vec<_>>()
    })
    .await?;
    for (i, c) in checked.iter().enumerate() {
        if let Err(e @ SubmitError::Rejected(_)) = c {
            app.metrics.outcome(Outcome::Rejected);
            let mut problem = submit_problem(e);
            if !one {
                problem.detail = format!("transaction {i} of the batch: {e}");
            }
            return Err(problem);
        }
    }
    // Per transaction: answered by the check, or the index of its run in the queue.
    let mut answered: Vec<Option<Result<Receipt, SubmitError>>> = Vec::with_capacity(ids.len());
    let mut new = Vec::new();
    for c in checked {
        match c {
            Ok(Check::New(tx)) => {
                new.push(tx);
                answered.push(None);
            }
            Ok(Check::Recorded(receipt)) => answered.push(Some(Ok(receipt))),
            Err(e) => answered.push(Some(Err(e))),
        }
    }
    let mut ran = if new.is_empty() {
        Vec::new()
    } else {
        let new_ids: Vec<Uuid> = new.iter().map(|t| t.tx().id).collect();
        let held = app.inflight.hold(&new_ids).await;
        if held.waited {
            // Another request's run of some of these ended meanwhile: what it recorded
            // is answered from the store, without a place in the queue.
            new = check_again(&app, new, &mut answered).await?;
        }
        let results = match new.is_empty() {
            true => Ok(Vec::new()),
            false => app.queue.submit(new).await,
        };
        drop(held);
        match results {
            Ok(results) => results,
            Err(Refused::Busy) => {
                return Err(Problem::new(
                    Kind::Busy,
                    format!(
                        "more than QUEUED_TRANSACTIONS_MAX ({}) transactions are waiting",
                        app.queue.max()
                    ),
                ));
            }
            Err(Refused::Stopped) => {
                return Err(Problem::new(Kind::Busy, "the server is shutting down"));
            }
        }
    }
    .into_iter();
    let results: Vec<Result<Receipt, SubmitError>> = answered
        .into_iter()
        .map(|a| a.unwrap_or_else(|| ran.next().expect("one result per queued transaction")))
        .collect();
    for r in &results {
        app.metrics.outcome(outcome_of(r));
    }
    if one {
        return match results.into_iter().next().expect("one result") {
            Ok(receipt) => Ok(json_response(&receipt)),
            Err(e) => Err(submit_problem(&e)),
        };
    }
    let mut out = Vec::with_capacity(results.len());
    for (id, r) in ids.iter().zip(&results) {
        match r {
            Ok(receipt) => out.push(BatchItemJson::Receipt(receipt.json())),
            Err(e @ SubmitError::Conflict { .. }) => {
                out.push(BatchItemJson::Conflict(ConflictJson::new(*id, e)));
            }
            Err(e) => return Err(submit_problem(e)),
        }
    }
    Ok(json_response(&out))
}

fn outcome_of(r: &Result<Receipt, SubmitError>) -> Outcome {
    match r {
        Ok(r) if r.duplicate => Outcome::Duplicate,
        Ok(r) if r.status == Status::Committed => Outcome::Committed,
        Ok(_) => Outcome::Reverted,
        Err(e) => error_outcome(e),
    }
}

fn error_outcome(e: &SubmitError) -> Outcome {
    match e {
        SubmitError::Conflict { .. } => Outcome::Conflict,
        SubmitError::Rejected(_) => Outcome::Rejected,
        _ => Outcome::Failed,
    }
}

/// `GET /v1/tx/{id}`.
#[utoipa::path(get, path = "/v1/tx/{id}",
    params(("id" = String, Path, description = "Transaction id (a UUID)")),
    responses(
        (status = 200, description = "The recorded receipt", body = ReceiptJson),
        (status = 400, description = "Bad input: nothing recorded", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such transaction is recorded", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "Host or storage failure", body = Problem, content_type = "application/problem+json")))]
pub async fn get_tx(State(app): State<Arc<App>>, Path(id): Path<String>) -> Answer {
    let id = semel::parse_id(&id).map_err(|e| Problem::bad_input(e.to_string()))?;
    match read_call(&app, || app.host.receipt(&id)).map_err(host_failure)? {
        Some(receipt) => Ok(json_response(&receipt)),
        None => Err(Problem::new(
            Kind::NotFound,
            format!("no transaction {id} is recorded"),
        )),
    }
}

/// `POST /v1/simulate`: as `semel simulate --json`.
#[utoipa::path(post, path = "/v1/simulate",
    request_body(content = TxRequestJson, content_type = "application/json"),
    responses(
        (status = 200, description = "Per transaction, the receipt it would get and the access set it used", body = Vec<SimulatedItemJson>),
        (status = 400, description = "Bad input: nothing recorded", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Unauthorized: a signature missing or that does not verify, or a sender not the key's account", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "Host or storage failure", body = Problem, content_type = "application/problem+json")))]
pub async fn post_simulate(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Answer {
    let text = tx_text(&headers, &body)?;
    let txs = match store_call(&app, || parse(&app.host, &text))? {
        Batch::One(tx) => vec![tx],
        Batch::Many(txs) => txs,
    };
    require_signed(&app, &txs)?;
    let host = Arc::clone(&app.host);
    let (txs, results) = tokio::task::spawn_blocking(move || {
        let results = host.simulate(&txs);
        (txs, results)
    })
    .await
    .map_err(|e| host_failure(format!("the simulation failed: {e}")))?;
    let mut out = Vec::with_capacity(results.len());
    for (tx, r) in txs.iter().zip(&results) {
        match r {
            Ok(sim) => out.push(SimulatedItemJson::Simulated(SimulatedJson::new(sim))),
            Err(e @ SubmitError::Conflict { .. }) => {
                out.push(SimulatedItemJson::Conflict(ConflictJson::new(tx.id, e)));
            }
            Err(e) => return Err(submit_problem(e)),
        }
    }
    Ok(json_response(&out))
}

/// The body of `POST /v1/query`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryRequest {
    /// Contract name.
    contract: String,
    /// Method name.
    method: String,
    /// Arguments as JSON (passed as their compact text), or
    #[schema(value_type = Option<Object>)]
    args: Option<Box<serde_json::value::RawValue>>,
    /// the argument bytes as hex.
    args_hex: Option<String>,
    /// The version to read (default: latest).
    at_version: Option<u64>,
}

/// `POST /v1/query`: 200 with the output, 422 `reverted` when the contract fails.
#[utoipa::path(post, path = "/v1/query",
    request_body(content = QueryRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The method's output", body = QueryJson),
        (status = 400, description = "Bad input: nothing recorded", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The query reverted", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "Host or storage failure", body = Problem, content_type = "application/problem+json")))]
pub async fn post_query(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Answer {
    require_json(&headers)?;
    let q: QueryRequest = serde_json::from_slice(&body)
        .map_err(|e| Problem::bad_input(format!("malformed query: {e}")))?;
    let args = match (q.args, q.args_hex) {
        (Some(_), Some(_)) => {
            return Err(Problem::bad_input(
                "a query has \"args\" or \"args_hex\", not both",
            ));
        }
        (Some(v), None) => semel::compact_json(v.get()).into_bytes(),
        (None, Some(h)) => {
            hex::decode(&h).map_err(|_| Problem::bad_input("\"args_hex\" is not hex"))?
        }
        (None, None) => Vec::new(),
    };
    let host = Arc::clone(&app.host);
    let out = tokio::task::spawn_blocking(move || {
        host.query(&q.contract, &q.method, &args, q.at_version)
    })
    .await
    .map_err(|e| host_failure(format!("the query failed: {e}")))?;
    match out {
        Ok(out) => Ok(json_response(&out)),
        Err(e @ QueryError::Rejected(_)) => Err(Problem::bad_input(e.to_string())),
        Err(e @ QueryError::Failed(_)) => Err(Problem::new(Kind::Reverted, e.to_string())),
        Err(e) => Err(host_failure(e)),
    }
}

/// `GET /v1/contracts`.
#[utoipa::path(get, path = "/v1/contracts",
    responses((status = 200, description = "Deployed contracts", body = Vec<ContractJson>), (status = 500, description = "Host or storage failure", body = Problem, content_type = "application/problem+json")))]
pub async fn get_contracts(State(app): State<Arc<App>>) -> Answer {
    let list = read_call(&app, || app.host.contracts()).map_err(host_failure)?;
    Ok(json_response(&list))
}

/// The query string of a state listing.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StateParams {
    /// Only keys that start with these bytes (hex).
    prefix_hex: Option<String>,
    /// The version to read (default: latest).
    at_version: Option<u64>,
}

fn query_problem(e: &QueryRejection) -> Problem {
    Problem::bad_input(format!("bad query string: {}", e.body_text()))
}

/// `GET /v1/contracts/{name}/state`.
#[utoipa::path(get, path = "/v1/contracts/{name}/state",
    params(("name" = String, Path, description = "Contract name"), StateParams),
    responses(
        (status = 200, description = "Keys and values", body = Vec<EntryJson>),
        (status = 400, description = "Bad input: nothing recorded", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such contract at that version", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "Host or storage failure", body = Problem, content_type = "application/problem+json")))]
pub async fn get_state(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    params: Result<Query<StateParams>, QueryRejection>,
) -> Answer {
    let Query(params) = params.map_err(|e| query_problem(&e))?;
    let prefix = match params.prefix_hex {
        Some(h) => hex::decode(&h).map_err(|_| Problem::bad_input("\"prefix_hex\" is not hex"))?,
        None => Vec::new(),
    };
    match read_call(&app, || app.host.state(&name, params.at_version, &prefix)) {
        Ok(entries) => Ok(json_response(&StateListing(&entries))),
        Err(e @ QueryError::Rejected(InputError::UnknownContract { .. })) => {
            Err(Problem::new(Kind::NotFound, e.to_string()))
        }
        Err(e @ QueryError::Rejected(_)) => Err(Problem::bad_input(e.to_string())),
        Err(e) => Err(host_failure(e)),
    }
}

/// The query string of `GET /v1/log`.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LogParams {
    /// First version (default 1).
    from: Option<u64>,
    /// Most entries (default 100, at most 10,000).
    limit: Option<usize>,
}

fn limit(given: Option<usize>) -> Result<usize, Problem> {
    match given.unwrap_or(100) {
        n if n > LIST_ENTRIES_MAX => Err(Problem::bad_input(format!(
            "limit {n} is more than LIST_ENTRIES_MAX ({LIST_ENTRIES_MAX})"
        ))),
        n => Ok(n),
    }
}

/// `GET /v1/log`.
#[utoipa::path(get, path = "/v1/log", params(LogParams),
    responses((status = 200, description = "Recorded transactions in version order", body = Vec<HistoryJson>), (status = 400, description = "Bad input: nothing recorded", body = Problem, content_type = "application/problem+json"), (status = 500, description = "Host or storage failure", body = Problem, content_type = "application/problem+json")))]
pub async fn get_log(
    State(app): State<Arc<App>>,
    params: Result<Query<LogParams>, QueryRejection>,
) -> Answer {
    let Query(params) = params.map_err(|e| query_problem(&e))?;
    let limit = limit(params.limit)?;
    let entries = read_call(&app, || app.host.history(params.from.unwrap_or(1), limit))
        .map_err(host_failure)?;
    Ok(json_response(&entries))
}

/// The answer of `GET /v1/health`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Health {
    /// The latest recorded version.
    version: u64,
    /// The state root at it.
    state_root: String,
    /// The store's host id (32 hex digits).
    host_id: String,
}

/// `GET /v1/health`.
#[utoipa::path(get, path = "/v1/health",
    responses((status = 200, description = "The latest version, its state root and the host id", body = Health), (status = 500, description = "Host or storage failure", body = Problem, content_type = "application/problem+json")))]
pub async fn get_health(State(app): State<Arc<App>>) -> Answer {
    let (version, root) = read_call(&app, || app.host.durable_head()).map_err(host_failure)?;
    Ok(Json(Health {
        version,
        state_root: root.to_string(),
        host_id: app.host.host_id().to_string(),
    })
    .into_response())
}

/// `GET /metrics`.
#[utoipa::path(get, path = "/metrics",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
pub async fn get_metrics(State(app): State<Arc<App>>) -> Response {
    let text = app.metrics.render(app.host.commits(), app.queue.depth());
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}

/// The query string of `GET /v1/events`.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventsParams {
    /// Only events this contract emitted.
    contract: Option<String>,
    /// Only events with this topic.
    topic: Option<String>,
    /// Only events at this version or later.
    from_version: Option<u64>,
    /// Most events (default 100).
    limit: Option<usize>,
}

/// `GET /v1/events`.
#[utoipa::path(get, path = "/v1/events", params(EventsParams),
    responses((status = 200, description = "Events of committed transactions in version order", body = Vec<EventRecordJson>), (status = 400, description = "Bad input: nothing recorded", body = Problem, content_type = "application/problem+json"), (status = 500, description = "Host or storage failure", body = Problem, content_type = "application/problem+json")))]
pub async fn get_events(
    State(app): State<Arc<App>>,
    params: Result<Query<EventsParams>, QueryRejection>,
) -> Answer {
    let Query(p) = params.map_err(|e| query_problem(&e))?;
    let filter = semel::EventFilter {
        contract: p.contract,
        topic: p.topic,
        from_version: p.from_version.unwrap_or(0),
        limit: p.limit.unwrap_or(semel::EventFilter::default().limit),
    };
    match read_call(&app, || app.host.events(&filter)) {
        Ok(events) => Ok(json_response(&events)),
        Err(e @ QueryError::Rejected(_)) => Err(Problem::bad_input(e.to_string())),
        Err(e) => Err(host_failure(e)),
    }
}

/// `GET /v1/info` (beyond §6's list: `semel info` in client mode).
#[utoipa::path(get, path = "/v1/info",
    responses((status = 200, description = "The store, its host id and format, the latest version and state root", body = Object), (status = 500, description = "Host or storage failure", body = Problem, content_type = "application/problem+json")))]
pub async fn get_info(State(app): State<Arc<App>>) -> Answer {
    Ok(json_response(
        &read_call(&app, || app.host.info()).map_err(host_failure)?,
    ))
}

/// Ends a server's verify when dropped.
struct VerifyDone(Arc<App>);

impl Drop for VerifyDone {
    fn drop(&mut self) {
        self.0
            .verifying
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// `POST /v1/verify` (beyond §6's list: `semel verify` in client mode): re-executes the
/// whole log on the server, `HTTP_VERIFIES_MAX` at a time (another meanwhile: 503
/// `busy`); a
/// mismatch is a `host-failure` naming the version.
#[utoipa::path(post, path = "/v1/verify",
    responses((status = 200, description = "Every receipt and state root matched", body = Object), (status = 500, description = "A mismatch (named) or a host failure", body = Problem, content_type = "application/problem+json"), (status = 503, description = "Another verify is running: retry after Retry-After seconds", body = Problem, content_type = "application/problem+json")))]
pub async fn post_verify(State(app): State<Arc<App>>) -> Answer {
    let running = app
        .verifying
        .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    // Marked done by the blocking task itself, even if it panics: a client that goes
    // away does not end the verify it started.
    let done = VerifyDone(Arc::clone(&app));
    if running >= HTTP_VERIFIES_MAX {
        return Err(Problem::new(
            Kind::Busy,
            format!(
                "another verify is running on this server (HTTP_VERIFIES_MAX: \
                 {HTTP_VERIFIES_MAX} at a time)"
            ),
        ));
    }
    let host = Arc::clone(&app.host);
    let report = tokio::task::spawn_blocking(move || {
        let _done = done;
        host.verify()
    })
    .await
    .map_err(|e| host_failure(format!("verify failed: {e}")))?;
    match report {
        Ok(report) => Ok(json_response(&report)),
        Err(semel::VerifyError::Mismatch { version, what }) => Err(host_failure(format!(
            "verify failed at version {version}: {what}"
        ))),
        Err(e) => Err(host_failure(e)),
    }
}
