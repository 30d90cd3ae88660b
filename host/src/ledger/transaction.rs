//! Transactions: what a user submits, how it is read from JSON (interface §3), checked
//! before anything is recorded, and hashed for the exactly-once content comparison.

use std::sync::Arc;

use serde::Deserialize;
use uuid::Uuid;

use crate::codec::{DecodeError, Reader, Writer};
use crate::error::InputError;
use crate::ledger::access::AccessSet;
pub use crate::ledger::names::{check_contract_name, check_method_name};
use crate::ledger::signature::{ACCOUNT_PREFIX, TxSignature, account_id};
use crate::limits::{
    ARG_BYTES_MAX, CALLS_PER_TX_MAX, GAS_LIMIT_DEFAULT, GAS_LIMIT_MAX, SENDER_BYTES_MAX,
};
use crate::types::{CodeHash, HostId};
use ed25519_dalek::SigningKey;

/// Sender used when a transaction names none.
pub const DEFAULT_SENDER: &str = "anonymous";

/// One contract call of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// Contract name.
    pub contract: String,
    /// Method name.
    pub method: String,
    /// Argument bytes.
    pub args: Vec<u8>,
}

/// What a transaction does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxBody {
    /// Calls, run in order, committed together or not at all.
    Calls(Vec<Call>),
    /// A deploy: store code, register a contract under `name`, run its `init`.
    Deploy {
        /// Contract name.
        name: String,
        /// Wasm bytes (WAT already converted).
        code: Vec<u8>,
        /// Argument bytes of `init`.
        init_args: Vec<u8>,
        /// The account that may migrate it (interface §7); `None`: never upgradable.
        admin: Option<String>,
    },
    /// A migrate (interface §7): give contract `name` new code and run that code's
    /// `migrate` export, in one transaction; only its admin may.
    Migrate {
        /// Contract name.
        name: String,
        /// The new code's wasm bytes (WAT already converted).
        code: Vec<u8>,
        /// Argument bytes of `migrate`.
        args: Vec<u8>,
    },
    /// A change of contract `name`'s admin (`None`: no admin, never upgradable again);
    /// only its admin may.
    SetAdmin {
        /// Contract name.
        name: String,
        /// The new admin.
        admin: Option<String>,
    },
}

impl TxBody {
    /// The code a deploy or migrate carries.
    pub fn code(&self) -> Option<&[u8]> {
        match self {
            TxBody::Deploy { code, .. } | TxBody::Migrate { code, .. } => Some(code),
            TxBody::Calls(_) | TxBody::SetAdmin { .. } => None,
        }
    }

    /// The code a deploy or migrate carries, to replace (WAT by wasm).
    pub fn code_mut(&mut self) -> Option<&mut Vec<u8>> {
        match self {
            TxBody::Deploy { code, .. } | TxBody::Migrate { code, .. } => Some(code),
            TxBody::Calls(_) | TxBody::SetAdmin { .. } => None,
        }
    }

    /// Whether it changes an existing registry entry (a migrate or set-admin), which
    /// the batch executors' registry caches do not follow: such a batch runs in order.
    pub(crate) fn changes_registry(&self) -> bool {
        matches!(self, TxBody::Migrate { .. } | TxBody::SetAdmin { .. })
    }
}

/// A transaction, ready to submit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    /// The id that makes it exactly-once.
    pub id: Uuid,
    /// Who sends it.
    pub sender: String,
    /// Most gas it may use.
    pub gas_limit: u64,
    /// What it does.
    pub body: TxBody,
    /// The keys it declares it reads and writes (interface §5); enforced when given.
    /// Shared: each run of it holds the set, and a batch's preparation copies none.
    pub access: Option<Arc<AccessSet>>,
    /// Its signature (interface §7), not part of its content; verified at submission
    /// (boxed: most transactions of a batch in memory are small).
    pub signature: Option<Box<TxSignature>>,
}

impl Transaction {
    /// A call transaction with a new id, the default sender and gas limit.
    pub fn call(contract: &str, method: &str, args: impl Into<Vec<u8>>) -> Self {
        Self {
            id: Uuid::new_v4(),
            sender: DEFAULT_SENDER.to_owned(),
            gas_limit: GAS_LIMIT_DEFAULT,
            body: TxBody::Calls(vec![Call {
                contract: contract.to_owned(),
                method: method.to_owned(),
                args: args.into(),
            }]),
            access: None,
            signature: None,
        }
    }

    /// A deploy transaction with a new id, the default sender and gas limit.
    pub fn deploy(name: &str, code: impl Into<Vec<u8>>, init_args: impl Into<Vec<u8>>) -> Self {
        Self {
            id: Uuid::new_v4(),
            sender: DEFAULT_SENDER.to_owned(),
            gas_limit: GAS_LIMIT_DEFAULT,
            body: TxBody::Deploy {
                name: name.to_owned(),
                code: code.into(),
                init_args: init_args.into(),
                admin: None,
            },
            access: None,
            signature: None,
        }
    }

