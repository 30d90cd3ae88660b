//! The `semel` command line (interface §4): parses arguments, opens the data dir, calls
//! the library, prints human text or `--json`, and maps outcomes to exit codes.

mod answers;
mod bench;
mod client;
mod cpu;
mod demo;
mod keys;
mod load;
mod memory;
mod print;
mod serve;
mod sign;

// The host allocates and frees many small buffers per transaction (keys, values,
// receipts, persistent-map nodes); mimalloc does that at about half glibc's cost here.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use clap::{Parser, Subcommand};
use semel::{
    Batch, Host, HostError, HostOptions, InputError, QueryError, StoreUrl, SubmitError,
    Transaction, VerifyError,
};

/// Exit codes of interface §4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Done: committed, or a duplicate of a committed transaction.
    Done = 0,
    /// The transaction reverted (its receipt was printed).
    Reverted = 1,
    /// Bad input or usage; nothing recorded.
    BadInput = 2,
    /// Transaction id conflict; nothing changed.
    Conflict = 3,
    /// Host or storage failure.
    HostFailure = 4,
    /// The output could not be written (stdout closed or full). A transaction that ran
    /// is recorded all the same: `semel receipt` shows it.
    OutputFailed = 5,
}

/// A failure with the exit code it maps to.
#[derive(Debug)]
pub struct Failure {
    exit: Exit,
    error: anyhow::Error,
}

impl Failure {
    fn new(exit: Exit, error: impl Into<anyhow::Error>) -> Self {
        Self {
            exit,
            error: error.into(),
        }
    }
    fn bad_input(error: impl Into<anyhow::Error>) -> Self {
        Self::new(Exit::BadInput, error)
    }
}

impl From<HostError> for Failure {
    fn from(e: HostError) -> Self {
        let exit = match &e {
            HostError::NoStore(_) => Exit::BadInput,
            _ => Exit::HostFailure,
        };
        Self::new(exit, e)
    }
}

impl From<InputError> for Failure {
    fn from(e: InputError) -> Self {
        Self::bad_input(e)
    }
}

impl From<SubmitError> for Failure {
    fn from(e: SubmitError) -> Self {
        let exit = match &e {
            SubmitError::Rejected(_) => Exit::BadInput,
            SubmitError::Conflict { .. } => Exit::Conflict,
            _ => Exit::HostFailure,
        };
        Self::new(exit, e)
    }
}

impl From<QueryError> for Failure {
    fn from(e: QueryError) -> Self {
        let exit = match &e {
            QueryError::Rejected(_) => Exit::BadInput,
            QueryError::Failed(_) => Exit::Reverted,
            _ => Exit::HostFailure,
        };
        Self::new(exit, e)
    }
}

type CliResult = Result<Exit, Failure>;

#[derive(Parser)]
#[command(
    name = "semel",
    version,
    about = "A WebAssembly smart-contract host with exactly-once transactions"
)]
struct Cli {
    /// Data directory
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        env = "SEMEL_DATA_DIR",
        default_value = "semel-data"
    )]
    data_dir: PathBuf,
    /// The store: `redb:DIR` (what --data-dir DIR means) or a PostgreSQL URL
    /// (`postgres://user@host:port/db`), which several hosts may share
    #[arg(long, global = true, value_name = "URL", env = "SEMEL_STORE")]
    store: Option<StoreUrl>,
    /// Print the text contracts pass to `log` on stderr ($SEMEL_LOG turns it on, unless
    /// it is empty, `0`, `false`, `no` or `off`)
    #[arg(
        long,
        global = true,
        env = "SEMEL_LOG",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::FalseyValueParser::new(),
        hide_env_values = true
    )]
    print_logs: bool,
    /// Machine-readable output on stdout
    #[arg(long, global = true)]
    json: bool,
    /// Talk to the `semel serve` at this URL instead of a store (every command but
    /// serve, demo, bench and prune)
    #[arg(long, global = true, value_name = "URL", env = "SEMEL_SERVER")]
    server: Option<String>,
    /// Where keys live [default: ~/.config/semel/keys]
    #[arg(long, global = true, value_name = "DIR", env = "SEMEL_KEYS_DIR")]
    keys_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
    /// Whether `--data-dir` was given on the command line (not from the environment or
    /// the default): `semel bench` then runs there instead of in a temporary dir.
    #[arg(skip)]
    data_dir_given: bool,
    /// Whether `--server` was given on the command line: `semel bench` then generates
    /// load over HTTP (from `$SEMEL_SERVER` alone it benchmarks a store, as interface §6
    /// leaves bench out of client mode).
    #[arg(skip)]
    server_given: bool,
}

#[derive(clap::Args)]
struct TxOptions {
    /// Transaction id (a UUID); a new one when absent
    #[arg(long, value_name = "UUID")]
    tx_id: Option<String>,
    /// Sender name
    #[arg(long, default_value = semel::DEFAULT_SENDER)]
    sender: String,
    /// Gas limit
    #[arg(long, value_name = "N", default_value_t = semel::limits::GAS_LIMIT_DEFAULT)]
    gas: u64,
    #[command(flatten)]
    signing: SignOptions,
}

