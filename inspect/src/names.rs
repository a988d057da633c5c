//! File names as a mail client saves them.
//!
//! A sender controls the declared name; the client turns it into a file name on disk. Rules
//! must match what lands on disk, so every declared name is normalised the way lenient
//! clients do it (SPEC §4, "Names"): cut at the first NUL, Unicode bidi and zero-width
//! controls removed, only the last path component (`/` or `\`) kept, leading white space
//! and trailing white space and dots removed (Windows drops them: `evil.exe. ` opens as
//! `evil.exe`). Control characters inside the name are removed in one more variant.
//!
//! Besides mail-parser's decoded parameters, [`raw_parameter_names`] reads `name`/`filename`
//! parameters straight from the field text with its own small RFC 2231/2047 decoding, so a
//! parameter mail-parser drops or spells differently still counts. No I/O here.

/// The names a client could save for the declared name `declared`: the normalised name
/// first, then (when different) the variant without control characters.
pub(crate) fn client_names(declared: &str) -> Vec<String> {
    let cut = declared.split('\0').next().unwrap_or_default();
    let visible: String = cut.chars().filter(|&c| !is_invisible(c)).collect();
    let last = visible.rsplit(['/', '\\']).next().unwrap_or_default();
    let mut names = Vec::with_capacity(2);
    push_trimmed(last, &mut names);
    let no_controls: String = last.chars().filter(|c| !c.is_control()).collect();
    push_trimmed(&no_controls, &mut names);
    names
}

/// Adds every client name of `declared` to `names` (without duplicates).
pub(crate) fn add_client_names(declared: &str, names: &mut Vec<String>) {
    for name in client_names(declared) {
        if !names.contains(&name) {
            names.push(name);
        }
    }
}

/// Every `name`/`filename` parameter value in one unfolded Content-Type or
/// Content-Disposition field value, decoded: RFC 2231 continuations, charset and
/// percent-encoding, and RFC 2047 encoded words. `wanted` is `name` or `filename`.
pub(crate) fn raw_parameter_names(value: &str, wanted: &str) -> Vec<String> {
    let mut plain: Vec<String> = Vec::new();
    // (index, extended, text) of `wanted*N` / `wanted*N*` / `wanted*` pieces.
    let mut pieces: Vec<(u32, bool, String)> = Vec::new();
    for (name, text) in parameters(value) {
        let lower = name.to_ascii_lowercase();
        let Some(rest) = lower.strip_prefix(wanted) else {
            continue;
        };
        if rest.is_empty() {
            plain.push(decode_encoded_words(&text));
        } else if let Some(star) = rest.strip_prefix('*') {
            let extended = star.ends_with('*') || star.is_empty();
            let index = star.trim_end_matches('*').parse::<u32>().unwrap_or(0);
            pieces.push((index, extended, text));
        }
    }
    if !pieces.is_empty() {
        pieces.sort_by_key(|(index, _, _)| *index);
        let first = joined_pieces(&pieces, Prefix::FirstQuotes);
        // A first piece with more than two `'` has two readings: the charset and language
        // end at the second quote (RFC 2231) or, for a lenient reader, at the last one
        // (fuzz finding).
        let last = joined_pieces(&pieces, Prefix::LastQuote);
        plain.push(decode_encoded_words(&first));
        if last != first {
            plain.push(decode_encoded_words(&last));
        }
    }
    plain
}

/// Where the `charset'language'` prefix of a first extended piece ends.
#[derive(Clone, Copy)]
enum Prefix {
    FirstQuotes,
    LastQuote,
}

/// The RFC 2231 pieces (sorted by index) joined and percent-decoded into one value.
fn joined_pieces(pieces: &[(u32, bool, String)], prefix: Prefix) -> String {
    let mut bytes: Vec<u8> = Vec::new();
    let mut charset_utf8 = true;
    for (position, (_, extended, text)) in pieces.iter().enumerate() {
        let mut text = text.as_str();
        if *extended && position == 0 {
            let split = match prefix {
                Prefix::FirstQuotes => {
                    let mut split = text.splitn(3, '\'');
                    match (split.next(), split.next(), split.next()) {
                        (Some(charset), Some(_), Some(rest)) => Some((charset, rest)),
                        _ => None,
                    }
                }
                Prefix::LastQuote => text.rfind('\'').map(|at| {
                    let charset = text.split('\'').next().unwrap_or_default();
                    (charset, &text[at + 1..])
                }),
            };
            if let Some((charset, rest)) = split {
                charset_utf8 = !charset.eq_ignore_ascii_case("iso-8859-1")
                    && !charset.eq_ignore_ascii_case("latin1");
                text = rest;
            }
        }
        if *extended {
            bytes.extend(percent_decode(text));
        } else {
            bytes.extend_from_slice(text.as_bytes());
        }
    }
    if charset_utf8 {
        String::from_utf8_lossy(&bytes).into_owned()
    } else {
        bytes.iter().map(|&b| char::from(b)).collect()
    }
}

