//! `token`: a fungible token with balances, transfers and allowances.
//!
//! Methods (JSON arguments; amounts are JSON numbers up to 2^64 - 1):
//! - `init {"supply": N}`: at deploy, mints `N` to the sender;
//! - `transfer {"to", "amount"}`: moves `amount` from the caller to `to`;
//! - `approve {"spender", "amount"}`: lets `spender` move up to `amount` of the
//!   caller's tokens (replacing an earlier allowance);
//! - `transfer_from {"from", "to", "amount"}`: the caller spends its allowance from
//!   `from` to move `amount` to `to`;
//! - `balance {"of"}` outputs a JSON number; `allowance {"owner", "spender"}` too;
//! - `supply` outputs the total supply.
//!
//! Every transfer emits topic `transfer` with data `{"from","to","amount"}`; `approve`
//! emits `approval` with `{"owner","spender","amount"}`. Moving more than a balance
//! or an allowance reverts, and so nothing changes.
//!
//! Storage (values postcard-encoded, so a `u64` is a varint; a zero balance or
//! allowance is deleted, absent reads as 0):
//! - `supply`: the total supply;
//! - `balance/<holder>`: a holder's balance;
//! - `allowance/<owner length: 2 bytes BE><owner><spender>`: an allowance.
#![no_std]

extern crate alloc;

use alloc::string::String;
use semel_sdk::{Item, Map, caller, ensure, revert, sender};
use serde::Serialize;

const SUPPLY: Item<u64> = Item::new("supply");
const BALANCES: Map<String, u64> = Map::new("balance/");
const ALLOWANCES: Map<(String, String), u64> = Map::new("allowance/");

/// The data of a `transfer` event.
#[derive(Serialize)]
struct Transfer<'a> {
    from: &'a str,
    to: &'a str,
    amount: u64,
}

/// The data of an `approval` event.
#[derive(Serialize)]
struct Approval<'a> {
    owner: &'a str,
    spender: &'a str,
    amount: u64,
}

/// Stores `amount`, or deletes the key when it is 0 (absent reads as 0), so spent
/// balances and allowances take no storage.
fn set_or_clear<K: semel_sdk::Key>(map: &Map<K, u64>, key: K::Ref<'_>, amount: u64) {
    if amount == 0 {
        map.remove(key)
    } else {
        map.set(key, &amount)
    }
}

/// Moves `amount` from `from` to `to`, reverting on an overdraft, and emits the event.
fn move_tokens(from: &str, to: &str, amount: u64) {
    let have = BALANCES.get_or_default(from);
    ensure!(
        amount <= have,
        "insufficient balance: {from} has {have}, needs {amount}"
    );
    set_or_clear(&BALANCES, from, have - amount);
    // Read after the debit, so a transfer to oneself nets to nothing.
    let Some(to_balance) = BALANCES.get_or_default(to).checked_add(amount) else {
        revert("balance overflow");
    };
    BALANCES.set(to, &to_balance);
    semel_sdk::json::emit("transfer", &Transfer { from, to, amount });
}