/// Signing with a key of the keys dir (interface §7).
#[derive(clap::Args)]
struct SignOptions {
    /// Sign with this key; the sender becomes its account id
    #[arg(long, value_name = "NAME")]
    sign_as: Option<String>,
    /// The host id to sign for [default: the store's, or the server's]
    #[arg(long, value_name = "HEX", requires = "sign_as")]
    host_id: Option<String>,
}

/// What `semel keys` does.
#[derive(Subcommand)]
enum KeysCommand {
    /// Make a new key pair and print its account id
    New {
        /// Key name
        name: String,
    },
    /// List the keys and their account ids
    List,
    /// Print a key's account id and public key
    Show {
        /// Key name
        name: String,
    },
}

/// How a batch runs (interface §5); never changes a result.
#[derive(clap::Args, Clone, Copy)]
struct ExecOptions {
    /// Executor threads [default: the machine's cores]
    #[arg(long, value_name = "W", value_parser = clap::value_parser!(u16).range(1..=i64::try_from(semel::limits::WORKERS_MAX).unwrap_or(64)))]
    workers: Option<u16>,
    /// optimistic (Block-STM), pessimistic (locks from declared access sets) or sequential
    #[arg(long, value_name = "MODE", default_value = "optimistic")]
    concurrency: semel::Concurrency,
}

impl ExecOptions {
    fn apply(self, options: HostOptions) -> HostOptions {
        HostOptions {
            concurrency: self.concurrency,
            workers: self
                .workers
                .map_or_else(semel::default_workers, usize::from),
            ..options
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Deploy a contract (.wasm or .wat); its init runs inside the deploy transaction
    Deploy {
        /// The module file
        file: PathBuf,
        /// Contract name
        #[arg(long)]
        name: String,
        /// Init arguments, JSON text
        #[arg(long, value_name = "JSON")]
        args: Option<String>,
        /// The account that may migrate the contract and change its admin [default: none,
        /// never upgradable]
        #[arg(long, value_name = "ACCOUNT")]
        admin: Option<String>,
        #[command(flatten)]
        tx: TxOptions,
    },
    /// Give a contract new code (.wasm or .wat) and run the new code's migrate export,
    /// in one transaction; only the contract's admin may
    Migrate {
        /// Contract name
        name: String,
        /// The new module file
        file: PathBuf,
        /// migrate's arguments, JSON text
        #[arg(long, value_name = "JSON")]
        args: Option<String>,
        #[command(flatten)]
        tx: TxOptions,
    },
    /// Make ACCOUNT the contract's admin, or with --none leave it without one (never
    /// upgradable again); only the contract's admin may
    SetAdmin {
        /// Contract name
        name: String,
        /// The new admin's account
        #[arg(required_unless_present = "none", conflicts_with = "none")]
        account: Option<String>,
        /// No admin from now on
        #[arg(long)]
        none: bool,
        #[command(flatten)]
        tx: TxOptions,
    },
    /// Run a one-call transaction
    Call {
        /// Contract name
        contract: String,
        /// Method name
        method: String,
        /// Arguments, JSON text, passed as typed
        args: Option<String>,
        #[command(flatten)]
        tx: TxOptions,
    },
    /// Submit the transaction JSON in FILE (- for stdin): one transaction, or an array
    /// of them (a batch, recorded in order)
    Tx {
        /// The transaction file
        file: String,
        #[command(flatten)]
        exec: ExecOptions,
        #[command(flatten)]
        signing: SignOptions,
    },
    /// Print the transaction (or batch) in FILE signed, without submitting it
    Sign {
        /// The transaction file (- for stdin)
        file: String,
        /// The key to sign with
        #[arg(long, value_name = "NAME")]
        sign_as: String,
        /// The host id to sign for [default: the store's, or the server's]
        #[arg(long, value_name = "HEX")]
        host_id: Option<String>,
    },
    /// Manage the ed25519 keys of the keys dir
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Run a transaction or batch against the latest state, recording nothing: the
    /// receipt each would get and the access set it used
    Simulate {
        /// The transaction file (- for stdin)
        file: String,
    },
    /// Run a method read-only at a version; nothing is recorded
    Query {
        /// Contract name
        contract: String,
        /// Method name
        method: String,
        /// Arguments, JSON text, passed as typed
        args: Option<String>,
        /// Version to read [default: latest]
        #[arg(long, value_name = "N")]
        at_version: Option<u64>,
    },
    /// Print a recorded receipt
    Receipt {
        /// Transaction id
        tx_id: String,
    },
    /// List a contract's keys and values
    State {
        /// Contract name
        contract: String,
        /// Version to read [default: latest]
        #[arg(long, value_name = "N")]
        at_version: Option<u64>,
        /// Only keys starting with this text
        #[arg(long, value_name = "P", default_value = "")]
        prefix: String,
    },
    /// List deployed contracts
    Contracts,
    /// Print the store, its host id, format version, latest version and state root
    Info,
    /// List recorded transactions in version order
    Log {
        /// First version
        #[arg(long, value_name = "N", default_value_t = 1)]
        from: u64,
        /// Most entries
        #[arg(long, value_name = "N", default_value_t = 100)]
        limit: usize,
    },
    /// List the events of committed transactions in version order, from the events
    /// index (every filter optional)
    Events {
        /// Only events this contract emitted
        #[arg(long, value_name = "C")]
        contract: Option<String>,
        /// Only events with this topic
        #[arg(long, value_name = "T")]
        topic: Option<String>,
        /// Only events of versions V and later
        #[arg(long, value_name = "V", default_value_t = 1)]
        from_version: u64,
        /// Most events (at most EVENTS_LIST_MAX)
        #[arg(long, value_name = "N", default_value_t = semel::limits::EVENTS_LIST_DEFAULT)]
        limit: usize,
    },
    /// Re-execute every recorded transaction and check receipts and state roots
    Verify {
        #[command(flatten)]
        exec: ExecOptions,
    },
    /// Drop old state versions (receipts and exactly-once records are always kept)
    Prune {
        /// Keep the N most recent versions readable
        #[arg(
            long,
            value_name = "N",
            conflicts_with = "before",
            required_unless_present = "before"
        )]
        keep_versions: Option<u64>,
        /// Keep versions V and later readable
        #[arg(long, value_name = "V")]
        before: Option<u64>,
    },
    /// Serve the store over HTTP (interface §6) until SIGTERM or SIGINT
    Serve {
        #[command(flatten)]
        serve: serve::ServeArgs,
        #[command(flatten)]
        exec: ExecOptions,
    },
    /// A guided run of the main features in a fresh temporary data dir
    Demo,
    /// Workload benchmark on the example contracts
    Bench(bench::BenchArgs),
}

