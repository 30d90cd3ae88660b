//! `exchange`: a constant-product swap pool (x·y = k, 0.3% fee) between two token
//! contracts, paid through their `transfer_from` and `transfer`.
//!
//! Before adding liquidity or swapping, approve the exchange on the token(s) you pay
//! with (`token.approve {"spender": "<exchange name>", "amount": N}`).
//!
//! Methods (JSON arguments; amounts are JSON numbers):
//! - `init {"token_a", "token_b"}`: the two token contracts' names;
//! - `add_liquidity {"amount_a", "amount_b"}`: deposits at most these amounts, in the
//!   pool's current ratio (any ratio for the first deposit), and outputs the shares
//!   minted to the caller;
//! - `remove_liquidity {"shares"}`: burns shares, pays out the caller's part of both
//!   reserves, outputs `{"amount_a", "amount_b"}`;
//! - `swap {"token_in", "amount_in", "min_out"?}`: sells `amount_in` of `token_in` (one
//!   of the two names) for the other token, outputs the amount bought; reverts when it
//!   would be under `min_out`;
//! - `quote {"token_in", "amount_in"}`: the amount a swap would buy now;
//! - `pool`: `{"token_a", "token_b", "reserve_a", "reserve_b", "shares"}`;
//! - `shares {"of"}`: a provider's shares.
//!
//! A swap pays the buyer first and then collects the payment with `transfer_from`. If
//! the payment fails (no allowance, short balance) the swap reverts, and the host undoes
//! the payout already made by the other token: both tokens and the pool are left as
//! they were. That order is deliberate — it is the atomic three-contract case.
//!
//! Storage (postcard values): `config` (the two names), `reserves` (two u64),
//! `total_shares` (u64), `shares/<provider>` (u64). Events: `swap`
//! `{"trader","token_in","amount_in","amount_out"}`, `add_liquidity` and
//! `remove_liquidity` `{"provider","amount_a","amount_b","shares"}`.
#![no_std]

extern crate alloc;

use alloc::string::String;
use semel_sdk::{Item, Map, caller, ensure, json, revert, self_name};
use serde::{Deserialize, Serialize};

/// The pool's fee, in thousandths of the input.
const FEE_PER_MILLE: u128 = 3;

#[derive(Serialize, Deserialize)]
struct Config {
    token_a: String,
    token_b: String,
}

const CONFIG: Item<Config> = Item::new("config");
/// `(reserve_a, reserve_b)`: what the pool holds of each token.
const RESERVES: Item<(u64, u64)> = Item::new("reserves");
const TOTAL_SHARES: Item<u64> = Item::new("total_shares");
const SHARES: Map<String, u64> = Map::new("shares/");

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

#[derive(Serialize)]
struct Liquidity<'a> {
    provider: &'a str,
    amount_a: u64,
    amount_b: u64,
    shares: u64,
}

#[derive(Serialize)]
struct Swap<'a> {
    trader: &'a str,
    token_in: &'a str,
    amount_in: u64,
    amount_out: u64,
}

#[derive(Serialize)]
struct Withdrawn {
    amount_a: u64,
    amount_b: u64,
}

#[derive(Serialize)]
struct Pool {
    token_a: String,
    token_b: String,
    reserve_a: u64,
    reserve_b: u64,
    shares: u64,
}

fn config() -> Config {
    CONFIG
        .get()
        .unwrap_or_else(|| revert("exchange not initialised"))
}

fn to_u64(x: u128) -> u64 {
    u64::try_from(x).unwrap_or_else(|_| revert("amount overflow"))
}

/// `x * y / z` without intermediate overflow (all three fit in u64).
fn mul_div(x: u64, y: u64, z: u64) -> u64 {
    ensure!(z != 0, "division by zero");
    to_u64(u128::from(x) * u128::from(y) / u128::from(z))
}

fn isqrt(n: u128) -> u128 {
    // Newton's method from above; converges in a few dozen steps for u128.
    if n < 2 {
        return n;
    }
    let mut x = n;
    let mut y = x.div_ceil(2);
    while y < x {
        x = y;
        y = (x + n / x) / 2;
    }
    x
}

/// What selling `amount_in` into a pool of `(reserve_in, reserve_out)` buys.
fn amount_out(amount_in: u64, reserve_in: u64, reserve_out: u64) -> u64 {
    let in_after_fee = u128::from(amount_in) * (1000 - FEE_PER_MILLE);
    let numerator = in_after_fee * u128::from(reserve_out);
    let denominator = u128::from(reserve_in) * 1000 + in_after_fee;
    if denominator == 0 {
        return 0;
    }
    to_u64(numerator / denominator)
}

