//! Declaring contract methods: [`contract_methods!`] and [`ensure!`].
//!
//! On `wasm32` each method becomes an exported `extern "C" fn name()` of wasm type
//! `[] -> []`, which the host calls by name. Natively it is a plain Rust `fn()`, listed
//! in a `METHODS` table that [`crate::testing::MockHost`] deploys: a panic cannot
//! unwind through `extern "C"`, and unmangled names such as `init` or `get` would
//! clash with C symbols in a test binary.

/// Declares the contract's methods; use it once per contract, at the crate root.
///
/// Parameters are read from the call's JSON argument by name (`{"to": "bob", "amount":
/// 5}` for `fn transfer(to: String, amount: u64)`); unknown fields are refused. A
/// method without parameters ignores its argument. A return value is written as the
/// call's output in JSON; a method without one outputs nothing. Parameter types must
/// be owned (`String`, not `&str`) and implement `serde::Deserialize`; return types
/// implement `serde::Serialize`.
///
/// ```ignore
/// semel_sdk::contract_methods! {
///     /// Runs once, at deploy.
///     fn init(supply: u64) { /* … */ }
///     fn balance(of: String) -> u64 { /* … */ }
/// }
/// ```
///
/// The serde derive this expands to names the SDK as `semel_sdk`: depend on it under
/// that name.
#[macro_export]
macro_rules! contract_methods {
    ($(
        $(#[$attr:meta])*
        fn $name:ident ( $($arg:ident : $ty:ty),* $(,)? ) $(-> $ret:ty)? $body:block
    )*) => {
        $(
            $(#[$attr])*
            #[cfg(target_arch = "wasm32")]
            #[unsafe(no_mangle)]
            pub extern "C" fn $name() {
                $crate::contract_methods!(@body ($($arg: $ty),*) ($($ret)?) $body);
            }

            $(#[$attr])*
            #[cfg(not(target_arch = "wasm32"))]
            pub fn $name() {
                $crate::contract_methods!(@body ($($arg: $ty),*) ($($ret)?) $body);
            }
        )*

        /// Every method, by name, for `semel_sdk::testing::MockHost::deploy`.
        #[cfg(not(target_arch = "wasm32"))]
        pub const METHODS: $crate::testing::Methods = &[$((stringify!($name), $name)),*];
    };

    (@body ($($arg:ident: $ty:ty),*) ($($ret:ty)?) $body:block) => {
        $crate::contract_methods!(@args $($arg: $ty),*);
        #[allow(unused_mut, clippy::redundant_closure_call)]
        let result = (move || $(-> $ret)? { $body })();
        $crate::contract_methods!(@output result $($ret)?);
    };

    (@args) => {};
    (@args $($arg:ident: $ty:ty),+) => {
        #[derive($crate::__private::serde::Deserialize)]
        #[serde(crate = "semel_sdk::__private::serde", deny_unknown_fields)]
        struct Args { $($arg: $ty),+ }
        let Args { $($arg),+ } = $crate::__private::args::<Args>();
    };

    (@output $result:ident) => { let () = $result; };
    (@output $result:ident $ret:ty) => { $crate::__private::output(&$result); };
}

/// Reverts with a formatted message unless `cond` holds.
///
/// ```ignore
/// semel_sdk::ensure!(amount <= balance, "balance {balance} is less than {amount}");
/// ```
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            $crate::revert(&$crate::__private::format!($($msg)+));
        }
    };
}