semel_sdk::contract_methods! {
    /// Mints the whole supply to the deployer.
    fn init(supply: u64) {
        let owner = sender();
        SUPPLY.set(&supply);
        BALANCES.set(&owner, &supply);
        semel_sdk::json::emit("transfer", &Transfer { from: "", to: &owner, amount: supply });
    }

    /// Moves `amount` from the caller to `to`.
    fn transfer(to: String, amount: u64) {
        move_tokens(&caller(), &to, amount);
    }

    /// Sets how much `spender` may move from the caller's balance.
    fn approve(spender: String, amount: u64) {
        let owner = caller();
        set_or_clear(&ALLOWANCES, (&owner, &spender), amount);
        semel_sdk::json::emit("approval", &Approval { owner: &owner, spender: &spender, amount });
    }

    /// Moves `amount` from `from` to `to`, spending the caller's allowance from `from`.
    fn transfer_from(from: String, to: String, amount: u64) {
        let spender = caller();
        let allowed = ALLOWANCES.get_or_default((&from, &spender));
        ensure!(
            amount <= allowed,
            "insufficient allowance: {spender} may move {allowed} of {from}'s tokens, needs {amount}"
        );
        set_or_clear(&ALLOWANCES, (&from, &spender), allowed - amount);
        move_tokens(&from, &to, amount);
    }

    /// The balance of `of`.
    fn balance(of: String) -> u64 {
        BALANCES.get_or_default(&of)
    }

    /// How much `spender` may still move from `owner`'s balance.
    fn allowance(owner: String, spender: String) -> u64 {
        ALLOWANCES.get_or_default((&owner, &spender))
    }

    /// The total supply.
    fn supply() -> u64 {
        SUPPLY.get_or_default()
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use semel_sdk::testing::MockHost;

    fn deployed() -> MockHost {
        let host = MockHost::new();
        host.set_sender("alice");
        host.deploy("token", super::METHODS, r#"{"supply":1000}"#)
            .unwrap();
        host.take_events();
        host
    }

    fn balance(host: &MockHost, of: &str) -> u64 {
        host.query("token", "balance", &std::format!(r#"{{"of":"{of}"}}"#))
    }

    #[test]
    fn init_mints_the_supply_to_the_sender() {
        let host = deployed();
        assert_eq!(balance(&host, "alice"), 1000);
        assert_eq!(balance(&host, "bob"), 0);
        assert_eq!(host.query::<u64>("token", "supply", ""), 1000);
        assert!(
            host.call("token", "init", r#"{"supply":5}"#).is_err(),
            "init runs only at deploy"
        );
    }

    #[test]
    fn transfer_moves_tokens_and_emits_an_event() {
        let host = deployed();
        host.call("token", "transfer", r#"{"to":"bob","amount":5}"#)
            .unwrap();
        assert_eq!(balance(&host, "alice"), 995);
        assert_eq!(balance(&host, "bob"), 5);
        let events = host.take_events();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].topic, "transfer");
        assert_eq!(events[0].data, br#"{"from":"alice","to":"bob","amount":5}"#);
        assert!(host.storage("token").contains_key(&b"balance/bob"[..]));
    }

    #[test]
    fn overdraft_reverts_and_changes_nothing() {
        let host = deployed();
        let before = host.storage("token");
        let err = host
            .call("token", "transfer", r#"{"to":"bob","amount":1001}"#)
            .unwrap_err();
        assert!(err.contains("insufficient balance"), "{err}");
        assert_eq!(host.storage("token"), before);
        assert!(host.events().is_empty());
    }

    #[test]
    fn transfer_to_self_keeps_the_balance() {
        let host = deployed();
        host.call("token", "transfer", r#"{"to":"alice","amount":600}"#)
            .unwrap();
        assert_eq!(balance(&host, "alice"), 1000);
    }

    #[test]
    fn allowances_bound_transfer_from() {
        let host = deployed();
        host.call("token", "approve", r#"{"spender":"carol","amount":10}"#)
            .unwrap();
        let allowance = |h: &MockHost| -> u64 {
            h.query(
                "token",
                "allowance",
                r#"{"owner":"alice","spender":"carol"}"#,
            )
        };
        assert_eq!(allowance(&host), 10);

        host.set_sender("carol");
        host.call(
            "token",
            "transfer_from",
            r#"{"from":"alice","to":"dave","amount":7}"#,
        )
        .unwrap();
        assert_eq!(allowance(&host), 3);
        assert_eq!(balance(&host, "dave"), 7);
        assert_eq!(balance(&host, "alice"), 993);

        let err = host
            .call(
                "token",
                "transfer_from",
                r#"{"from":"alice","to":"dave","amount":4}"#,
            )
            .unwrap_err();
        assert!(err.contains("insufficient allowance"), "{err}");
        assert_eq!(allowance(&host), 3);

        // Someone else's allowance is not carol's.
        host.set_sender("mallory");
        assert!(
            host.call(
                "token",
                "transfer_from",
                r#"{"from":"alice","to":"mallory","amount":1}"#
            )
            .is_err()
        );
    }

    #[test]
    fn an_allowance_cannot_outspend_the_balance() {
        let host = deployed();
        host.call("token", "approve", r#"{"spender":"carol","amount":5000}"#)
            .unwrap();
        host.set_sender("carol");
        let err = host
            .call(
                "token",
                "transfer_from",
                r#"{"from":"alice","to":"carol","amount":2000}"#,
            )
            .unwrap_err();
        assert!(err.contains("insufficient balance"), "{err}");
        // The allowance debit was rolled back with the rest of the call.
        host.set_sender("alice");
        assert_eq!(
            host.query::<u64>(
                "token",
                "allowance",
                r#"{"owner":"alice","spender":"carol"}"#
            ),
            5000
        );
    }

    #[test]
    fn bad_arguments_revert_with_a_reason() {
        let host = deployed();
        let err = host
            .call("token", "transfer", r#"{"to":"bob"}"#)
            .unwrap_err();
        assert!(err.contains("missing field `amount`"), "{err}");
        let err = host
            .call("token", "transfer", r#"{"to":"bob","amount":-1}"#)
            .unwrap_err();
        assert!(err.starts_with("reverted: invalid arguments"), "{err}");
        let err = host
            .call("token", "transfer", r#"{"to":"bob","amount":1,"memo":"x"}"#)
            .unwrap_err();
        assert!(err.contains("unknown field `memo`"), "{err}");
    }
}