/// `(name, value)` of each `;`-separated parameter, quoted strings unquoted.
fn parameters(value: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = value.chars().peekable();
    // Skip the type/subtype or disposition type.
    for c in chars.by_ref() {
        if c == ';' {
            break;
        }
    }
    loop {
        let mut name = String::new();
        for c in chars.by_ref() {
            match c {
                '=' => break,
                ';' => name.clear(),
                _ => name.push(c),
            }
        }
        let name = name.trim().to_owned();
        if name.is_empty() && chars.peek().is_none() {
            return out;
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut text = String::new();
        let mut lenient = Vec::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => text.extend(chars.next()),
                    _ => text.push(c),
                }
            }
            let trailing = trailing_text(&mut chars);
            let trailing = trailing.trim();
            if !trailing.is_empty() {
                // Text after the closing quote (fuzz finding: `name="a; name="evil.exe"`):
                // a lenient reader glues it on, one that quotes from the first to the last
                // `"` keeps the quote too. Both readings are judged.
                let glued = format!("{text}{}", trailing.replace('"', ""));
                let spanned = format!("{text}\"{}", trailing.strip_suffix('"').unwrap_or(trailing));
                lenient = vec![glued, spanned];
            }
        } else {
            for c in chars.by_ref() {
                if c == ';' {
                    break;
                }
                text.push(c);
            }
            text = text.trim().to_owned();
        }
        if !name.is_empty() {
            out.push((name.clone(), text));
            out.extend(lenient.into_iter().map(|reading| (name.clone(), reading)));
        }
        if chars.peek().is_none() {
            return out;
        }
    }
}

/// What follows a quoted value up to the `;` that ends the parameter, where a `"` in it
/// opens a quoted stretch that a `;` does not end.
fn trailing_text(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> String {
    let mut trailing = String::new();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match c {
            ';' if !quoted => break,
            '"' => quoted = !quoted,
            '\\' if quoted => {
                trailing.push(c);
                trailing.extend(chars.next());
                continue;
            }
            _ => {}
        }
        trailing.push(c);
    }
    trailing
}

fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// Decodes RFC 2047 encoded words (`=?charset?B|Q?text?=`) anywhere in `text`; UTF-8 and
/// ASCII as such, any other charset byte for byte as Latin-1 (enough to see a `.exe`).
pub(crate) fn decode_encoded_words(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find("=?") {
        let decoded = decode_word(&rest[open..]);
        match decoded {
            Some((word, used)) => {
                let between = &rest[..open];
                // White space between two encoded words is dropped (RFC 2047 §6.2).
                if !(between.trim().is_empty() && out.ends_with('\u{1}')) {
                    out.push_str(between);
                }
                out.push_str(&word);
                out.push('\u{1}');
                rest = &rest[open + used..];
            }
            None => {
                out.push_str(&rest[..open + 2]);
                rest = &rest[open + 2..];
            }
        }
    }
    out.push_str(rest);
    out.replace('\u{1}', "")
}

/// One encoded word at the start of `text`: its text and the bytes it used.
fn decode_word(text: &str) -> Option<(String, usize)> {
    let inner = text.strip_prefix("=?")?;
    let (charset, rest) = inner.split_once('?')?;
    let (encoding, rest) = rest.split_once('?')?;
    let end = rest.find("?=")?;
    let payload = &rest[..end];
    // Any other encoding letter is read as Q: a lenient client may, and reading more
    // names than a client can only make popgate stricter (fuzz finding).
    let bytes = match encoding {
        "B" | "b" => crate::decode::base64(payload.as_bytes()),
        _ => crate::decode::quoted_printable(payload.replace('_', " ").as_bytes()),
    };
    // RFC 2231 §5 lets a language follow the charset (`utf-8*en`); `used` counts it.
    let name = charset.split('*').next().unwrap_or_default();
    let word = if name.eq_ignore_ascii_case("utf-8") || name.eq_ignore_ascii_case("us-ascii") {
        String::from_utf8_lossy(&bytes).into_owned()
    } else {
        bytes.iter().map(|&b| char::from(b)).collect()
    };
    let used = 2 + charset.len() + 1 + encoding.len() + 1 + end + 2;
    Some((word, used.min(text.len())))
}

