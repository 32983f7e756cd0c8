//! Text bound for a terminal. Config files come from other people, and their strings reach error
//! messages and progress lines: [`terminal_safe`] shows control characters escaped so they cannot
//! move the cursor, clear the screen or retitle the window. Strings in, strings out.
//!
//! [`note!`] writes a message to stderr that the program can do without: when stderr
//! is a pipe whose reader has gone (`lambda-hat 2>&1 | head -2`), `eprintln!` would panic (exit
//! 101, and mid-sweep the sweep with it); `note!` drops the message and carries on.

/// `eprintln!` that ignores a failed write: a progress line nobody can read is no reason to
/// panic (see the module doc). Used as `crate::terminal::note!`; the binaries, outside the
/// crate, write their last error message the same way by hand.
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}
pub(crate) use note;

/// `text` safe for a terminal: control characters other than newline and tab (ESC sequences
/// could move the cursor, clear the screen or retitle the window) are shown escaped. Config
/// files come from other people, and their strings reach error messages and progress lines.
pub fn terminal_safe(text: &str) -> std::borrow::Cow<'_, str> {
    if !text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return std::borrow::Cow::Borrowed(text);
    }
    text.chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_for_the_terminal_but_newlines_stay() {
        assert_eq!(terminal_safe("plain\n\tline"), "plain\n\tline");
        let shown = terminal_safe("store \u{1b}[2J\u{7}here\r");
        assert!(
            !shown
                .chars()
                .any(|c| c == '\u{1b}' || c == '\u{7}' || c == '\r')
        );
        assert_eq!(shown, "store \\u{1b}[2J\\u{7}here\\r");
    }
}
