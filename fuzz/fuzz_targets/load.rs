//! Feeds arbitrary bytes (as lossy UTF-8) to the configuration loader. It must not panic, and
//! every error must point at a line and column that exist in the text.

#![no_main]

use libfuzzer_sys::fuzz_target;

/// The highest line a position in `text` can be on, whichever characters the YAML parser takes
/// for line breaks.
fn max_line(text: &str) -> usize {
    let mut lines = 1;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}' => lines += 1,
            _ => {}
        }
    }
    lines
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let out = weft_core::parse_str("fuzz.yaml", &text);
    let last = max_line(&text);
    for e in &out.errors {
        let loc = &e.location;
        assert_eq!(loc.file, "fuzz.yaml", "{e}");
        assert!(
            loc.line >= 1 && loc.column >= 1,
            "error without a place: {e}"
        );
        assert!(loc.line <= last, "error past the last line ({last}): {e}");
        assert!(
            !e.message.trim().is_empty(),
            "error without a message: {e:?}"
        );
        for r in &e.related {
            assert!(
                r.line >= 1 && r.line <= last,
                "related place {r} out of the text: {e}"
            );
        }
    }
    for r in &out.config.resources {
        assert!(
            r.origin.line >= 1 && r.origin.line <= last,
            "{} at {}",
            r.resource.id(),
            r.origin
        );
    }
});