fn data_dir(cli: &Cli) -> PathBuf {
    cli.data_dir.clone()
}

/// The store the command works on: `--store`, else the data dir.
fn store(cli: &Cli) -> Result<StoreUrl, Failure> {
    match &cli.store {
        Some(_) if cli.data_dir_given => Err(Failure::bad_input(anyhow!(
            "--store and --data-dir both name a store: give one (--data-dir DIR is --store redb:DIR)"
        ))),
        Some(url) => Ok(url.clone()),
        None => Ok(StoreUrl::Redb(data_dir(cli))),
    }
}

/// Opens the store for a command that records, with `options`, saying so on stderr
/// when it made a new one.
fn open_with(cli: &Cli, options: HostOptions) -> Result<Host, Failure> {
    let url = store(cli)?;
    let host = Host::open_store(&url, options)?;
    if host.created_store() {
        match &url {
            StoreUrl::Redb(dir) => eprintln!("semel: created a new data dir at {}", dir.display()),
            other => eprintln!("semel: created a new store at {other}"),
        }
    }
    Ok(host)
}

fn host_options(cli: &Cli) -> HostOptions {
    HostOptions {
        print_contract_logs: cli.print_logs,
        on_lock_wait: Some(|dir, wait| {
            eprintln!(
                "semel: data dir {} is in use by another semel process; waiting up to {} s for it",
                dir.display(),
                wait.as_secs()
            );
        }),
        ..HostOptions::default()
    }
}

/// Opens the data dir for a command that records, creating a store (and saying so on
/// stderr) when it has none.
fn open(cli: &Cli) -> Result<Host, Failure> {
    open_with(cli, host_options(cli))
}

/// Opens the data dir for a command that only reads (or prunes): never creates one.
fn open_existing(cli: &Cli) -> Result<Host, Failure> {
    Ok(Host::open_existing_store(&store(cli)?, host_options(cli))?)
}

/// JSON text given on the command line, checked and passed on as typed.
fn json_args(text: Option<&str>) -> Result<Vec<u8>, Failure> {
    let Some(text) = text else {
        return Ok(Vec::new());
    };
    serde_json::from_str::<serde_json::Value>(text)
        .map_err(|e| Failure::bad_input(anyhow!("arguments are not valid JSON: {e}")))?;
    Ok(text.as_bytes().to_vec())
}

fn with_options(mut tx: Transaction, o: &TxOptions) -> Result<Transaction, Failure> {
    if let Some(id) = &o.tx_id {
        tx.id = semel::parse_id(id)?;
    }
    Ok(tx.with_sender(&o.sender).with_gas_limit(o.gas))
}

/// `semel call`'s transaction, before its options: one call with JSON arguments as typed.
fn call_tx(contract: &str, method: &str, args: Option<&str>) -> Result<Transaction, Failure> {
    Ok(Transaction::call(contract, method, json_args(args)?))
}

/// `semel deploy`'s transaction: the module file (WAT converted), its init arguments and
/// the transaction options.
fn deploy_tx(
    file: &std::path::Path,
    name: &str,
    args: Option<&str>,
    tx: &TxOptions,
) -> Result<Transaction, Failure> {
    let code = std::fs::read(file)
        .with_context(|| format!("cannot read {}", file.display()))
        .map_err(Failure::bad_input)?;
    let code = semel::abi::wasm_bytes(&code).map_err(InputError::from)?;
    with_options(Transaction::deploy(name, code, json_args(args)?), tx)
}

