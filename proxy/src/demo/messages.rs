//! The demo mailbox's sample messages, and small helpers to describe what arrived.

/// Three messages: plain text, one carrying an `.exe`, one whose lines start with dots.
pub fn samples() -> Vec<Vec<u8>> {
    let exe =
        "TVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n\
               gAAAAA4fug4AtAnNIbgBTM0hVGhpcyBwcm9ncmFtIGNhbm5vdCBiZSBydW4gaW4gRE9TIG1vZGUu\r\n";
    vec![
        lines(&[
            "From: Mail Provider <welcome@provider.example>",
            "To: demo@provider.example",
            "Subject: Welcome to your mailbox",
            "Message-ID: <demo-1@provider.example>",
            "Date: Mon, 23 Nov 2026 09:00:00 +0000",
            "",
            "This message passes popgate untouched, byte for byte.",
        ]),
        format!(
            "From: Accounts <billing@supplier.example>\r\n\
             To: demo@provider.example\r\n\
             Subject: Your invoice\r\n\
             Message-ID: <demo-2@supplier.example>\r\n\
             Date: Mon, 23 Nov 2026 09:05:00 +0000\r\n\
             MIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=\"demo-boundary\"\r\n\
             \r\n\
             --demo-boundary\r\n\
             Content-Type: text/plain; charset=us-ascii\r\n\
             \r\n\
             Please run the attached invoice.\r\n\
             \r\n\
             --demo-boundary\r\n\
             Content-Type: application/x-msdownload; name=\"invoice.exe\"\r\n\
             Content-Transfer-Encoding: base64\r\n\
             Content-Disposition: attachment; filename=\"invoice.exe\"\r\n\
             \r\n\
             {exe}\
             --demo-boundary--\r\n"
        )
        .into_bytes(),
        lines(&[
            "From: A Friend <friend@elsewhere.example>",
            "To: demo@provider.example",
            "Subject: Dots",
            "Message-ID: <demo-3@elsewhere.example>",
            "Date: Mon, 23 Nov 2026 09:10:00 +0000",
            "",
            ".lines starting with a dot survive dot-stuffing",
            "..and so do two",
            ".",
        ]),
    ]
}

fn lines(lines: &[&str]) -> Vec<u8> {
    lines
        .iter()
        .flat_map(|l| [l.as_bytes(), b"\r\n"])
        .flatten()
        .copied()
        .collect()
}

/// The Subject of a message, for display.
pub fn subject(message: &[u8]) -> String {
    String::from_utf8_lossy(message)
        .lines()
        .find_map(|l| l.strip_prefix("Subject: ").map(str::to_owned))
        .unwrap_or_default()
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(haystack, needle).is_some()
}

/// The decoded removal notice popgate put in place of a stripped part.
pub fn notice(message: &[u8]) -> Option<String> {
    let parsed = mail_parser::MessageParser::default().parse(message)?;
    let notice = parsed
        .text_bodies()
        .filter_map(|part| part.text_contents())
        .find(|text| text.contains("was removed by"))
        .map(|text| text.trim().to_owned());
    notice
}
