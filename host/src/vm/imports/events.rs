//! Host functions that leave a trace: `emit` (an event in the receipt, unless its frame
//! reverts) and `log` (debug text to stderr when the host prints contract logs; never
//! recorded).

use wasmtime::Linker;

use super::guest::*;
use crate::limits::*;
use crate::vm::abi::IMPORT_MODULE;
use crate::vm::context::{Event, TxCtx, charge};
use crate::vm::gas::*;

/// Defines this family's host functions in `linker`.
pub(super) fn define(linker: &mut Linker<TxCtx>) -> Res<()> {
    let m = IMPORT_MODULE;
    linker.func_wrap(
        m,
        "emit",
        |mut c: Ctx<'_>, tptr: i32, tlen: i32, dptr: i32, dlen: i32| -> Res<()> {
            let bytes = gas_bytes(tlen).saturating_add(gas_bytes(dlen));
            let tn = capped(
                tlen,
                EVENT_TOPIC_BYTES_MAX,
                "event topic",
                "EVENT_TOPIC_BYTES_MAX",
            )?;
            let dn = capped(
                dlen,
                EVENT_DATA_BYTES_MAX,
                "event data",
                "EVENT_DATA_BYTES_MAX",
            )?;
            charge(&mut c, HOST_CALL_GAS + EVENT_GAS + EVENT_BYTE_GAS * bytes)?;
            let topic = String::from_utf8(read(&mut c, tptr, tn)?)
                .map_err(|_| fault("event topic is not UTF-8".into()))?;
            let data = read(&mut c, dptr, dn)?;
            let ctx = c.data_mut();
            ctx.count_event().map_err(wasmtime::Error::new)?;
            if !ctx.read_only {
                let contract = ctx.frame().contract.to_string();
                ctx.events.push(Event {
                    contract,
                    topic,
                    data,
                });
            }
            Ok(())
        },
    )?;
    linker.func_wrap(m, "log", |mut c: Ctx<'_>, ptr: i32, len: i32| -> Res<()> {
        let n = capped(
            len,
            LOG_MESSAGE_BYTES_MAX,
            "log message",
            "LOG_MESSAGE_BYTES_MAX",
        )?;
        charge(&mut c, HOST_CALL_GAS + COPY_BYTE_GAS * gas_bytes(len))?;
        let bytes = read(&mut c, ptr, n)?;
        if c.data().print_logs {
            // Control characters escaped: contract text never drives the terminal.
            let text = crate::text::printable(&String::from_utf8_lossy(&bytes));
            eprintln!("[{}] {text}", c.data().frame().contract);
        }
        Ok(())
    })?;
    Ok(())
}
