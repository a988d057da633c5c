//! Parameters of a Content-Type or Content-Disposition field as different readers split
//! them (RFC 2045 §5.1, RFC 2231 continuations, charsets and percent-encoding): the file
//! names a rule must see are the union over every reading. No I/O here.

use crate::names::{decode_encoded_words, decode_encoded_words_by_token};

/// Every `name`/`filename` parameter value in one unfolded Content-Type or
/// Content-Disposition field value, decoded: RFC 2231 continuations, charset and
/// percent-encoding, and RFC 2047 encoded words. `wanted` is `name` or `filename`.
pub(crate) fn raw_parameter_names(value: &str, wanted: &str) -> Vec<String> {
    // Every reading takes a parameter's name from contiguous text of the value, so a value
    // that never spells `wanted` has none to give (most fields: no need to split them).
    let spelled = value
        .as_bytes()
        .windows(wanted.len())
        .any(|w| w.eq_ignore_ascii_case(wanted.as_bytes()));
    if !spelled {
        return Vec::new();
    }
    let mut names: Vec<String> = Vec::new();
    for reading in parameter_readings(value) {
        for name in reading_names(&reading, wanted) {
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

/// The names of one reading of the parameters: plain values first, then the joined
/// RFC 2231 pieces.
fn reading_names(parameters: &[(String, String)], wanted: &str) -> Vec<String> {
    let mut plain: Vec<String> = Vec::new();
    // (index, extended, text) of `wanted*N` / `wanted*N*` / `wanted*` pieces.
    let mut pieces: Vec<(u32, bool, String)> = Vec::new();
    for (name, text) in parameters {
        let lower = name.to_ascii_lowercase();
        let Some(rest) = lower.strip_prefix(wanted) else {
            continue;
        };
        if rest.is_empty() {
            push_decodings(text, &mut plain);
        } else if let Some(star) = rest.strip_prefix('*') {
            let extended = star.ends_with('*') || star.is_empty();
            let index = star.trim_end_matches('*').parse::<u32>().unwrap_or(0);
            pieces.push((index, extended, text.clone()));
        }
    }
    if !pieces.is_empty() {
        pieces.sort_by_key(|(index, _, _)| *index);
        let [first, first_utf8] = joined_pieces(&pieces, Prefix::FirstQuotes);
        // A first piece with more than two `'` has two readings: the charset and language
        // end at the second quote (RFC 2231) or, for a lenient reader, at the last one
        // (fuzz finding).
        let [last, last_utf8] = joined_pieces(&pieces, Prefix::LastQuote);
        let mut values = vec![first];
        for value in [last, first_utf8, last_utf8] {
            if !values.contains(&value) {
                values.push(value);
            }
        }
        for value in &values {
            push_decodings(value, &mut plain);
        }
    }
    plain
}

/// `text` with its encoded words decoded both ways decoders segment them.
fn push_decodings(text: &str, out: &mut Vec<String>) {
    let scanned = decode_encoded_words(text);
    let by_token = text
        .contains("=?")
        .then(|| decode_encoded_words_by_token(text))
        .filter(|by_token| *by_token != scanned);
    out.push(scanned);
    out.extend(by_token);
}

/// Where the `charset'language'` prefix of a first extended piece ends.
#[derive(Clone, Copy)]
enum Prefix {
    FirstQuotes,
    LastQuote,
}

/// The RFC 2231 pieces (sorted by index) joined and percent-decoded into one value: as its
/// charset says (Latin-1 byte for byte, else UTF-8), and as UTF-8 whatever it says (a
/// reader that ignores the charset: `iso-8859-1''evil.scr%C2%A0` ends in a no-break space
/// there, which is trimmed).
fn joined_pieces(pieces: &[(u32, bool, String)], prefix: Prefix) -> [String; 2] {
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
    let utf8 = String::from_utf8_lossy(&bytes).into_owned();
    let declared = if charset_utf8 {
        utf8.clone()
    } else {
        bytes.iter().map(|&b| char::from(b)).collect()
    };
    [declared, utf8]
}

/// `(name, value)` of each `;`-separated parameter, quoted strings unquoted, in each way
/// readers split them: strictly first; then, when some quoted value has text after its
/// closing quote (fuzz finding: `name="a; name="evil.exe"`), as a reader that glues that
/// text on and as one that quotes from the first to the last `"`. Each reading is a whole
/// list, so RFC 2231 pieces are joined within one reading.
fn parameter_readings(value: &str) -> Vec<Vec<(String, String)>> {
    let mut strict: Vec<(String, String)> = Vec::new();
    // (position in `strict`, glued text, first-to-last-quote text) of the values with text
    // after their closing quote; the other readings differ from `strict` only there.
    let mut lenient: Vec<(usize, String, String)> = Vec::new();
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
            break;
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut text = String::new();
        let mut readings = None;
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
                readings = Some((
                    format!("{text}{}", trailing.replace('"', "")),
                    format!("{text}\"{}", trailing.strip_suffix('"').unwrap_or(trailing)),
                ));
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
            if let Some((glued, spanned)) = readings {
                lenient.push((strict.len(), glued, spanned));
            }
            strict.push((name, text));
        }
        if chars.peek().is_none() {
            break;
        }
    }
    let mut readings = vec![strict];
    if !lenient.is_empty() {
        let (mut glued, mut spanned) = (readings[0].clone(), readings[0].clone());
        for (at, glued_text, spanned_text) in lenient {
            glued[at].1 = glued_text;
            spanned[at].1 = spanned_text;
        }
        readings.extend([glued, spanned]);
    }
    let toggled = toggled_parameters(value);
    if !readings.contains(&toggled) {
        readings.push(toggled);
    }
    readings
}

/// The parameters as a plain reader splits them (fuzz finding): at every `;` outside a
/// quoted stretch (each `"` opens or closes one), the name up to the first `=`, and the
/// value from its first to its last `"` when it starts with one.
fn toggled_parameters(value: &str) -> Vec<(String, String)> {
    let mut items = Vec::new();
    let mut item = String::new();
    let (mut quoted, mut escaped) = (false, false);
    for c in value.chars() {
        if escaped {
            item.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => {
                item.push(c);
                escaped = true;
            }
            '"' => {
                quoted = !quoted;
                item.push(c);
            }
            ';' if !quoted => items.push(std::mem::take(&mut item)),
            _ => item.push(c),
        }
    }
    items.push(item);
    items
        .into_iter()
        .skip(1)
        .filter_map(|item| {
            let (name, text) = item.split_once('=')?;
            let text = text.trim();
            let text = match text.strip_prefix('"') {
                Some(inner) => {
                    let inner = inner.strip_suffix('"').unwrap_or(inner);
                    let mut out = String::with_capacity(inner.len());
                    let mut chars = inner.chars();
                    while let Some(c) = chars.next() {
                        match c {
                            '\\' => out.extend(chars.next()),
                            _ => out.push(c),
                        }
                    }
                    out
                }
                None => text.to_owned(),
            };
            Some((name.trim().to_owned(), text))
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_reader_splits_at_semicolons_outside_quotes() {
        // `;` inside `"..."` does not split for a plain reader, which then takes the value
        // from its first to its last quote.
        let value = "attachment; filename*0=\"a\"b\"; c\"; filename*1=.exe";
        assert_eq!(
            toggled_parameters(value),
            [
                ("filename*0".to_owned(), "a\"b\"; c".to_owned()),
                ("filename*1".to_owned(), ".exe".to_owned())
            ]
        );
        let names = raw_parameter_names(value, "filename");
        assert!(names.contains(&"a\"b\"; c.exe".to_owned()), "{names:?}");
    }
}