/// The transaction of a command that submits one (`deploy`, `call`, `migrate`,
/// `set-admin`), with its options; `None` for any other command.
fn single_tx(command: &Command) -> Result<Option<(Transaction, &TxOptions)>, Failure> {
    Ok(Some(match command {
        Command::Deploy {
            file,
            name,
            args,
            admin,
            tx,
        } => {
            let mut t = deploy_tx(file, name, args.as_deref(), tx)?;
            if let Some(admin) = admin {
                t = t.with_admin(admin);
            }
            (t, tx)
        }
        Command::Call {
            contract,
            method,
            args,
            tx,
        } => (
            with_options(call_tx(contract, method, args.as_deref())?, tx)?,
            tx,
        ),
        Command::Migrate {
            name,
            file,
            args,
            tx,
        } => {
            let code = std::fs::read(file)
                .with_context(|| format!("cannot read {}", file.display()))
                .map_err(Failure::bad_input)?;
            let code = semel::abi::wasm_bytes(&code).map_err(InputError::from)?;
            let t = Transaction::migrate(name, code, json_args(args.as_deref())?);
            (with_options(t, tx)?, tx)
        }
        Command::SetAdmin {
            name,
            account,
            none: _,
            tx,
        } => (
            with_options(Transaction::set_admin(name, account.as_deref()), tx)?,
            tx,
        ),
        _ => return Ok(None),
    }))
}

fn submit(host: &Host, tx: &Transaction, json: bool) -> CliResult {
    let receipt = host.submit(tx)?;
    print::receipt(&receipt, json);
    Ok(match receipt.status {
        semel::Status::Committed => Exit::Done,
        semel::Status::Reverted => Exit::Reverted,
    })
}