/// Moves `amount` of `token` from `from` to this pool.
fn collect(token: &str, from: &str, amount: u64) {
    let pool = self_name();
    let args = TransferFromArgs {
        from,
        to: &pool,
        amount,
    };
    if let Err(e) = json::call::<_, ()>(token, "transfer_from", &args) {
        revert(&alloc::format!(
            "payment of {amount} {token} from {from} failed: {e}"
        ));
    }
}

/// Pays `amount` of `token` from this pool to `to`.
fn pay(token: &str, to: &str, amount: u64) {
    if let Err(e) = json::call::<_, ()>(token, "transfer", &TransferArgs { to, amount }) {
        revert(&alloc::format!(
            "payout of {amount} {token} to {to} failed: {e}"
        ));
    }
}

/// Which side `token_in` is: `true` for token_a.
fn side(config: &Config, token_in: &str) -> bool {
    if token_in == config.token_a {
        true
    } else if token_in == config.token_b {
        false
    } else {
        revert(&alloc::format!("{token_in} is not traded here"))
    }
}

semel_sdk::contract_methods! {
    /// Sets the pair; the pool starts empty.
    fn init(token_a: String, token_b: String) {
        ensure!(token_a != token_b, "the two tokens must differ");
        CONFIG.set(&Config { token_a, token_b });
        RESERVES.set(&(0, 0));
        TOTAL_SHARES.set(&0);
    }

    /// Deposits up to `amount_a` and `amount_b` in the pool's ratio; outputs the shares minted.
    fn add_liquidity(amount_a: u64, amount_b: u64) -> u64 {
        let config = config();
        let provider = caller();
        let (ra, rb) = RESERVES.get_or_default();
        let total = TOTAL_SHARES.get_or_default();
        let (used_a, used_b, minted) = if total == 0 {
            ensure!(amount_a > 0 && amount_b > 0, "the first deposit needs both tokens");
            let minted = to_u64(isqrt(u128::from(amount_a) * u128::from(amount_b)));
            (amount_a, amount_b, minted)
        } else {
            // Take as much as the current ratio allows of the pair offered.
            let b_for_a = mul_div(amount_a, rb, ra);
            let (a, b) = if b_for_a <= amount_b { (amount_a, b_for_a) } else { (mul_div(amount_b, ra, rb), amount_b) };
            (a, b, mul_div(a, total, ra).min(mul_div(b, total, rb)))
        };
        ensure!(minted > 0, "deposit too small to mint a share");
        collect(&config.token_a, &provider, used_a);
        collect(&config.token_b, &provider, used_b);
        let Some(reserves) = ra.checked_add(used_a).zip(rb.checked_add(used_b)) else { revert("reserve overflow") };
        RESERVES.set(&reserves);
        TOTAL_SHARES.set(&(total + minted));
        SHARES.set(&provider, &(SHARES.get_or_default(&provider) + minted));
        json::emit("add_liquidity", &Liquidity { provider: &provider, amount_a: used_a, amount_b: used_b, shares: minted });
        minted
    }

    /// Burns `shares` of the caller's and pays out their part of both reserves.
    fn remove_liquidity(shares: u64) -> Withdrawn {
        let config = config();
        let provider = caller();
        let held = SHARES.get_or_default(&provider);
        ensure!(shares > 0 && shares <= held, "{provider} holds {held} shares, cannot burn {shares}");
        let (ra, rb) = RESERVES.get_or_default();
        let total = TOTAL_SHARES.get_or_default();
        let out = Withdrawn { amount_a: mul_div(shares, ra, total), amount_b: mul_div(shares, rb, total) };
        SHARES.set(&provider, &(held - shares));
        TOTAL_SHARES.set(&(total - shares));
        RESERVES.set(&(ra - out.amount_a, rb - out.amount_b));
        pay(&config.token_a, &provider, out.amount_a);
        pay(&config.token_b, &provider, out.amount_b);
        json::emit("remove_liquidity", &Liquidity { provider: &provider, amount_a: out.amount_a, amount_b: out.amount_b, shares });
        out
    }

    /// Sells `amount_in` of `token_in` for the other token; outputs the amount bought.
    fn swap(token_in: String, amount_in: u64, min_out: Option<u64>) -> u64 {
        let config = config();
        let trader = caller();
        let a_in = side(&config, &token_in);
        let (ra, rb) = RESERVES.get_or_default();
        let (reserve_in, reserve_out, token_out) =
            if a_in { (ra, rb, &config.token_b) } else { (rb, ra, &config.token_a) };
        let out = amount_out(amount_in, reserve_in, reserve_out);
        ensure!(out > 0, "swap of {amount_in} {token_in} buys nothing");
        let min_out = min_out.unwrap_or(0);
        ensure!(out >= min_out, "swap would buy {out}, under the minimum {min_out}");
        // Pay first, collect second: see the module docs.
        pay(token_out, &trader, out);
        collect(&token_in, &trader, amount_in);
        let Some(new_in) = reserve_in.checked_add(amount_in) else { revert("reserve overflow") };
        let new_out = reserve_out - out;
        RESERVES.set(&if a_in { (new_in, new_out) } else { (new_out, new_in) });
        json::emit("swap", &Swap { trader: &trader, token_in: &token_in, amount_in, amount_out: out });
        out
    }

    /// What selling `amount_in` of `token_in` would buy now.
    fn quote(token_in: String, amount_in: u64) -> u64 {
        let config = config();
        let (ra, rb) = RESERVES.get_or_default();
        if side(&config, &token_in) { amount_out(amount_in, ra, rb) } else { amount_out(amount_in, rb, ra) }
    }

    /// The pair, its reserves and the shares outstanding.
    fn pool() -> Pool {
        let Config { token_a, token_b } = config();
        let (reserve_a, reserve_b) = RESERVES.get_or_default();
        Pool { token_a, token_b, reserve_a, reserve_b, shares: TOTAL_SHARES.get_or_default() }
    }

    /// The shares `of` holds.
    fn shares(of: String) -> u64 {
        SHARES.get_or_default(&of)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::collections::BTreeMap;
    use std::format;
    use std::vec::Vec;

    use semel_sdk::testing::MockHost;

    /// Two tokens (alice holds all of both), an exchange, and alice's deposit of
    /// 1000 A + 4000 B; bob holds 500 A.
    fn market() -> MockHost {
        let host = MockHost::new();
        host.set_sender("alice");
        host.deploy("tok_a", token::METHODS, r#"{"supply":100000}"#)
            .unwrap();
        host.deploy("tok_b", token::METHODS, r#"{"supply":100000}"#)
            .unwrap();
        host.deploy(
            "dex",
            super::METHODS,
            r#"{"token_a":"tok_a","token_b":"tok_b"}"#,
        )
        .unwrap();
        for t in ["tok_a", "tok_b"] {
            host.call(t, "approve", r#"{"spender":"dex","amount":1000000}"#)
                .unwrap();
        }
        let shares: u64 = host.query(
            "dex",
            "add_liquidity",
            r#"{"amount_a":1000,"amount_b":4000}"#,
        );
        assert_eq!(shares, 2000);
        host.call("tok_a", "transfer", r#"{"to":"bob","amount":500}"#)
            .unwrap();
        host.take_events();
        host
    }

    fn balance(host: &MockHost, token: &str, of: &str) -> u64 {
        host.query(token, "balance", &format!(r#"{{"of":"{of}"}}"#))
    }

    fn reserves(host: &MockHost) -> (u64, u64) {
        #[derive(serde::Deserialize)]
        struct PoolView {
            reserve_a: u64,
            reserve_b: u64,
        }
        let pool: PoolView = host.query("dex", "pool", "");
        (pool.reserve_a, pool.reserve_b)
    }

    fn snapshot(host: &MockHost) -> Vec<BTreeMap<Vec<u8>, Vec<u8>>> {
        ["tok_a", "tok_b", "dex"]
            .iter()
            .map(|c| host.storage(c))
            .collect()
    }

    #[test]
    fn a_swap_pays_both_ways_and_keeps_k() {
        let host = market();
        host.set_sender("bob");
        host.call("tok_a", "approve", r#"{"spender":"dex","amount":100}"#)
            .unwrap();
        let quoted: u64 = host.query("dex", "quote", r#"{"token_in":"tok_a","amount_in":100}"#);
        let out: u64 = host.query(
            "dex",
            "swap",
            r#"{"token_in":"tok_a","amount_in":100,"min_out":300}"#,
        );
        assert_eq!(out, quoted);
        // 100 in at 0.3% fee against 1000/4000: 99.7 * 4000 / 1099.7 = 362.6…
        assert_eq!(out, 362);
        assert_eq!(balance(&host, "tok_a", "bob"), 400);
        assert_eq!(balance(&host, "tok_b", "bob"), 362);
        let (ra, rb) = reserves(&host);
        assert_eq!((ra, rb), (1100, 3638));
        assert!(ra * rb >= 1000 * 4000, "k never falls");
        assert_eq!(balance(&host, "tok_a", "dex"), 1100);
        assert_eq!(balance(&host, "tok_b", "dex"), 3638);
        let topics: Vec<_> = host
            .events()
            .iter()
            .map(|e| (e.contract.clone(), e.topic.clone()))
            .collect();
        assert!(topics.contains(&("dex".into(), "swap".into())));
        assert_eq!(topics.iter().filter(|(_, t)| t == "transfer").count(), 2);
    }

    #[test]
    fn a_swap_that_cannot_be_paid_leaves_all_three_untouched() {
        let host = market();
        host.set_sender("bob");
        // No allowance for the exchange: the payout of tok_b happens, then the
        // collection of tok_a fails, and everything is undone.
        let before = snapshot(&host);
        let err = host
            .call("dex", "swap", r#"{"token_in":"tok_a","amount_in":100}"#)
            .unwrap_err();
        assert!(
            err.contains("payment of 100 tok_a from bob failed"),
            "{err}"
        );
        assert!(err.contains("insufficient allowance"), "{err}");
        assert_eq!(snapshot(&host), before);
        assert!(host.events().is_empty());

        // Allowance but not the balance: the same.
        host.call("tok_a", "approve", r#"{"spender":"dex","amount":100000}"#)
            .unwrap();
        let before = snapshot(&host);
        host.take_events();
        let err = host
            .call("dex", "swap", r#"{"token_in":"tok_a","amount_in":600}"#)
            .unwrap_err();
        assert!(err.contains("insufficient balance"), "{err}");
        assert_eq!(snapshot(&host), before);
        assert!(host.events().is_empty());
    }

    #[test]
    fn a_swap_under_its_minimum_reverts() {
        let host = market();
        host.set_sender("bob");
        host.call("tok_a", "approve", r#"{"spender":"dex","amount":100}"#)
            .unwrap();
        let before = snapshot(&host);
        let err = host
            .call(
                "dex",
                "swap",
                r#"{"token_in":"tok_a","amount_in":100,"min_out":363}"#,
            )
            .unwrap_err();
        assert!(err.contains("under the minimum"), "{err}");
        assert_eq!(snapshot(&host), before);
    }

    #[test]
    fn swapping_b_for_a_and_unknown_tokens() {
        let host = market();
        let out: u64 = host.query("dex", "swap", r#"{"token_in":"tok_b","amount_in":400}"#);
        // 398.8 * 1000 / 4398.8 = 90.6…
        assert_eq!(out, 90);
        assert_eq!(reserves(&host), (910, 4400));
        let err = host
            .call("dex", "swap", r#"{"token_in":"tok_c","amount_in":1}"#)
            .unwrap_err();
        assert!(err.contains("not traded here"), "{err}");
    }

    #[test]
    fn liquidity_goes_in_at_the_ratio_and_comes_back_out() {
        let host = market();
        // Offers 100 A and 1000 B; the ratio takes 100 A and 400 B.
        let minted: u64 = host.query(
            "dex",
            "add_liquidity",
            r#"{"amount_a":100,"amount_b":1000}"#,
        );
        assert_eq!(minted, 200);
        assert_eq!(reserves(&host), (1100, 4400));
        assert_eq!(
            host.query::<u64>("dex", "shares", r#"{"of":"alice"}"#),
            2200
        );

        let before_a = balance(&host, "tok_a", "alice");
        host.call("dex", "remove_liquidity", r#"{"shares":1100}"#)
            .unwrap();
        assert_eq!(reserves(&host), (550, 2200));
        assert_eq!(balance(&host, "tok_a", "alice"), before_a + 550);

        host.set_sender("bob");
        let err = host
            .call("dex", "remove_liquidity", r#"{"shares":1}"#)
            .unwrap_err();
        assert!(err.contains("bob holds 0 shares"), "{err}");
    }

    #[test]
    fn a_deposit_without_the_second_token_is_undone() {
        let host = market();
        host.set_sender("bob");
        host.call("tok_a", "approve", r#"{"spender":"dex","amount":1000}"#)
            .unwrap();
        let before = snapshot(&host);
        // bob has tok_a but no tok_b: the first collection succeeds, the second fails.
        let err = host
            .call("dex", "add_liquidity", r#"{"amount_a":100,"amount_b":400}"#)
            .unwrap_err();
        assert!(err.contains("tok_b"), "{err}");
        assert_eq!(snapshot(&host), before);
    }

    #[test]
    fn isqrt_is_exact_on_squares_and_floors_between() {
        assert_eq!(super::isqrt(0), 0);
        assert_eq!(super::isqrt(4_000_000), 2000);
        assert_eq!(super::isqrt(15), 3);
        assert_eq!(
            super::isqrt(u128::from(u64::MAX) * u128::from(u64::MAX)),
            u128::from(u64::MAX)
        );
    }
}
