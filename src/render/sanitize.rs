//! Text from the live world (annotation values, display names, server
//! error messages) made safe before it reaches a terminal, a log or a pull
//! request: one function, used wherever such text enters rendering.
//!
//! What a hostile or broken value could do if printed raw: an ESC sequence
//! restyles the terminal, moves the cursor or rewrites earlier lines (a plan
//! that reads "No changes"); a bidirectional override (U+202E) or isolate
//! (U+2066..U+2069) shows text in another order than it is (Trojan Source,
//! CVE-2021-42574); a mark (U+200E/U+200F) or zero-width character hides in
//! a name. Every such character is shown as `\u{..}`, so the user sees that
//! something is there and two different values never print alike.

/// `text` with every control character (C0 but the newline when
/// `keep_newlines`, DEL, C1) and every bidirectional or invisible formatting
/// character shown as `\u{..}`. A tab and, without `keep_newlines`, a
/// newline become a space; a carriage return is dropped.
pub(crate) fn sanitize(text: &str, keep_newlines: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' if keep_newlines => out.push('\n'),
            '\n' | '\t' => out.push(' '),
            '\r' => {}
            c if c.is_control() || is_hidden_format(c) => {
                out.push_str(&c.escape_unicode().to_string())
            }
            c => out.push(c),
        }
    }
    out
}

/// Bidirectional controls and invisible characters that change how
/// neighbouring text is shown without being seen themselves.
fn is_hidden_format(c: char) -> bool {
    matches!(
        c,
        '\u{061C}'                  // Arabic letter mark
        | '\u{200B}'..='\u{200F}'   // zero-width space, joiners, LRM, RLM
        | '\u{2028}' | '\u{2029}'   // line and paragraph separators
        | '\u{202A}'..='\u{202E}'   // embeddings and overrides
        | '\u{2060}'..='\u{2069}'   // word joiner, invisible operators, isolates
        | '\u{FEFF}'                // zero-width no-break space (BOM)
        | '\u{FFF9}'..='\u{FFFB}' // interlinear annotation
    )
}

/// The longest run without whitespace an error message shows whole.
pub(crate) const LONG_RUN: usize = 512;
/// How much of a longer run it shows.
const KEPT: usize = 200;

/// `text` with every run of non-whitespace longer than [`LONG_RUN`] bytes
/// (a 3 MB one-line value quoted by a server) cut to its first 200 bytes
/// and `… (N more bytes)`. A long URL of a normal message is far shorter.
pub(crate) fn cut_long(text: &str) -> String {
    if text.len() <= LONG_RUN {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len().min(8 * 1024));
    let mut rest = text;
    while !rest.is_empty() {
        let start = rest
            .find(|c: char| !c.is_whitespace())
            .unwrap_or(rest.len());
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let run = &rest[..end];
        if run.len() > LONG_RUN {
            let mut keep = KEPT;
            while !run.is_char_boundary(keep) {
                keep -= 1;
            }
            out.push_str(&run[..keep]);
            out.push_str(&format!("… ({} more bytes)", run.len() - keep));
        } else {
            out.push_str(run);
        }
        rest = &rest[end..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_shown_not_obeyed() {
        assert_eq!(sanitize("a\u{1b}[31mb", false), "a\\u{1b}[31mb");
        assert_eq!(sanitize("a\r\nb\tc", false), "a b c");
        assert_eq!(sanitize("a\nb", true), "a\nb");
        assert_eq!(
            sanitize("a\u{7f}\u{85}\u{9b}b", true),
            "a\\u{7f}\\u{85}\\u{9b}b"
        );
    }

    #[test]
    fn bidirectional_and_invisible_characters_are_shown() {
        assert_eq!(
            sanitize("admin\u{202E}gpj.exe", false),
            "admin\\u{202e}gpj.exe"
        );
        for c in [
            '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}', '\u{200E}', '\u{200F}', '\u{202A}',
            '\u{061C}', '\u{200B}', '\u{FEFF}', '\u{2028}',
        ] {
            let shown = sanitize(&format!("x{c}y"), true);
            assert!(!shown.contains(c), "{c:?} got through: {shown}");
            assert!(shown.starts_with("x\\u{"), "{shown}");
        }
        // Ordinary non-ASCII text is left alone.
        assert_eq!(sanitize("café → 東京 ✓", false), "café → 東京 ✓");
    }

    #[test]
    fn long_runs_are_cut_with_their_size() {
        let value = "v".repeat(3 * 1024 * 1024);
        let text = format!("annotation is too long: {value} (limit 256 KiB)");
        let cut = cut_long(&text);
        assert!(cut.len() < 400, "{}", cut.len());
        assert!(cut.starts_with("annotation is too long: vvvv"), "{cut}");
        assert!(
            cut.ends_with(&format!(
                "… ({} more bytes) (limit 256 KiB)",
                value.len() - 200
            )),
            "{cut}"
        );
        let url = format!("see https://example.com/{}", "a".repeat(300));
        assert_eq!(cut_long(&url), url, "normal URLs stay whole");
        // Multi-byte text is cut on a character boundary.
        let wide = "東".repeat(1000);
        assert!(cut_long(&wide).contains("… ("));
    }
}