fn run(cli: &Cli) -> CliResult {
    let server = cli.server.as_deref().filter(|u| !u.is_empty());
    if let Command::Sign {
        file,
        sign_as,
        host_id,
    } = &cli.command
    {
        return run_sign(cli, server, file, sign_as, host_id.as_deref());
    }
    if let (Command::Bench(args), Some(url)) = (&cli.command, server)
        && cli.server_given
    {
        return load::run(args, url, cli.json).map_err(bench_failure);
    }
    if let Some(url) = server.filter(|_| !matches!(cli.command, Command::Bench(_))) {
        return remote(cli, &client::Client::new(url));
    }
    if let Some((t, options)) = single_tx(&cli.command)? {
        // Checked before the store is opened or made: bad input records nothing.
        t.check()?;
        let host = open(cli)?;
        let t = sign_local(cli, &host, t, &options.signing)?;
        return submit(&host, &t, cli.json);
    }
    match &cli.command {
        Command::Deploy { .. }
        | Command::Call { .. }
        | Command::Migrate { .. }
        | Command::SetAdmin { .. } => unreachable!("submitted above"),
        Command::Tx {
            file,
            exec,
            signing,
        } => {
            let text = read_tx_file(file)?;
            // Parsed before the store is opened or made: bad input records nothing.
            let batch = match Transaction::batch_from_json(&text) {
                Err(e) if !mentions_code_hash(&text) => return Err(e.into()),
                parsed => parsed.ok(),
            };
            let host = open_with(cli, exec.apply(host_options(cli)))?;
            // A deploy by code hash needs the store to find its code in.
            let batch = match batch {
                Some(batch) => batch,
                None => Transaction::batch_from_json_resolving(&text, &|h| {
                    host.code(h)
                        .map_err(|e| InputError::Json(format!("cannot read stored code: {e}")))
                })?,
            };
            let batch = match &signing.sign_as {
                None => batch,
                Some(name) => {
                    let key = load_key(cli, name)?;
                    let host_id = match &signing.host_id {
                        Some(h) => sign::parse_host_id(h)?,
                        None => host.host_id(),
                    };
                    sign::sign_batch(batch, &key, &host_id)?
                }
            };
            match batch {
                Batch::One(t) => submit(&host, &t, cli.json),
                Batch::Many(txs) => {
                    let ids: Vec<_> = txs.iter().map(|t| t.id).collect();
                    batch_results(&ids, host.submit_all(&txs), cli.json)
                }
            }
        }
        Command::Simulate { file } => {
            let txs = match Transaction::batch_from_json(&read_tx_file(file)?)? {
                Batch::One(t) => vec![t],
                Batch::Many(txs) => txs,
            };
            let results = open_existing(cli)?.simulate(&txs);
            let ids: Vec<_> = txs.iter().map(|t| t.id).collect();
            print::simulated(&ids, results, cli.json)
        }
        Command::Query {
            contract,
            method,
            args,
            at_version,
        } => {
            let args = json_args(args.as_deref())?;
            let out = open_existing(cli)?.query(contract, method, &args, *at_version)?;
            print::query(&out, cli.json);
            Ok(Exit::Done)
        }
        Command::Receipt { tx_id } => {
            let id = semel::parse_id(tx_id)?;
            let receipt = open_existing(cli)?
                .receipt(&id)?
                .ok_or_else(|| Failure::bad_input(anyhow!("no transaction {id} is recorded")))?;
            print::receipt(&receipt, cli.json);
            Ok(Exit::Done)
        }
        Command::State {
            contract,
            at_version,
            prefix,
        } => {
            let entries = open_existing(cli)?.state(contract, *at_version, prefix.as_bytes())?;
            print::state(&entries, cli.json);
            Ok(Exit::Done)
        }
        Command::Contracts => {
            print::contracts(&open_existing(cli)?.contracts()?, cli.json);
            Ok(Exit::Done)
        }
        Command::Info => {
            print::info(&open_existing(cli)?.info()?, cli.json);
            Ok(Exit::Done)
        }
        Command::Log { from, limit } => {
            print::history(&open_existing(cli)?.history(*from, *limit)?, cli.json);
            Ok(Exit::Done)
        }
        Command::Events {
            contract,
            topic,
            from_version,
            limit,
        } => {
            let filter = semel::EventFilter {
                contract: contract.clone(),
                topic: topic.clone(),
                from_version: *from_version,
                limit: *limit,
            };
            print::events(&open_existing(cli)?.events(&filter)?, cli.json);
            Ok(Exit::Done)
        }
        Command::Verify { exec } => {
            match Host::open_existing_store(&store(cli)?, exec.apply(host_options(cli)))?.verify() {
                Ok(report) => {
                    print::verified(&report, cli.json);
                    Ok(Exit::Done)
                }
                Err(VerifyError::Mismatch { version, what }) => Err(Failure::new(
                    Exit::HostFailure,
                    anyhow!("verify failed at version {version}: {what}"),
                )),
                Err(e) => Err(Failure::new(Exit::HostFailure, e)),
            }
        }
        Command::Prune {
            keep_versions,
            before,
        } => {
            let host = open_existing(cli)?;
            let horizon = match (keep_versions, before) {
                (Some(0), _) => {
                    return Err(Failure::bad_input(anyhow!(
                        "--keep-versions must be at least 1"
                    )));
                }
                (Some(n), _) => (host.latest_version() + 1).saturating_sub(*n),
                (None, Some(v)) => *v,
                (None, None) => unreachable!("clap requires one of them"),
            };
            let report = host.prune(horizon)?;
            print::pruned(&report, cli.json);
            Ok(Exit::Done)
        }
        Command::Serve { serve, exec } => {
            let options = bench::switched(exec.apply(host_options(cli)), &serve.off);
            bench::set_process_switches(&serve.off);
            let host = open_with(cli, options)?;
            serve::run(host, serve).map_err(|e| Failure::new(Exit::HostFailure, e))?;
            Ok(Exit::Done)
        }
        Command::Demo if cli.json => Err(Failure::bad_input(anyhow!(
            "the demo is a guided run for people and has no --json form; the other commands \
             (and `semel bench --json`) print JSON"
        ))),
        Command::Demo => demo::run().map_err(|e| Failure::new(Exit::HostFailure, e)),
        Command::Keys { command } => run_keys(cli, command),
        Command::Sign {
            file,
            sign_as,
            host_id,
        } => run_sign(cli, None, file, sign_as, host_id.as_deref()),
        Command::Bench(args)
            if args.signed && (args.workload != bench::Workload::Counter || cli.server_given) =>
        {
            Err(Failure::bad_input(anyhow!(
                "--signed measures counter increments on a store (a signature makes the sender \
                 the key's account); over HTTP, `semel sign` signs a file for the server"
            )))
        }
        Command::Bench(args) if !cli.server_given && cli.store.is_some() => {
            match store(cli)? {
                // Several benches may share one database: each is a host of its own.
                StoreUrl::Postgres(url) if !args.in_memory => {
                    bench::run_on_postgres(args, &url, cli.json).map_err(bench_failure)
                }
                StoreUrl::Postgres(_) => Err(Failure::bad_input(anyhow!(
                    "--in-memory and a PostgreSQL --store name two stores: give one"
                ))),
                StoreUrl::Redb(dir) if dir.join(semel::DB_FILE).exists() => {
                    Err(Failure::bad_input(anyhow!(
                        "{} holds a store: semel bench measures a fresh data dir (name a new or \
                         empty one)",
                        dir.display()
                    )))
                }
                StoreUrl::Redb(dir) => {
                    bench::run(args, Some(&dir), cli.json).map_err(bench_failure)
                }
            }
        }
        Command::Bench(args) if cli.data_dir_given && args.in_memory => {
            eprintln!("semel: bench --in-memory keeps no data dir: --data-dir is not used");
            bench::run(args, None, cli.json).map_err(bench_failure)
        }
        Command::Bench(args)
            if cli.data_dir_given && cli.data_dir.join(semel::DB_FILE).exists() =>
        {
            eprintln!(
                "semel: {} holds a store, so the bench runs in a fresh temporary data dir \
                 instead (name a new or empty --data-dir to keep its data)",
                cli.data_dir.display()
            );
            bench::run(args, None, cli.json).map_err(bench_failure)
        }
        Command::Bench(args) => bench::run(
            args,
            cli.data_dir_given.then_some(cli.data_dir.as_path()),
            cli.json,
        )
        .map_err(bench_failure),
    }
}