fn push_trimmed(name: &str, names: &mut Vec<String>) {
    let trimmed = name
        .trim_start()
        .trim_end_matches(|c: char| c.is_whitespace() || c == '.');
    if !trimmed.is_empty() && !names.iter().any(|n| n == trimmed) {
        names.push(trimmed.to_owned());
    }
}

/// Bidi controls and zero-width characters: invisible in a file manager, and able to
/// reorder what the user reads (`evil\u{202E}txt.exe` shows as `evilexe.txt`).
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised_as_clients_save_them() {
        let cases: &[(&str, &str)] = &[
            ("evil.exe\t", "evil.exe"),
            ("evil.exe\0.txt", "evil.exe"),
            ("evil.exe. . ", "evil.exe"),
            ("..\\..\\windows\\evil.exe", "evil.exe"),
            ("dir/evil.exe", "evil.exe"),
            ("evil\u{202E}txt.exe", "eviltxt.exe"),
            ("  spaced.exe", "spaced.exe"),
        ];
        for (declared, saved) in cases {
            assert_eq!(client_names(declared)[0], *saved, "{declared:?}");
        }
        assert!(client_names("evil.ex\te").contains(&"evil.exe".to_owned()));
        assert!(client_names("\0").is_empty());
    }

    #[test]
    fn raw_parameters_decode_rfc2231_and_rfc2047() {
        let value = "attachment; filename*0*=utf-8''%65vil; filename*1=\".e\"; filename*2=xe";
        assert_eq!(raw_parameter_names(value, "filename"), ["evil.exe"]);
        let value = "attachment; filename*=utf-8''evil.exe%00.txt";
        assert_eq!(raw_parameter_names(value, "filename"), ["evil.exe\0.txt"]);
        let value = "application/x-foo; name=\"=?utf-8?b?c2NyZWVuLnNjcg==?=\"";
        assert_eq!(raw_parameter_names(value, "name"), ["screen.scr"]);
        let value = "a; name=\"=?iso-8859-1?q?ev?= =?iso-8859-1?q?il=2Eexe?=\"; x=1";
        assert_eq!(raw_parameter_names(value, "name"), ["evil.exe"]);
        let value = "a; filename=\"=?iso-8859-1?Q\u{ff}?evil=2Eexe?=\"";
        assert_eq!(raw_parameter_names(value, "filename"), ["evil.exe"]);
        let value = "attachment; filename=\"a\\\"b.exe\"; filename=c.scr";
        assert_eq!(
            raw_parameter_names(value, "filename"),
            ["a\"b.exe", "c.scr"]
        );
        assert!(raw_parameter_names("text/plain; charset=x", "name").is_empty());
    }

    #[test]
    fn a_first_piece_with_more_quotes_is_read_both_ways() {
        let value = "attachment; filename*0*=utf-8''z%00 x''%65vil; filename*1=.exe";
        let names = raw_parameter_names(value, "filename");
        assert_eq!(names[0], "z\0 x''evil.exe");
        assert_eq!(names[1], "evil.exe");
    }

    #[test]
    fn text_after_a_closing_quote_is_read_both_ways() {
        let value = "application/x; name=\"evil-Type: a/b; name=\"evil.exe\"";
        let names = raw_parameter_names(value, "name");
        assert_eq!(names[0], "evil-Type: a/b; name=");
        assert!(
            names.iter().any(|n| n.ends_with("name=evil.exe")),
            "{names:?}"
        );
        assert!(
            names.iter().any(|n| n.ends_with("name=\"evil.exe")),
            "{names:?}"
        );
        let value = "attachment; filename=\"a\"b\"; x.exe\"; size=3";
        let names = raw_parameter_names(value, "filename");
        assert!(names.iter().any(|n| n.ends_with("x.exe")), "{names:?}");
        assert_eq!(
            raw_parameter_names("a; name=\"ok.txt\" ; x=1", "name"),
            ["ok.txt"]
        );
    }

    #[test]
    fn an_encoded_word_with_a_language_is_consumed_whole() {
        // Fuzz finding: the language after `*` was not counted, so the rest of the value
        // was sliced inside a multi-byte character.
        assert_eq!(
            decode_encoded_words("=?utf-8*en?Q?evil=2Eexe?=é"),
            "evil.exeé"
        );
        let latin = decode_encoded_words("=?iso-88*59-1?Q?evil=2Eexe?=\u{e9}\u{e9}");
        assert_eq!(latin, "evil.exe\u{e9}\u{e9}");
    }
}