    /// A migrate of contract `name` to `code` (its `migrate` export gets `args`), with a
    /// new id, the default sender and gas limit.
    pub fn migrate(name: &str, code: impl Into<Vec<u8>>, args: impl Into<Vec<u8>>) -> Self {
        Self {
            body: TxBody::Migrate {
                name: name.to_owned(),
                code: code.into(),
                args: args.into(),
            },
            ..Self::call(name, "migrate", Vec::new())
        }
    }

    /// A change of contract `name`'s admin to `admin` (`None`: no admin), with a new id,
    /// the default sender and gas limit.
    pub fn set_admin(name: &str, admin: Option<&str>) -> Self {
        Self {
            body: TxBody::SetAdmin {
                name: name.to_owned(),
                admin: admin.map(str::to_owned),
            },
            ..Self::call(name, "set_admin", Vec::new())
        }
    }

    /// The same deploy with `admin` as its contract's admin.
    ///
    /// # Panics
    /// When the transaction is not a deploy.
    #[must_use]
    pub fn with_admin(mut self, admin: &str) -> Self {
        match &mut self.body {
            TxBody::Deploy { admin: a, .. } => *a = Some(admin.to_owned()),
            _ => panic!("with_admin: only a deploy names an admin"),
        }
        self
    }

    /// The same transaction with another id.
    #[must_use]
    pub fn with_id(mut self, id: Uuid) -> Self {
        self.id = id;
        self
    }

    /// The same transaction with another sender.
    #[must_use]
    pub fn with_sender(mut self, sender: &str) -> Self {
        self.sender = sender.to_owned();
        self
    }

    /// The same transaction with a declared access set.
    #[must_use]
    pub fn with_access(mut self, access: AccessSet) -> Self {
        self.access = Some(Arc::new(access));
        self
    }

    /// The same transaction signed by `key` for `host`, its sender made the key's account
    /// id. A deploy's code must be wasm: the content hash covers the wasm, and a WAT
    /// module is converted at submission (convert it first with `abi::wasm_bytes`).
    ///
    /// # Errors
    /// [`InputError`] when the transaction is refused before it could be signed, or is
    /// a deploy of WAT.
    pub fn signed(mut self, key: &SigningKey, host: &HostId) -> Result<Self, InputError> {
        if let Some(code) = self.body.code()
            && !code.starts_with(b"\0asm")
        {
            return Err(InputError::Json(
                "a deploy or migrate to sign must carry wasm, not WAT: convert it first \
                 (semel::abi::wasm_bytes)"
                    .into(),
            ));
        }
        self.sender = account_id(&key.verifying_key().to_bytes());
        self.signature = None;
        self.check()?;
        self.signature = Some(Box::new(TxSignature::sign(
            key,
            host,
            &self.id,
            &self.content_hash(),
        )));
        Ok(self)
    }

    /// The same transaction with another gas limit.
    #[must_use]
    pub fn with_gas_limit(mut self, gas_limit: u64) -> Self {
        self.gas_limit = gas_limit;
        self
    }

    /// Reads the JSON form of interface §3 (a deploy by `code_base64`; one by
    /// `code_hash` needs a store: [`Transaction::from_json_resolving`]).
    ///
    /// # Errors
    /// [`InputError`] naming the first problem.
    pub fn from_json(text: &[u8]) -> Result<Self, InputError> {
        Self::from_json_resolving(text, &no_store)
    }

