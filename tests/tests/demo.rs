//! `popgate demo` as a newcomer runs it: it must exit 0 and show a stripped executable.

use std::process::Command;
use std::time::Duration;

use popgate_tests::popgate::popgate_bin;
use popgate_tests::process::run_with_timeout;

#[test]
fn demo_fetches_through_popgate_and_shows_a_stripped_exe() {
    let output = run_with_timeout(
        Command::new(popgate_bin().unwrap()).arg("demo"),
        Duration::from_secs(60),
    )
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "demo failed:\n{stdout}\n{stderr}");
    for mode in ["Stls", "Implicit"] {
        assert!(stdout.contains(&format!("fetched over {mode}")), "{stdout}");
    }
    assert_eq!(
        stdout.matches("strip: the attachment was replaced").count(),
        2,
        "the .exe is stripped once per fetch:\n{stdout}"
    );
    assert!(
        stdout.contains("invoice.exe was removed by Demo-Outbound"),
        "{stdout}"
    );
    assert!(
        stdout.contains("issued by CN=popgate demo Proxy Authority"),
        "{stdout}"
    );
    assert!(
        stderr.contains("session closed"),
        "session summaries are logged:\n{stderr}"
    );
}