/// Prints a batch's results (interface §5) and gives its exit code: a conflict, else a
/// revert, else done. A host failure stops it (exit 4) after printing what was done.
fn batch_results(
    ids: &[semel::Uuid],
    results: Vec<Result<semel::Receipt, SubmitError>>,
    json: bool,
) -> CliResult {
    let (mut conflict, mut reverted, mut failure) = (false, false, None);
    let mut out = Vec::with_capacity(results.len());
    for (id, r) in ids.iter().zip(results) {
        match r {
            Ok(receipt) => {
                reverted |= receipt.status == semel::Status::Reverted;
                if !json {
                    print::receipt(&receipt, false);
                }
                out.push(receipt.to_json());
            }
            Err(e @ SubmitError::Conflict { .. }) => {
                conflict = true;
                if !json {
                    print::outln!("conflict {id}: {e}");
                }
                out.push(
                    serde_json::to_value(answers::ConflictJson::new(*id, &e)).unwrap_or_default(),
                );
            }
            Err(e) => {
                failure.get_or_insert(e);
            }
        }
    }
    if json {
        print::outln!("{}", serde_json::Value::Array(out));
    }
    if let Some(e) = failure {
        return Err(e.into());
    }
    Ok(match (conflict, reverted) {
        (true, _) => Exit::Conflict,
        (false, true) => Exit::Reverted,
        _ => Exit::Done,
    })
}

/// Whether a transaction file may name code by hash (then it is parsed again with the
/// store at hand).
fn mentions_code_hash(text: &[u8]) -> bool {
    text.windows(b"code_hash".len()).any(|w| w == b"code_hash")
}

/// A command in client mode (`--server`): the same output and exit codes as on a store.
/// The key `--sign-as NAME` names, from the keys dir.
fn load_key(cli: &Cli, name: &str) -> Result<ed25519_dalek::SigningKey, Failure> {
    let dir = keys::keys_dir(cli.keys_dir.as_deref()).map_err(Failure::bad_input)?;
    keys::load(&dir, name).map_err(Failure::bad_input)
}

/// `tx` signed when `--sign-as` says so, for the store's host id (or `--host-id`).
fn sign_local(
    cli: &Cli,
    host: &Host,
    tx: Transaction,
    o: &SignOptions,
) -> Result<Transaction, Failure> {
    let Some(name) = &o.sign_as else {
        return Ok(tx);
    };
    let key = load_key(cli, name)?;
    let host_id = match &o.host_id {
        Some(h) => sign::parse_host_id(h)?,
        None => host.host_id(),
    };
    Ok(sign::sign_one(tx, &key, &host_id)?)
}

/// `tx` signed when `--sign-as` says so, for the server's host id (or `--host-id`).
fn sign_remote(
    cli: &Cli,
    server: &client::Client,
    tx: Transaction,
    o: &SignOptions,
) -> Result<Transaction, Failure> {
    let Some(name) = &o.sign_as else {
        return Ok(tx);
    };
    let key = load_key(cli, name)?;
    let host_id = match &o.host_id {
        Some(h) => sign::parse_host_id(h)?,
        None => sign::server_host_id(server)?,
    };
    Ok(sign::sign_one(tx, &key, &host_id)?)
}