    /// Reads the JSON form of interface §3 and §6, with `code` giving the bytes of code
    /// an earlier deploy stored (a deploy by `code_hash`), or `None` when there is none.
    ///
    /// # Errors
    /// [`InputError`] naming the first problem.
    pub fn from_json_resolving(text: &[u8], code: &CodeLookup<'_>) -> Result<Self, InputError> {
        check_objects(text)?;
        let raw: RawTx =
            serde_json::from_slice(text).map_err(|e| InputError::Json(e.to_string()))?;
        let id = match raw.id {
            None => Uuid::new_v4(),
            Some(s) => parse_id(&s)?,
        };
        let gas_limit = match raw.gas_limit {
            None => GAS_LIMIT_DEFAULT,
            Some(n) if n.is_f64() => {
                return Err(InputError::Json(format!(
                    "gas limit {n} must be an integer, 1 to {GAS_LIMIT_MAX}"
                )));
            }
            Some(n) => n.as_u64().ok_or_else(|| InputError::GasLimit {
                given: n.to_string(),
                max: GAS_LIMIT_MAX,
            })?,
        };
        let given = [
            raw.calls.is_some(),
            raw.deploy.is_some(),
            raw.migrate.is_some(),
            raw.set_admin.is_some(),
        ];
        if given.iter().filter(|g| **g).count() > 1 {
            return Err(InputError::Json(
                "a transaction has one of \"calls\", \"deploy\", \"migrate\" and \
                 \"set_admin\", not several"
                    .into(),
            ));
        }
        let body = if let Some(calls) = raw.calls {
            TxBody::Calls(
                calls
                    .into_iter()
                    .enumerate()
                    .map(|(i, c)| {
                        Ok(Call {
                            args: args_bytes(&format!("call {i}"), c.args, c.args_hex)?,
                            contract: c.contract,
                            method: c.method,
                        })
                    })
                    .collect::<Result<Vec<_>, InputError>>()?,
            )
        } else if let Some(d) = raw.deploy {
            d.body(code)?
        } else if let Some(m) = raw.migrate {
            TxBody::Migrate {
                code: code_of("migrate", m.code_base64, m.code_hash, code)?,
                args: args_bytes("migrate", m.args, m.args_hex)?,
                name: m.name,
            }
        } else if let Some(a) = raw.set_admin {
            TxBody::SetAdmin {
                name: a.name,
                admin: a.admin.ok_or_else(|| {
                    InputError::Json(
                        "set_admin needs \"admin\": an account, or null for no admin".into(),
                    )
                })?,
            }
        } else {
            return Err(InputError::Json(
                "a transaction needs \"calls\" (or \"deploy\", \"migrate\", \"set_admin\")".into(),
            ));
        };
        let access = raw
            .access
            .as_ref()
            .map(AccessSet::from_json)
            .transpose()?
            .map(Arc::new);
        let tx = Transaction {
            id,
            sender: raw.sender.unwrap_or_else(|| DEFAULT_SENDER.to_owned()),
            gas_limit,
            body,
            access,
            signature: raw
                .signature
                .map(|s| TxSignature::from_hex(&s.public_key, &s.signature).map(Box::new))
                .transpose()?,
        };
        tx.check()?;
        Ok(tx)
    }

    /// Reads a transaction, or a batch (a JSON array of transactions, interface §5).
    /// A batch is checked whole: one refused transaction refuses it all.
    ///
    /// # Errors
    /// [`InputError`] naming the first problem (and, in a batch, which transaction).
    pub fn batch_from_json(text: &[u8]) -> Result<Batch, InputError> {
        Self::batch_from_json_resolving(text, &no_store)
    }

