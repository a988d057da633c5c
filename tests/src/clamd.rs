//! A private clamd on a Unix socket, with a database holding only an EICAR signature
//! (no signature download is possible here). clamd decodes MIME itself, so a message with an
//! EICAR attachment is found by INSTREAM of the whole message.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};
use tempfile::TempDir;

use crate::ports::wait_until;
use crate::process::ChildGuard;

/// The EICAR antivirus test string (harmless by design).
pub const EICAR: &str = r"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

/// How long clamd gets to answer PING.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// A running clamd, stopped on drop.
pub struct Clamd {
    child: Option<ChildGuard>,
    socket: PathBuf,
    _dir: TempDir,
}

impl Clamd {
    /// Starts clamd with an EICAR-only database and waits until it answers PING.
    ///
    /// # Errors
    /// clamd missing, not starting, or not answering in time.
    pub fn start() -> Result<Clamd> {
        let dir = tempfile::Builder::new().prefix("popgate-clamd").tempdir()?;
        let db = dir.path().join("db");
        let tmp = dir.path().join("tmp");
        fs::create_dir_all(&db)?;
        fs::create_dir_all(&tmp)?;
        let hex: String = EICAR.bytes().map(|b| format!("{b:02x}")).collect();
        fs::write(
            db.join("popgate-test.ndb"),
            format!("Popgate-Test-EICAR:0:*:{hex}\n"),
        )?;
        let socket = dir.path().join("clamd.sock");
        let conf = dir.path().join("clamd.conf");
        fs::write(
            &conf,
            format!(
                "DatabaseDirectory {}\nTemporaryDirectory {}\nLocalSocket {}\n\
                 LocalSocketMode 666\nForeground yes\nPidFile {}\nStreamMaxLength 64M\n\
                 User root\nLogFile {}\n",
                db.display(),
                tmp.display(),
                socket.display(),
                dir.path().join("clamd.pid").display(),
                dir.path().join("clamd.log").display(),
            ),
        )?;
        let child = ChildGuard::spawn(
            Command::new("clamd")
                .arg("-c")
                .arg(&conf)
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
            "clamd",
        )?;
        let clamd = Clamd {
            child: Some(child),
            socket,
            _dir: dir,
        };
        wait_until("clamd answering PING", READY_TIMEOUT, || Ok(clamd.ping()))
            .with_context(|| format!("clamd log: {}", clamd.log_text()))?;
        Ok(clamd)
    }

    /// The socket, for `"clamd": "unix:PATH"`.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Whether clamd answers `PING` with `PONG`.
    pub fn ping(&self) -> bool {
        let Ok(mut stream) = UnixStream::connect(&self.socket) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let mut reply = Vec::new();
        stream.write_all(b"zPING\0").is_ok()
            && stream.read_to_end(&mut reply).is_ok()
            && reply.starts_with(b"PONG")
    }

    /// Stops clamd now (to test the scanner being unreachable).
    ///
    /// # Errors
    /// The process could not be stopped.
    pub fn stop(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.terminate(Duration::from_secs(5))?;
        }
        let _ = fs::remove_file(&self.socket);
        Ok(())
    }

    fn log_text(&self) -> String {
        fs::read_to_string(self._dir.path().join("clamd.log")).unwrap_or_default()
    }
}
