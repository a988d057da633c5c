//! Real MIME readers as a mail client's user would meet them: Python's `email` package,
//! ripmime, munpack (mpack) and reformime (maildrop). Each reports the file names and content
//! types it finds in one message file. Shared by the inspect crate's evasion test (popgate's
//! verdicts in-process) and the integration test that fetches the same corpus through the
//! real relay (`tests/tests/evasion_relay.rs`), so both judge with the same readers.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

/// The programs [`real_readers`] runs; a test checks that each is installed first.
pub const PROGRAMS: [&str; 4] = ["python3", "ripmime", "munpack", "reformime"];

/// What each real reader makes of `file`: the file names and content types it reports.
/// `work` holds the extractors' output directories, named after `index`.
pub fn real_readers(file: &Path, work: &Path, index: usize) -> Vec<(&'static str, Vec<String>)> {
    let mut results = Vec::new();
    let python = r#"
import email, email.policy, sys
with open(sys.argv[1], 'rb') as f:
    msg = email.message_from_binary_file(f, policy=email.policy.default)
for part in msg.walk():
    print(part.get_content_type())
    name = part.get_filename()
    if name:
        print(name)
for part in msg.iter_attachments():
    if part.get_filename():
        print(part.get_filename())
"#;
    let out = Command::new("python3")
        .args(["-c", python])
        .arg(file)
        .output()
        .expect("python3 runs");
    results.push(("python email", lines(&out.stdout)));
    for (reader, program, args) in [
        (
            "ripmime",
            "ripmime",
            vec!["-i", "FILE", "-d", "DIR", "--no-paranoid"],
        ),
        ("munpack", "munpack", vec!["-q", "-C", "DIR", "FILE"]),
    ] {
        let dir = work.join(format!("{reader}-{index}"));
        fs::create_dir_all(&dir).expect("mkdir");
        let file_arg = file.to_string_lossy().into_owned();
        let dir_arg = dir.to_string_lossy().into_owned();
        let args: Vec<String> = args
            .iter()
            .map(|a| match *a {
                "FILE" => file_arg.clone(),
                "DIR" => dir_arg.clone(),
                other => other.to_owned(),
            })
            .collect();
        let _ = Command::new(program)
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .expect("reader runs");
        let names = fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        results.push((reader, names));
    }
    let input = fs::File::open(file).expect("open output");
    let out = Command::new("reformime")
        .arg("-i")
        .stdin(input)
        .output()
        .expect("reformime runs");
    results.push(("reformime", lines(&out.stdout)));
    results
}

/// A reader's output lines; reformime's `key: value` lines give their value.
fn lines(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(|l| {
            // reformime prints `content-type: x`, `content-name: y`, `content-disposition-filename: z`.
            match l.split_once(": ") {
                Some((_, value)) => value.to_owned(),
                None => l.to_owned(),
            }
        })
        .collect()
}

/// A name or type the SPEC example rules forbid, as a client would save or show it.
pub fn is_forbidden_name(name: &str) -> bool {
    let lower = name.trim().to_lowercase();
    let lower = lower.trim_end_matches(|c: char| c.is_whitespace() || c == '.');
    lower.ends_with(".exe") || lower.ends_with(".scr") || lower == "application/x-msdownload"
}