    /// [`Transaction::batch_from_json`] with deploys by `code_hash` resolved by `code`.
    ///
    /// # Errors
    /// [`InputError`] naming the first problem (and, in a batch, which transaction).
    pub fn batch_from_json_resolving(
        text: &[u8],
        code: &CodeLookup<'_>,
    ) -> Result<Batch, InputError> {
        let first = text.iter().find(|b| !b.is_ascii_whitespace());
        if first != Some(&b'[') {
            return Self::from_json_resolving(text, code).map(Batch::One);
        }
        let items: Vec<Box<serde_json::value::RawValue>> =
            serde_json::from_slice(text).map_err(|e| InputError::Json(e.to_string()))?;
        if items.is_empty() {
            return Err(InputError::Json(
                "a batch needs at least one transaction".into(),
            ));
        }
        items
            .iter()
            .enumerate()
            .map(|(i, raw)| {
                Self::from_json_resolving(raw.get().as_bytes(), code).map_err(|e| match e {
                    InputError::Json(m) => {
                        InputError::Json(format!("transaction {i} of the batch: {m}"))
                    }
                    e => InputError::Json(format!("transaction {i} of the batch: {e}")),
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Batch::Many)
    }

    /// Checks names, sizes and gas against the limits.
    ///
    /// # Errors
    /// [`InputError`] naming the first problem.
    pub fn check(&self) -> Result<(), InputError> {
        check_sender(&self.sender)?;
        if self.gas_limit == 0 || self.gas_limit > GAS_LIMIT_MAX {
            return Err(InputError::GasLimit {
                given: self.gas_limit.to_string(),
                max: GAS_LIMIT_MAX,
            });
        }
        match &self.body {
            TxBody::Calls(calls) => {
                if calls.is_empty() || calls.len() > CALLS_PER_TX_MAX {
                    return Err(InputError::CallCount {
                        count: calls.len(),
                        max: CALLS_PER_TX_MAX,
                    });
                }
                for (i, c) in calls.iter().enumerate() {
                    check_contract_name(&c.contract)?;
                    check_method_name(&c.method)?;
                    check_args(i, &c.args)?;
                }
            }
            TxBody::Deploy {
                name,
                init_args,
                admin,
                ..
            } => {
                check_contract_name(name)?;
                check_args(0, init_args)?;
                if let Some(admin) = admin {
                    check_admin(admin)?;
                }
            }
            TxBody::Migrate { name, args, .. } => {
                check_contract_name(name)?;
                check_args(0, args)?;
            }
            TxBody::SetAdmin { name, admin } => {
                check_contract_name(name)?;
                if let Some(admin) = admin {
                    check_admin(admin)?;
                }
            }
        }
        if let Some(access) = &self.access {
            access.check()?;
        }
        Ok(())
    }

    /// The hash that decides duplicate (same) versus conflict (different): sender, gas
    /// limit and calls, or for a deploy the name, code hash and init arguments.
    pub fn content_hash(&self) -> [u8; 32] {
        Self::hash_content(&self.encode_content())
    }

    /// The content encoding the content hash is BLAKE3 of (docs/ABI.md: code by hash;
    /// for a deploy, the code as given: WAT is converted to wasm at submission).
    pub fn content(&self) -> Vec<u8> {
        self.encode_content()
    }

    /// The content hash of a [`Transaction::encode_content`] encoding.
    pub(crate) fn hash_content(content: &[u8]) -> [u8; 32] {
        *blake3::hash(content).as_bytes()
    }

    /// The explicit encoding of the content, as the log stores it (code by hash).
    pub(crate) fn encode_content(&self) -> Vec<u8> {
        // Sized ahead (length prefixes are 4 bytes): the buffer never grows.
        let body = match &self.body {
            TxBody::Calls(calls) => {
                4 + calls
                    .iter()
                    .map(|c| 12 + c.contract.len() + c.method.len() + c.args.len())
                    .sum::<usize>()
            }
            TxBody::Deploy {
                name,
                init_args,
                admin,
                ..
            } => {
                4 + name.len()
                    + 32
                    + 4
                    + init_args.len()
                    + admin.as_ref().map_or(0, |a| 4 + a.len())
            }
            TxBody::Migrate { name, args, .. } => 4 + name.len() + 32 + 4 + args.len(),
            TxBody::SetAdmin { name, admin } => {
                4 + name.len() + 1 + admin.as_ref().map_or(0, |a| 4 + a.len())
            }
        };
        let mut w = Writer::with_capacity(4 + self.sender.len() + 8 + 1 + body);
        w.str(&self.sender).u64(self.gas_limit);
        match &self.body {
            TxBody::Calls(calls) => {
                w.u8(KIND_CALLS)
                    .u32(u32::try_from(calls.len()).expect("CALLS_PER_TX_MAX is small"));
                for c in calls {
                    w.str(&c.contract).str(&c.method).bytes(&c.args);
                }
            }
            // Without an admin, kind 1, as before admins existed: the content of such a
            // deploy, and its hash, are unchanged.
            TxBody::Deploy {
                name,
                code,
                init_args,
                admin,
            } => {
                w.u8(if admin.is_some() {
                    KIND_DEPLOY_ADMIN
                } else {
                    KIND_DEPLOY
                })
                .str(name)
                .fixed(&CodeHash::of(code).0)
                .bytes(init_args);
                if let Some(admin) = admin {
                    w.str(admin);
                }
            }
            TxBody::Migrate { name, code, args } => {
                w.u8(KIND_MIGRATE)
                    .str(name)
                    .fixed(&CodeHash::of(code).0)
                    .bytes(args);
            }
            TxBody::SetAdmin { name, admin } => {
                w.u8(KIND_SET_ADMIN).str(name);
                match admin {
                    None => w.u8(0),
                    Some(admin) => w.u8(1).str(admin),
                };
            }
        }
        // Absent, nothing: the content of a transaction without one is as before.
        if let Some(access) = &self.access {
            w.u8(ACCESS_TAG);
            access.encode(&mut w);
        }
        w.finish()
    }
}

/// What `semel tx` and `POST /v1/tx` take: one transaction, or a batch of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Batch {
    /// A transaction (its result is a receipt).
    One(Transaction),
    /// A batch (its result is an array), in order.
    Many(Vec<Transaction>),
}

/// Marks an access set after a content's body.
const ACCESS_TAG: u8 = 1;

/// The kind byte of a content encoding (docs/ABI.md): calls.
const KIND_CALLS: u8 = 0;
/// A deploy without an admin.
const KIND_DEPLOY: u8 = 1;
/// A deploy with an admin.
const KIND_DEPLOY_ADMIN: u8 = 2;
/// A migrate.
const KIND_MIGRATE: u8 = 3;
/// A set-admin.
const KIND_SET_ADMIN: u8 = 4;

/// A transaction as the log stores it: deploys name their code by hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LoggedTx {
    pub sender: String,
    pub gas_limit: u64,
    pub body: LoggedBody,
    pub access: Option<AccessSet>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LoggedBody {
    Calls(Vec<Call>),
    Deploy {
        name: String,
        code_hash: CodeHash,
        init_args: Vec<u8>,
        admin: Option<String>,
    },
    Migrate {
        name: String,
        code_hash: CodeHash,
        args: Vec<u8>,
    },
    SetAdmin {
        name: String,
        admin: Option<String>,
    },
}

impl LoggedTx {
    /// Reads [`Transaction::encode_content`]'s bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let sender = r.str()?.to_owned();
        let gas_limit = r.u64()?;
        let body = match r.u8()? {
            KIND_CALLS => {
                let n = r.u32()?;
                let mut calls = Vec::new();
                for _ in 0..n {
                    calls.push(Call {
                        contract: r.str()?.to_owned(),
                        method: r.str()?.to_owned(),
                        args: r.bytes()?.to_vec(),
                    });
                }
                LoggedBody::Calls(calls)
            }
            kind @ (KIND_DEPLOY | KIND_DEPLOY_ADMIN) => LoggedBody::Deploy {
                name: r.str()?.to_owned(),
                code_hash: CodeHash(r.fixed()?),
                init_args: r.bytes()?.to_vec(),
                admin: match kind {
                    KIND_DEPLOY_ADMIN => Some(r.str()?.to_owned()),
                    _ => None,
                },
            },
            KIND_MIGRATE => LoggedBody::Migrate {
                name: r.str()?.to_owned(),
                code_hash: CodeHash(r.fixed()?),
                args: r.bytes()?.to_vec(),
            },
            KIND_SET_ADMIN => LoggedBody::SetAdmin {
                name: r.str()?.to_owned(),
                admin: match r.u8()? {
                    0 => None,
                    1 => Some(r.str()?.to_owned()),
                    _ => return Err(DecodeError("bad admin tag of a set-admin")),
                },
            },
            _ => return Err(DecodeError("bad transaction kind")),
        };
        let access = match r.is_empty() {
            true => None,
            false if r.u8()? == ACCESS_TAG => Some(AccessSet::decode(&mut r)?),
            false => return Err(DecodeError("bad tag after a transaction's body")),
        };
        r.end()?;
        Ok(Self {
            sender,
            gas_limit,
            body,
            access,
        })
    }

    /// `contract.method` of each call, or `deploy NAME`, for listings.
    pub fn call_names(&self) -> Vec<String> {
        match &self.body {
            LoggedBody::Calls(calls) => calls
                .iter()
                .map(|c| format!("{}.{}", c.contract, c.method))
                .collect(),
            LoggedBody::Deploy { name, .. } => vec![format!("deploy {name}")],
            LoggedBody::Migrate { name, .. } => vec![format!("migrate {name}")],
            LoggedBody::SetAdmin { name, .. } => vec![format!("set-admin {name}")],
        }
    }
}

/// Finds the bytes of stored code by hash, for a deploy by `code_hash`: `Ok(None)`
/// when no deploy stored it.
pub type CodeLookup<'a> = dyn Fn(&CodeHash) -> Result<Option<Vec<u8>>, InputError> + 'a;

/// The lookup of a caller without a store.
fn no_store(hash: &CodeHash) -> Result<Option<Vec<u8>>, InputError> {
    Err(InputError::Json(format!(
        "a deploy by \"code_hash\" ({hash}) needs a store to find the code in; give \
         \"code_base64\" instead"
    )))
}

/// A transaction as JSON (interface §3, §5, §6): what [`Transaction::from_json`] reads,
/// and what a server's OpenAPI document describes.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Transaction)]
pub struct RawTx {
    /// The id (a UUID); a new one when absent.
    id: Option<String>,
    /// Who sends it (default `anonymous`).
    sender: Option<String>,
    /// Most gas it may use (default 10,000,000).
    #[schema(value_type = Option<u64>)]
    gas_limit: Option<serde_json::Number>,
    /// The calls, run in order (or `deploy`).
    calls: Option<Vec<RawCall>>,
    /// A deploy (or `calls`).
    deploy: Option<RawDeploy>,
    /// A migrate (interface §7).
    migrate: Option<RawMigrate>,
    /// A change of a contract's admin.
    set_admin: Option<RawSetAdmin>,
    /// The access set it declares (interface §5).
    #[schema(value_type = Option<Vec<Object>>)]
    access: Option<serde_json::Value>,
    /// Its signature (interface §7).
    signature: Option<RawSignature>,
}

/// A signature as JSON (interface §7).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Signature)]
pub struct RawSignature {
    /// The ed25519 public key, 64 hex digits.
    public_key: String,
    /// The ed25519 signature, 128 hex digits.
    signature: String,
}

/// A call as JSON.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Call)]
pub struct RawCall {
    /// Contract name.
    contract: String,
    /// Method name.
    method: String,
    /// Arguments as JSON, passed as their compact text (or `args_hex`).
    #[schema(value_type = Option<Object>)]
    args: Option<Box<serde_json::value::RawValue>>,
    /// The argument bytes, hex.
    args_hex: Option<String>,
}

/// A deploy as JSON (interface §6).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Deploy)]
pub struct RawDeploy {
    /// The contract's name.
    name: String,
    /// The module (wasm or WAT), base64 (or `code_hash`).
    code_base64: Option<String>,
    /// The BLAKE3 hash of code an earlier deploy stored, hex.
    code_hash: Option<String>,
    /// `init`'s arguments as JSON (or `args_hex`).
    #[schema(value_type = Option<Object>)]
    args: Option<Box<serde_json::value::RawValue>>,
    /// `init`'s argument bytes, hex.
    args_hex: Option<String>,
    /// The account that may migrate the contract (interface §7); absent: none.
    admin: Option<String>,
}

/// A migrate as JSON (interface §7).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Migrate)]
pub struct RawMigrate {
    /// The contract's name.
    name: String,
    /// The new module (wasm or WAT), base64 (or `code_hash`).
    code_base64: Option<String>,
    /// The BLAKE3 hash of code an earlier deploy or migrate stored, hex.
    code_hash: Option<String>,
    /// `migrate`'s arguments as JSON (or `args_hex`).
    #[schema(value_type = Option<Object>)]
    args: Option<Box<serde_json::value::RawValue>>,
    /// `migrate`'s argument bytes, hex.
    args_hex: Option<String>,
}

/// A change of admin as JSON.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = SetAdmin)]
pub struct RawSetAdmin {
    /// The contract's name.
    name: String,
    /// The new admin, or null for none (never upgradable again); required.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, required)]
    admin: Option<Option<String>>,
}

/// A field that must be present but may be null: `Some(None)` for null.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

impl RawDeploy {
    fn body(self, lookup: &CodeLookup<'_>) -> Result<TxBody, InputError> {
        Ok(TxBody::Deploy {
            code: code_of("deploy", self.code_base64, self.code_hash, lookup)?,
            init_args: args_bytes("deploy", self.args, self.args_hex)?,
            name: self.name,
            admin: self.admin,
        })
    }
}

/// A deploy's or migrate's code: `code_base64`, or `code_hash` found by `lookup`.
fn code_of(
    what: &str,
    code_base64: Option<String>,
    code_hash: Option<String>,
    lookup: &CodeLookup<'_>,
) -> Result<Vec<u8>, InputError> {
    use base64::Engine as _;
    match (code_base64, code_hash) {
        (Some(b64), None) => base64::engine::general_purpose::STANDARD
            .decode(b64.as_bytes())
            .map_err(|e| InputError::Json(format!("{what}: \"code_base64\" is not base64: {e}"))),
        (None, Some(hex_hash)) => {
            let hash = hex::decode(&hex_hash)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .map(CodeHash)
                .ok_or_else(|| {
                    InputError::Json(format!(
                        "{what}: \"code_hash\" {hex_hash:?} is not 64 hex digits"
                    ))
                })?;
            lookup(&hash)?.ok_or_else(|| {
                InputError::Json(format!(
                    "{what}: no code with hash {hash} is stored (an earlier deploy or migrate \
                     stores it)"
                ))
            })
        }
        (Some(_), Some(_)) => Err(InputError::Json(format!(
            "{what} has both \"code_base64\" and \"code_hash\""
        ))),
        (None, None) => Err(InputError::Json(format!(
            "{what} needs \"code_base64\" or \"code_hash\""
        ))),
    }
}

/// A call's or deploy's argument bytes: `args` as compact JSON, or `args_hex`.
fn args_bytes(
    what: &str,
    args: Option<Box<serde_json::value::RawValue>>,
    args_hex: Option<String>,
) -> Result<Vec<u8>, InputError> {
    Ok(match (args, args_hex) {
        (Some(_), Some(_)) => {
            return Err(InputError::Json(format!(
                "{what} has both \"args\" and \"args_hex\""
            )));
        }
        // The JSON as written, compacted: numbers, escapes and key order byte for byte,
        // never through a float.
        (Some(v), None) => compact_json(v.get()).into_bytes(),
        (None, Some(h)) => hex::decode(&h)
            .ok()
            .ok_or_else(|| InputError::Json(format!("{what}: \"args_hex\" is not hex")))?,
        (None, None) => Vec::new(),
    })
}

/// Refuses the sequence forms serde would also take for a struct (`[null, null, [..]]`):
/// a transaction and each of its calls are JSON objects, as interface §3 writes them.
fn check_objects(text: &[u8]) -> Result<(), InputError> {
    let value: serde_json::Value =
        serde_json::from_slice(text).map_err(|e| InputError::Json(e.to_string()))?;
    let not_object = |what: &str, v: &serde_json::Value| {
        InputError::Json(format!("{what} must be a JSON object, not {}", kind(v)))
    };
    let tx = value
        .as_object()
        .ok_or_else(|| not_object("a transaction", &value))?;
    for (field, what) in [
        ("deploy", "a deploy"),
        ("migrate", "a migrate"),
        ("set_admin", "a set_admin"),
    ] {
        if let Some(v) = tx.get(field)
            && !v.is_object()
        {
            return Err(not_object(what, v));
        }
    }
    if let Some(calls) = tx.get("calls").and_then(serde_json::Value::as_array) {
        for (i, call) in calls.iter().enumerate() {
            if !call.is_object() {
                return Err(not_object(&format!("call {i}"), call));
            }
        }
    }
    Ok(())
}

/// The JSON kind of `v`, for messages.
fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// `json` (valid JSON) without its insignificant whitespace: every token — numbers as
/// written (`-0`, `1e7`, 30 digits), strings with their escapes — byte for byte.
pub fn compact_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in json.chars() {
        match (in_string, c) {
            (false, ' ' | '\t' | '\n' | '\r') => continue,
            (false, '"') => in_string = true,
            (true, _) if escaped => escaped = false,
            (true, '\\') => escaped = true,
            (true, '"') => in_string = false,
            _ => {}
        }
        out.push(c);
    }
    out
}

