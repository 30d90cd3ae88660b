//! `escrow`: tokens held for a beneficiary until someone entitled settles the deal.
//!
//! A depositor opens a deal by approving the escrow on a token contract and calling
//! `open`; the escrow collects the amount with `transfer_from`. Then:
//! - the depositor or the arbiter may `release` it: the beneficiary is paid;
//! - the beneficiary or the arbiter may `refund` it: the depositor is paid back.
//!
//! Methods (JSON arguments):
//! - `open {"token", "beneficiary", "arbiter", "amount"}`: outputs the new deal's id (a
//!   JSON number, counting from 1);
//! - `release {"id"}`, `refund {"id"}`: settle an open deal;
//! - `deal {"id"}`: outputs `{"token","depositor","beneficiary","arbiter","amount",
//!   "state"}` with `state` one of `"open"`, `"released"`, `"refunded"`, or `null` for
//!   an unknown id.
//!
//! Storage (postcard values): `next_id` (u64), `deal/<id as 8 bytes BE>` (the deal).
//! Events: `opened`, `released`, `refunded`, each with data `{"id"}`.
#![no_std]

extern crate alloc;

use alloc::string::String;
use semel_sdk::{Item, Map, caller, ensure, json, revert, self_name};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "lowercase")]
enum State {
    Open,
    Released,
    Refunded,
}

#[derive(Serialize, Deserialize)]
struct Deal {
    token: String,
    depositor: String,
    beneficiary: String,
    arbiter: String,
    amount: u64,
    state: State,
}

const NEXT_ID: Item<u64> = Item::new("next_id");
const DEALS: Map<u64, Deal> = Map::new("deal/");

#[derive(Serialize)]
struct IdEvent {
    id: u64,
}

#[derive(Serialize)]
struct TransferArgs<'a> {
    to: &'a str,
    amount: u64,
}

#[derive(Serialize)]
struct TransferFromArgs<'a> {
    from: &'a str,
    to: &'a str,
    amount: u64,
}

fn open_deal(id: u64) -> Deal {
    let deal = DEALS
        .get(id)
        .unwrap_or_else(|| revert(&alloc::format!("no deal {id}")));
    ensure!(deal.state == State::Open, "deal {id} is already settled");
    deal
}

/// Pays out an open deal to `to` and marks it `state`.
fn settle(id: u64, mut deal: Deal, to_depositor: bool) {
    let (to, state, topic) = if to_depositor {
        (&deal.depositor, State::Refunded, "refunded")
    } else {
        (&deal.beneficiary, State::Released, "released")
    };
    let args = TransferArgs {
        to,
        amount: deal.amount,
    };
    if let Err(e) = json::call::<_, ()>(&deal.token, "transfer", &args) {
        revert(&alloc::format!("payout failed: {e}"));
    }
    deal.state = state;
    DEALS.set(id, &deal);
    json::emit(topic, &IdEvent { id });
}

semel_sdk::contract_methods! {
    /// Collects `amount` of `token` from the caller and holds it; outputs the deal id.
    fn open(token: String, beneficiary: String, arbiter: String, amount: u64) -> u64 {
        ensure!(amount > 0, "nothing to hold");
        let depositor = caller();
        let id = NEXT_ID.get().unwrap_or(1);
        let escrow = self_name();
        let args = TransferFromArgs { from: &depositor, to: &escrow, amount };
        if let Err(e) = json::call::<_, ()>(&token, "transfer_from", &args) {
            revert(&alloc::format!("deposit failed: {e}"));
        }
        DEALS.set(id, &Deal { token, depositor, beneficiary, arbiter, amount, state: State::Open });
        NEXT_ID.set(&(id + 1));
        json::emit("opened", &IdEvent { id });
        id
    }

    /// Pays the beneficiary; the depositor or the arbiter may do it.
    fn release(id: u64) {
        let deal = open_deal(id);
        let who = caller();
        ensure!(who == deal.depositor || who == deal.arbiter, "{who} may not release deal {id}");
        settle(id, deal, false);
    }

    /// Pays the depositor back; the beneficiary or the arbiter may do it.
    fn refund(id: u64) {
        let deal = open_deal(id);
        let who = caller();
        ensure!(who == deal.beneficiary || who == deal.arbiter, "{who} may not refund deal {id}");
        settle(id, deal, true);
    }

    /// The deal, or `null`.
    fn deal(id: u64) -> Option<Deal> {
        DEALS.get(id)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::format;

    use semel_sdk::testing::MockHost;

    fn setup() -> MockHost {
        let host = MockHost::new();
        host.set_sender("alice");
        host.deploy("tok", token::METHODS, r#"{"supply":1000}"#)
            .unwrap();
        host.deploy("escrow", super::METHODS, "").unwrap();
        host.call("tok", "approve", r#"{"spender":"escrow","amount":100}"#)
            .unwrap();
        let id: u64 = host.query(
            "escrow",
            "open",
            r#"{"token":"tok","beneficiary":"bob","arbiter":"judge","amount":60}"#,
        );
        assert_eq!(id, 1);
        host
    }

    fn balance(host: &MockHost, of: &str) -> u64 {
        host.query("tok", "balance", &format!(r#"{{"of":"{of}"}}"#))
    }

    #[test]
    fn open_holds_the_tokens() {
        let host = setup();
        assert_eq!(balance(&host, "alice"), 940);
        assert_eq!(balance(&host, "escrow"), 60);
        let out = host.call("escrow", "deal", r#"{"id":1}"#).unwrap();
        assert_eq!(
            out,
            br#"{"token":"tok","depositor":"alice","beneficiary":"bob","arbiter":"judge","amount":60,"state":"open"}"#
        );
        assert_eq!(host.call("escrow", "deal", r#"{"id":2}"#).unwrap(), b"null");
    }

    #[test]
    fn release_pays_the_beneficiary_once() {
        let host = setup();
        host.set_sender("bob");
        assert!(
            host.call("escrow", "release", r#"{"id":1}"#)
                .unwrap_err()
                .contains("bob may not release")
        );
        host.set_sender("judge");
        host.call("escrow", "release", r#"{"id":1}"#).unwrap();
        assert_eq!(balance(&host, "bob"), 60);
        assert_eq!(balance(&host, "escrow"), 0);
        assert!(
            host.call("escrow", "refund", r#"{"id":1}"#)
                .unwrap_err()
                .contains("already settled")
        );
    }

    #[test]
    fn refund_pays_the_depositor_back() {
        let host = setup();
        host.set_sender("alice");
        assert!(host.call("escrow", "refund", r#"{"id":1}"#).is_err());
        host.set_sender("bob");
        host.call("escrow", "refund", r#"{"id":1}"#).unwrap();
        assert_eq!(balance(&host, "alice"), 1000);
    }

    #[test]
    fn a_deposit_beyond_the_allowance_opens_nothing() {
        let host = setup();
        let before = host.storage("escrow");
        let err = host
            .call(
                "escrow",
                "open",
                r#"{"token":"tok","beneficiary":"bob","arbiter":"judge","amount":41}"#,
            )
            .unwrap_err();
        assert!(err.contains("deposit failed"), "{err}");
        assert_eq!(host.storage("escrow"), before);
    }
}
