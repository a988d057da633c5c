//! Case-insensitive `*`/`?` glob matching for file names, content types and header values.
//!
//! `*` matches any run of characters (including none), `?` exactly one character; every
//! other character matches itself, compared case-insensitively (Unicode simple lowercase).
//! There is no escaping and no character classes: the patterns come from the action's
//! `match` fields, which are plain wildcards. Matching is iterative with one backtrack
//! point, so hostile names cost O(len(name) × len(pattern)) at worst and never recurse.

/// Whether `text` matches `pattern`, ignoring case.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().flat_map(char::to_lowercase).collect();
    let text: Vec<char> = text.chars().flat_map(char::to_lowercase).collect();
    match_chars(&pattern, &text)
}

fn match_chars(pattern: &[char], text: &[char]) -> bool {
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was, and the text position it currently stands for.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases = [
            ("*.exe", "evil.exe", true),
            ("*.exe", "EVIL.EXE", true),
            ("*.EXE", "evil.exe", true),
            ("*.exe", "evil.exe.txt", false),
            ("*.exe", ".exe", true),
            ("*.exe", "exe", false),
            ("?.exe", "a.exe", true),
            ("?.exe", "ab.exe", false),
            ("application/*", "application/pdf", true),
            ("application/*", "text/plain", false),
            ("text/plain", "TEXT/Plain", true),
            ("*", "", true),
            ("", "", true),
            ("", "a", false),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("*ü*", "GRÜN.exe", true),
            ("yes", "YES", true),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(
                glob_match(pattern, text),
                expected,
                "{pattern:?} vs {text:?}"
            );
        }
    }

    #[test]
    fn long_hostile_name_is_fast() {
        let name = "a".repeat(100_000);
        assert!(!glob_match("*a*a*a*b", &name));
    }
}
