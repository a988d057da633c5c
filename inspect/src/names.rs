//! File names as a mail client saves them.
//!
//! A sender controls the declared name; the client turns it into a file name on disk. Rules
//! must match what lands on disk, so every declared name is normalised the way lenient
//! clients do it (SPEC §4, "Names"): cut at the first NUL, Unicode bidi and zero-width
//! controls removed, only the last path component (`/` or `\`) kept, leading white space
//! and trailing white space and dots removed (Windows drops them: `evil.exe. ` opens as
//! `evil.exe`). Control characters inside the name are removed in one more variant.
//!
//! Besides mail-parser's decoded parameters, [`raw_parameter_names`](crate::parameters::raw_parameter_names) reads `name`/`filename`
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

/// The other way decoders segment encoded words: each white-space-separated token that
/// starts with `=?` and ends with `?=` is one word (charset, encoding, text split at the
/// first two `?`; any encoding but B read as Q), other tokens stay as they are, a space
/// before each. A `?` or NUL that the scan of [`decode_encoded_words`] takes into a word's
/// text may sit in a token's charset or encoding here, so the two can give different
/// names (fuzz finding): both count.
pub(crate) fn decode_encoded_words_by_token(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, token) in text.split_whitespace().enumerate() {
        let decoded = token
            .strip_prefix("=?")
            .and_then(|t| t.strip_suffix("?="))
            .and_then(|inner| {
                let mut fields = inner.splitn(3, '?');
                let (_charset, encoding, payload) =
                    (fields.next()?, fields.next()?, fields.next()?);
                Some(decode_payload(encoding, payload))
            });
        match decoded {
            Some(bytes) => out.extend(bytes.iter().map(|&b| char::from(b))),
            None => {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(token);
            }
        }
    }
    out
}

/// An encoded word's text as bytes. Any encoding letter but B is read as Q: a lenient
/// client may, and reading more names than a client can only make popgate stricter (fuzz
/// finding).
fn decode_payload(encoding: &str, payload: &str) -> Vec<u8> {
    match encoding {
        "B" | "b" => crate::decode::base64(payload.as_bytes()),
        _ => crate::decode::quoted_printable(payload.replace('_', " ").as_bytes()),
    }
}

/// One encoded word at the start of `text`: its text and the bytes it used.
fn decode_word(text: &str) -> Option<(String, usize)> {
    let inner = text.strip_prefix("=?")?;
    let (charset, rest) = inner.split_once('?')?;
    let (encoding, rest) = rest.split_once('?')?;
    let end = rest.find("?=")?;
    let payload = &rest[..end];
    let bytes = decode_payload(encoding, payload);
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
    #[test]
    fn an_rfc2231_value_is_also_read_as_utf8_whatever_its_charset() {
        let value = "attachment; filename*=iso-8859-1''evil.scr%C2%A0";
        let names: Vec<String> = crate::parameters::raw_parameter_names(value, "filename")
            .iter()
            .flat_map(|n| client_names(n))
            .collect();
        assert!(names.contains(&"evil.scr".to_owned()), "{names:?}");
    }

    #[test]
    fn a_nul_inside_a_tokens_encoding_field_is_not_in_the_name() {
        // The scan takes `=?ob?\0M?x?=` as part of the first word's text (a NUL that cuts
        // the name); token by token it is a word of its own, and the name ends in .scr.
        let text = "=?x?q?ev?\u{a2}\"= =?ob?\0M?x?= =?utf-8?q?il.scr?=";
        assert!(decode_encoded_words(text).contains('\0'));
        let by_token = decode_encoded_words_by_token(text);
        assert!(by_token.ends_with("il.scr"), "{by_token:?}");
        assert!(!by_token.contains('\0'));
        let names = crate::parameters::raw_parameter_names(
            &format!("attachment; filename=\"{text}\""),
            "filename",
        );
        assert!(names.iter().any(|n| n.ends_with("il.scr")), "{names:?}");
    }

    use super::*;
    use crate::parameters::raw_parameter_names;

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