/// `semel keys new|list|show`.
fn run_keys(cli: &Cli, command: &KeysCommand) -> CliResult {
    let dir = keys::keys_dir(cli.keys_dir.as_deref()).map_err(Failure::bad_input)?;
    let show = |name: &str, key: &ed25519_dalek::SigningKey| {
        let d = keys::describe(name, key);
        if cli.json {
            println!("{d}");
        } else {
            println!("{}\t{}", name, d["account_id"].as_str().unwrap_or_default());
        }
    };
    match command {
        KeysCommand::New { name } => {
            let key = keys::create(&dir, name).map_err(Failure::bad_input)?;
            let d = keys::describe(name, &key);
            if cli.json {
                println!("{d}");
            } else {
                println!("{}", d["account_id"].as_str().unwrap_or_default());
            }
        }
        KeysCommand::Show { name } => {
            let key = keys::load(&dir, name).map_err(Failure::bad_input)?;
            show(name, &key);
        }
        KeysCommand::List => {
            let names = keys::names(&dir).map_err(Failure::bad_input)?;
            // One bad file does not hide the others: each is listed, or named with
            // what is wrong with it (and the exit code says some were).
            let all: Vec<_> = names.iter().map(|n| (n, keys::load(&dir, n))).collect();
            if cli.json {
                let list: Vec<_> = all
                    .iter()
                    .map(|(n, k)| match k {
                        Ok(k) => keys::describe(n, k),
                        Err(e) => serde_json::json!({ "name": n, "error": format!("{e:#}") }),
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(list));
            } else {
                for (name, key) in &all {
                    match key {
                        Ok(key) => show(name, key),
                        Err(e) => eprintln!("semel: key {name}: {e:#}"),
                    }
                }
            }
            let bad = all.iter().filter(|(_, k)| k.is_err()).count();
            if bad > 0 {
                return Err(Failure::bad_input(anyhow!(
                    "{bad} of {} key files in {} cannot be used (named above)",
                    all.len(),
                    dir.display()
                )));
            }
        }
    }
    Ok(Exit::Done)
}

/// `semel sign FILE --sign-as NAME`: prints the file's transactions signed.
fn run_sign(
    cli: &Cli,
    server: Option<&str>,
    file: &str,
    sign_as: &str,
    host_id: Option<&str>,
) -> CliResult {
    let text = read_tx_file(file)?;
    let key = load_key(cli, sign_as)?;
    let (host_id, batch) = match (host_id, server) {
        (Some(h), _) => (
            sign::parse_host_id(h)?,
            Transaction::batch_from_json(&text)?,
        ),
        (None, Some(url)) => (
            sign::server_host_id(&client::Client::new(url))?,
            Transaction::batch_from_json(&text)?,
        ),
        (None, None) => {
            let host = open_existing(cli)?;
            let batch = Transaction::batch_from_json_resolving(&text, &|h| {
                host.code(h)
                    .map_err(|e| InputError::Json(format!("cannot read stored code: {e}")))
            })?;
            (host.host_id(), batch)
        }
    };
    let signed = sign::sign_batch(batch, &key, &host_id)?;
    println!("{}", sign::signed_json(&text, &signed)?);
    Ok(Exit::Done)
}

fn remote(cli: &Cli, server: &client::Client) -> CliResult {
    let json = cli.json;
    if let Some((t, options)) = single_tx(&cli.command)? {
        t.check()?;
        let t = sign_remote(cli, server, t, &options.signing)?;
        let body = client::tx_json(&t).map_err(Failure::bad_input)?;
        return remote_receipt(&server.post("/v1/tx", &body)?, json);
    }
    match &cli.command {
        Command::Deploy { .. }
        | Command::Call { .. }
        | Command::Migrate { .. }
        | Command::SetAdmin { .. } => unreachable!("submitted above"),
        Command::Tx { file, signing, .. } => {
            let mut text = read_tx_file(file)?;
            if let Some(name) = &signing.sign_as {
                let key = load_key(cli, name)?;
                let host_id = match &signing.host_id {
                    Some(h) => sign::parse_host_id(h)?,
                    None => sign::server_host_id(server)?,
                };
                let signed =
                    sign::sign_batch(Transaction::batch_from_json(&text)?, &key, &host_id)?;
                text = sign::signed_json(&text, &signed)?.to_string().into_bytes();
            }
            let answer = server.post("/v1/tx", &text)?;
            if answer.is_array() {
                let (ids, results) = remote_batch(&answer, client::batch_item)?;
                batch_results(&ids, results, json)
            } else {
                remote_receipt(&answer, json)
            }
        }
        Command::Simulate { file } => {
            let answer = server.post("/v1/simulate", &read_tx_file(file)?)?;
            let (ids, results) = remote_batch(&answer, client::simulated)?;
            print::simulated(&ids, results, json)
        }
        Command::Query {
            contract,
            method,
            args,
            at_version,
        } => {
            let args = json_args(args.as_deref())?;
            let body = serde_json::json!({
                "contract": contract, "method": method, "args_hex": hex::encode(args),
                "at_version": at_version,
            });
            let answer = server.post("/v1/query", body.to_string().as_bytes())?;
            print::query(&client::query(&answer)?, json);
            Ok(Exit::Done)
        }
        Command::Receipt { tx_id } => {
            let id = semel::parse_id(tx_id)?;
            let receipt = client::receipt(&server.get(&format!("/v1/tx/{id}"), &[])?)?;
            print::receipt(&receipt, json);
            Ok(Exit::Done)
        }
        Command::State {
            contract,
            at_version,
            prefix,
        } => {
            let mut query = vec![("prefix_hex", hex::encode(prefix.as_bytes()))];
            if let Some(v) = at_version {
                query.push(("at_version", v.to_string()));
            }
            let answer = server.get(&format!("/v1/contracts/{contract}/state"), &query)?;
            print::state(&client::state(&answer)?, json);
            Ok(Exit::Done)
        }
        Command::Contracts => {
            print::contracts(
                &client::contracts(&server.get("/v1/contracts", &[])?)?,
                json,
            );
            Ok(Exit::Done)
        }
        Command::Log { from, limit } => {
            let query = [("from", from.to_string()), ("limit", limit.to_string())];
            print::history(&client::history(&server.get("/v1/log", &query)?)?, json);
            Ok(Exit::Done)
        }
        Command::Info => {
            print::info(&client::info(&server.get("/v1/info", &[])?)?, json);
            Ok(Exit::Done)
        }
        Command::Verify { .. } => {
            let report = client::verified(&server.post("/v1/verify", b"{}")?)?;
            print::verified(&report, json);
            Ok(Exit::Done)
        }
        Command::Keys { command } => run_keys(cli, command),
        Command::Sign { .. } => unreachable!("handled before remote"),
        Command::Serve { .. } | Command::Demo | Command::Bench(_) | Command::Prune { .. } => {
            Err(Failure::bad_input(anyhow!(
                "serve, demo, bench and prune work on a store, not through --server (when \
             $SEMEL_SERVER is set, unset it or give --server '')"
            )))
        }
        Command::Events {
            contract,
            topic,
            from_version,
            limit,
        } => {
            let mut query = vec![
                ("from_version", from_version.to_string()),
                ("limit", limit.to_string()),
            ];
            if let Some(c) = contract {
                query.push(("contract", c.clone()));
            }
            if let Some(t) = topic {
                query.push(("topic", t.clone()));
            }
            print::events(&client::events(&server.get("/v1/events", &query)?)?, json);
            Ok(Exit::Done)
        }
    }
}

/// A receipt from a server, printed, with its exit code.
fn remote_receipt(answer: &serde_json::Value, json: bool) -> CliResult {
    let receipt = client::receipt(answer)?;
    print::receipt(&receipt, json);
    Ok(match receipt.status {
        semel::Status::Committed => Exit::Done,
        semel::Status::Reverted => Exit::Reverted,
    })
}

/// Ids and per-element results of a server's array answer.
type RemoteBatch<T> = (Vec<semel::Uuid>, Vec<Result<T, SubmitError>>);

/// A server's array answer: ids and per-element results.
fn remote_batch<T>(
    answer: &serde_json::Value,
    item: impl Fn(&serde_json::Value) -> Result<Result<T, SubmitError>, Failure>,
) -> Result<RemoteBatch<T>, Failure> {
    let items = answer.as_array().ok_or_else(|| {
        Failure::new(
            Exit::HostFailure,
            anyhow!("the server's answer is not an array"),
        )
    })?;
    let mut ids = Vec::with_capacity(items.len());
    let mut results = Vec::with_capacity(items.len());
    for v in items {
        let id = v["tx_id"]
            .as_str()
            .and_then(|s| semel::Uuid::parse_str(s).ok())
            .ok_or_else(|| Failure::new(Exit::HostFailure, anyhow!("an element has no tx_id")))?;
        ids.push(id);
        results.push(item(v)?);
    }
    Ok((ids, results))
}

/// A failed benchmark: bad input when a transaction was refused, else a host failure.
fn bench_failure(e: anyhow::Error) -> Failure {
    let exit = match e.downcast_ref::<SubmitError>() {
        Some(SubmitError::Rejected(_)) => Exit::BadInput,
        _ => Exit::HostFailure,
    };
    Failure::new(exit, e)
}

fn read_tx_file(file: &str) -> Result<Vec<u8>, Failure> {
    let limit = semel::limits::TX_JSON_BYTES_MAX;
    let mut text = Vec::new();
    let read = if file == "-" {
        std::io::stdin()
            .take(u64::try_from(limit).unwrap_or(u64::MAX) + 1)
            .read_to_end(&mut text)
    } else {
        std::fs::File::open(file).and_then(|f| {
            f.take(u64::try_from(limit).unwrap_or(u64::MAX) + 1)
                .read_to_end(&mut text)
        })
    };
    read.with_context(|| format!("cannot read transaction file {file}"))
        .map_err(Failure::bad_input)?;
    if text.len() > limit {
        return Err(Failure::bad_input(anyhow!(
            "transaction file {file} is larger than TX_JSON_BYTES_MAX ({limit} bytes)"
        )));
    }
    Ok(text)
}

fn main() -> ExitCode {
    semel::disable_transparent_huge_pages();
    let matches = <Cli as clap::CommandFactory>::command().get_matches();
    let mut cli = match <Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    cli.data_dir_given =
        matches.value_source("data_dir") == Some(clap::parser::ValueSource::CommandLine);
    cli.server_given =
        matches.value_source("server") == Some(clap::parser::ValueSource::CommandLine);
    let code = match run(&cli) {
        Ok(exit) => exit,
        Err(f) => {
            if cli.json {
                print::outln!(
                    "{}",
                    serde_json::json!({ "error": format!("{:#}", f.error), "exit": f.exit as u8 })
                );
            }
            // Errors may quote contract text (a revert message): no control characters
            // reach the terminal, but the host's own line breaks stay.
            let text = format!("{:#}", f.error);
            let lines: Vec<String> = text.split('\n').map(print::printable).collect();
            eprintln!("semel: {}", lines.join("\n"));
            f.exit
        }
    };
    if let Some(e) = print::output_failure() {
        let records = matches!(
            cli.command,
            Command::Deploy { .. }
                | Command::Call { .. }
                | Command::Tx { .. }
                | Command::Migrate { .. }
                | Command::SetAdmin { .. }
        );
        if records && matches!(code, Exit::Done | Exit::Reverted) {
            eprintln!(
                "semel: the transaction was recorded ({}; `semel receipt` with its id shows \
                 it), but its output could not be written: {e}",
                if code == Exit::Done {
                    "committed"
                } else {
                    "reverted"
                }
            );
        } else {
            eprintln!("semel: the output could not be written: {e}");
        }
        return ExitCode::from(Exit::OutputFailed as u8);
    }
    ExitCode::from(code as u8)
}
