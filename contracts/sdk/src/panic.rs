//! The panic handler on `wasm32`: a panic reverts the call with the panic's message.
//!
//! The message is formatted into a fixed buffer on the stack, not the heap, because
//! the panic may be an allocation failure. Longer messages are cut at the buffer's end
//! (on a UTF-8 boundary), well under the host's revert message limit.

use core::fmt::Write;
use core::panic::PanicInfo;

/// Longest panic message kept, in bytes.
const PANIC_MESSAGE_BYTES_MAX: usize = 512;

struct Truncating {
    buf: [u8; PANIC_MESSAGE_BYTES_MAX],
    len: usize,
}

impl Write for Truncating {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for ch in s.chars() {
            let mut utf8 = [0u8; 4];
            let bytes = ch.encode_utf8(&mut utf8).as_bytes();
            let Some(dst) = self.buf.get_mut(self.len..self.len + bytes.len()) else {
                return Err(core::fmt::Error);
            };
            dst.copy_from_slice(bytes);
            self.len += bytes.len();
        }
        Ok(())
    }
}

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    let mut msg = Truncating {
        buf: [0; PANIC_MESSAGE_BYTES_MAX],
        len: 0,
    };
    let _ = write!(msg, "panicked: {}", info.message());
    // Only whole characters were written, so this cannot fail.
    let text = core::str::from_utf8(&msg.buf[..msg.len]).unwrap_or("panicked");
    crate::revert(text)
}
