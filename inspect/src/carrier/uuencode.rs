//! uuencoded files in a text part: `begin MODE NAME` (or `begin-base64 MODE NAME`) lines.
//!
//! Several clients (Outlook, Thunderbird with an add-on, many web mailers) show such a block
//! as an attachment named NAME, so the name is judged like a declared file name. No I/O.

/// The file name of every `begin` line in `text` (lines split on LF; a CR before it and
/// surrounding white space are ignored, white space before `begin` too: a reader that
/// splits the line into words finds the same three).
pub(crate) fn begin_names(text: &[u8]) -> Vec<String> {
    let mut names = Vec::new();
    let mut from = 0;
    while let Some(found) = memchr::memmem::find(&text[from..], b"begin") {
        let at = from + found;
        from = at + 5;
        let line_start = memchr::memrchr2(b'\n', b'\r', &text[..at]).map_or(0, |i| i + 1);
        let indent = String::from_utf8_lossy(&text[line_start..at]);
        if !indent.chars().all(char::is_whitespace) {
            continue;
        }
        let end = memchr::memchr(b'\n', &text[at..]).map_or(text.len(), |i| at + i);
        if let Some(name) = parse_begin(&text[at..end]) {
            names.push(name);
        }
    }
    names
}

/// `begin[-base64] <mode> <name>` → name.
fn parse_begin(line: &[u8]) -> Option<String> {
    let line = String::from_utf8_lossy(line);
    let rest = line.strip_prefix("begin")?;
    let rest = rest.strip_prefix("-base64").unwrap_or(rest);
    // Any white space separates the words (a lenient reader splits on CR too).
    if !rest.starts_with(char::is_whitespace) {
        return None;
    }
    let rest = rest.trim_start();
    let mode_len = rest.find(char::is_whitespace)?;
    // Any mode token counts: lenient decoders do not check it is octal (a fuzzer found
    // `begin 288 evil.exe`), and a false alarm costs less than a missed file.
    if mode_len == 0 {
        return None;
    }
    let name = rest[mode_len..].trim_matches(|c: char| c.is_whitespace());
    (!name.is_empty()).then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn begin_lines_are_found() {
        let text = b"hello\r\nbegin 644 evil.exe\r\nM35H`\r\n`\r\nend\r\nbegin-base64 755 b.scr\nx\nnot begin 644 c.exe\n";
        assert_eq!(begin_names(text), ["evil.exe", "b.scr"]);
        assert!(begin_names(b"beginning 644 b.exe\nbegin only\n").is_empty());
        assert_eq!(begin_names(b"begin 288 evil.exe\n"), ["evil.exe"]);
        assert_eq!(begin_names(b"begin 6\x01\rvil.exe\n"), ["vil.exe"]);
        assert_eq!(
            begin_names(b" \t\xc2\xa0begin 644 evil.scr\nx begin 644 no.exe\n"),
            ["evil.scr"]
        );
    }
}
