//! Text that came from a contract, made safe to show on a terminal.

/// `text` with every control character (escape sequences, carriage returns, newlines,
/// bells) shown as its Rust escape, so that contract text cannot drive the terminal.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c.is_control() {
            true => out.extend(c.escape_default()),
            false => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(super::printable("a\u{1b}[2J\n\tb é"), r"a\u{1b}[2J\n\tb é");
    }
}
