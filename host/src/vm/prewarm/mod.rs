//! Work done ahead of a run so that a transaction's latency is only its own: a store
//! made ready with the first contract instantiated ([`early`]), the thread that frees
//! spent stores and makes the next one ready ([`recycler`]), and which code each
//! contract runs ([`hints`]), to know what to instantiate. None of it changes a receipt;
//! each has a switch in `HostOptions` (`prewarm`, `recycler`), and with both off a run
//! does everything itself, under the writer lock.

pub(crate) mod early;
pub(crate) mod hints;
pub(crate) mod recycler;