/// Parses a transaction id.
///
/// # Errors
/// [`InputError::BadId`] when `text` is not a UUID.
pub fn parse_id(text: &str) -> Result<Uuid, InputError> {
    Uuid::parse_str(text).map_err(|_| InputError::BadId(text.to_owned()))
}

fn check_sender(name: &str) -> Result<(), InputError> {
    let why = if name.is_empty() {
        "it is empty"
    } else if name.len() > SENDER_BYTES_MAX {
        "it is longer than SENDER_BYTES_MAX (256 bytes)"
    } else {
        return Ok(());
    };
    Err(InputError::BadSender {
        name: name.to_owned(),
        why,
    })
}

/// Checks an admin account: a sender could be it, and an `ed25519:` one is a key's.
fn check_admin(admin: &str) -> Result<(), InputError> {
    check_sender(admin).map_err(|e| InputError::Json(format!("admin: {e}")))?;
    if let Some(key) = admin.strip_prefix(ACCOUNT_PREFIX)
        && (key.len() != 64 || !key.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
    {
        return Err(InputError::Json(format!(
            "admin {admin:?} is not an account id: {ACCOUNT_PREFIX} is followed by the 64 \
             lowercase hex digits of a public key"
        )));
    }
    Ok(())
}

/// Checks an argument's size.
///
/// # Errors
/// [`InputError::ArgsTooLarge`] past [`ARG_BYTES_MAX`].
pub fn check_args(call: usize, args: &[u8]) -> Result<(), InputError> {
    if args.len() > ARG_BYTES_MAX {
        return Err(InputError::ArgsTooLarge {
            call,
            len: args.len(),
            max: ARG_BYTES_MAX,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_interface_example() {
        let tx = Transaction::from_json(
            br#"{ "id": "0b6f0e0e-5d1c-4a8e-9a43-2f0c6c2a9f11", "sender": "alice",
                  "gas_limit": 10000000,
                  "calls": [ {"contract": "token", "method": "transfer", "args": {"to": "bob", "amount": 5}},
                             {"contract": "counter", "method": "inc"},
                             {"contract": "raw", "method": "m", "args_hex": "00ff"} ] }"#,
        )
        .unwrap();
        assert_eq!(tx.id.to_string(), "0b6f0e0e-5d1c-4a8e-9a43-2f0c6c2a9f11");
        let TxBody::Calls(calls) = &tx.body else {
            panic!("calls")
        };
        assert_eq!(calls[0].args, br#"{"to":"bob","amount":5}"#);
        assert!(calls[1].args.is_empty());
        assert_eq!(calls[2].args, vec![0, 0xff]);
        let logged = LoggedTx::decode(&tx.encode_content()).unwrap();
        assert_eq!(logged.body, LoggedBody::Calls(calls.clone()));
        assert_eq!(logged.call_names()[0], "token.transfer");
    }

    #[test]
    fn arguments_are_the_json_as_written_compacted_never_rewritten() {
        let args = |json: &str| {
            let text =
                format!(r#"{{"calls": [{{"contract": "c", "method": "m", "args": {json}}}]}}"#);
            let tx = Transaction::from_json(text.as_bytes()).unwrap();
            let TxBody::Calls(calls) = tx.body else {
                panic!("calls")
            };
            String::from_utf8(calls[0].args.clone()).unwrap()
        };
        assert_eq!(
            args("123456789012345678901234567890"),
            "123456789012345678901234567890"
        );
        assert_eq!(args("-0"), "-0");
        assert_eq!(args("[1e7, 1.50, -0.0]"), "[1e7,1.50,-0.0]");
        assert_eq!(
            args(r#"{ "b" : 1, "a" : "x \" y \\ \u0041 "  }"#),
            r#"{"b":1,"a":"x \" y \\ \u0041 "}"#
        );
        assert_eq!(args("\n [ true ,\tnull ]\r\n"), "[true,null]");
        // The same call as `semel call` passes compact text: one content, one hash.
        let typed = br#"{"n":123456789012345678901234567890,"z":-0}"#;
        let via_tx = Transaction::from_json(
            r#"{"id": "0b6f0e0e-5d1c-4a8e-9a43-2f0c6c2a9f11", "calls": [{"contract": "c", "method": "m", "args": { "n": 123456789012345678901234567890, "z": -0 } }]}"#
            .as_bytes(),
        )
        .unwrap();
        let via_call = Transaction::call("c", "m", typed.to_vec()).with_id(via_tx.id);
        assert_eq!(via_tx.content_hash(), via_call.content_hash());
    }

    #[test]
    fn refusals_name_the_problem() {
        let err = |j: &str| {
            Transaction::from_json(j.as_bytes())
                .unwrap_err()
                .to_string()
        };
        // serde's sequence form of the structs is not a transaction.
        assert!(
            err(r#"[null, null, null, [["c", "m"]]]"#)
                .contains("a transaction must be a JSON object, not an array")
        );
        assert!(
            err(r#"{"calls": [["c", "m", null, null]]}"#).contains("call 0 must be a JSON object")
        );
        assert!(
            err(r#"{"gas_limit": 1e7, "calls": [{"contract":"a","method":"b"}]}"#)
                .contains("gas limit 10000000.0 must be an integer")
        );
        assert!(err(r#"{"calls": []}"#).contains("1 to 64 calls"));
        assert!(err(r#"{"id": "nope", "calls": []}"#).contains("\"nope\" is not a UUID"));
        assert!(
            err(r#"{"gas_limit": -5, "calls": [{"contract":"a","method":"b"}]}"#)
                .contains("gas limit -5")
        );
        assert!(
            err(r#"{"gas_limit": 0, "calls": [{"contract":"a","method":"b"}]}"#)
                .contains("gas limit 0")
        );
        assert!(
            err(r#"{"calls": [{"contract":"a b","method":"m"}]}"#)
                .contains("contract name \"a b\"")
        );
        assert!(err(r#"{"calls": [{"contract":"a","method":""}]}"#).contains("method name"));
        assert!(err(r#"{"calls": [{"contract":"a","method":"m","extra":1}]}"#).contains("extra"));
        assert!(
            err(r#"{"calls": [{"contract":"a","method":"m","args":1,"args_hex":""}]}"#)
                .contains("both")
        );
        assert!(err("{").contains("malformed transaction"));
    }

    #[test]
    fn content_hash_covers_sender_gas_and_calls() {
        let a = Transaction::call("c", "m", b"x".to_vec());
        let same = a.clone().with_id(Uuid::new_v4());
        assert_eq!(a.content_hash(), same.content_hash());
        assert_ne!(
            a.content_hash(),
            a.clone().with_sender("bob").content_hash()
        );
        assert_ne!(a.content_hash(), a.clone().with_gas_limit(5).content_hash());
        assert_ne!(
            a.content_hash(),
            Transaction::call("c", "m", b"y".to_vec()).content_hash()
        );
    }

    #[test]
    fn every_kind_of_body_round_trips_through_the_log_encoding() {
        let code = b"\0asm\x01\0\0\0".to_vec();
        let hash = CodeHash::of(&code);
        let deploy = Transaction::deploy("c", code.clone(), b"i".to_vec());
        // A deploy without an admin keeps kind 1 and its content as before admins.
        let content = deploy.encode_content();
        assert_eq!(content[4 + DEFAULT_SENDER.len() + 8], KIND_DEPLOY);
        let cases = [
            (
                deploy.clone(),
                LoggedBody::Deploy {
                    name: "c".into(),
                    code_hash: hash,
                    init_args: b"i".to_vec(),
                    admin: None,
                },
            ),
            (
                deploy.clone().with_admin("alice"),
                LoggedBody::Deploy {
                    name: "c".into(),
                    code_hash: hash,
                    init_args: b"i".to_vec(),
                    admin: Some("alice".into()),
                },
            ),
            (
                Transaction::migrate("c", code.clone(), b"m".to_vec()),
                LoggedBody::Migrate {
                    name: "c".into(),
                    code_hash: hash,
                    args: b"m".to_vec(),
                },
            ),
            (
                Transaction::set_admin("c", Some("bob")),
                LoggedBody::SetAdmin {
                    name: "c".into(),
                    admin: Some("bob".into()),
                },
            ),
            (
                Transaction::set_admin("c", None),
                LoggedBody::SetAdmin {
                    name: "c".into(),
                    admin: None,
                },
            ),
        ];
        let mut hashes = std::collections::HashSet::new();
        for (tx, body) in cases {
            assert_eq!(LoggedTx::decode(&tx.encode_content()).unwrap().body, body);
            assert!(hashes.insert(tx.content_hash()), "each content is its own");
        }
        let mut bad = Transaction::set_admin("c", None).encode_content();
        *bad.last_mut().unwrap() = 9;
        assert!(LoggedTx::decode(&bad).is_err());
    }
}
