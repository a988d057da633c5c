//! A private Dovecot POP3 server on loopback, seeded with a corpus.
//!
//! Each [`Dovecot`] owns a temp dir holding its config, base/state dirs, log, users file,
//! test PKI and one user's maildir. `dovecot -F -c CONF` runs as a child; the guard stops it
//! on drop. Listeners: `pop3` (plaintext, `STLS` offered when SSL is on) and `pop3s`
//! (implicit TLS), both on free 127.0.0.1 ports. `auth_mechanisms` includes `apop`, so the
//! greeting carries an APOP timestamp.

use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tempfile::TempDir;

use crate::clients::Account;
use crate::corpus::Message;
use crate::peers::Peer;
use crate::pki::TestPki;
use crate::ports::{free_port, wait_until};
use crate::process::ChildGuard;

/// How long Dovecot gets to accept connections and greet.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// The uid/gid mail is stored and served as (`nobody`/`nogroup`).
const MAIL_UID: u32 = 65534;

/// How a [`Dovecot`] is set up.
#[derive(Clone, Debug)]
pub struct DovecotOptions {
    /// The mailbox user (default `alice`).
    pub user: String,
    /// Its password (default `secret`).
    pub password: String,
    /// `ssl = yes` with a pop3s listener and STLS (default), or a plaintext-only server.
    pub ssl: bool,
    /// Extra lines appended to `dovecot.conf`.
    pub extra_config: String,
    /// Run inside a network namespace on fixed addresses and ports (`ip netns exec`)
    /// instead of on free 127.0.0.1 ports (default `None`).
    pub placement: Option<crate::netns::Placement>,
}

impl Default for DovecotOptions {
    fn default() -> Self {
        DovecotOptions {
            user: "alice".into(),
            password: "secret".into(),
            ssl: true,
            extra_config: String::new(),
            placement: None,
        }
    }
}

impl DovecotOptions {
    /// A server without TLS: no `STLS`, no pop3s listener.
    pub fn plaintext_only() -> Self {
        DovecotOptions {
            ssl: false,
            ..DovecotOptions::default()
        }
    }

    /// The default options with another password.
    pub fn with_password(password: &str) -> Self {
        DovecotOptions {
            password: password.into(),
            ..DovecotOptions::default()
        }
    }
}

/// A running Dovecot; stopped and its files removed on drop.
#[derive(Debug)]
pub struct Dovecot {
    // Field order matters: the process stops before its directory is removed.
    child: ChildGuard,
    dir: TempDir,
    pop3: SocketAddr,
    pop3s: Option<SocketAddr>,
    pki: Option<TestPki>,
    options: DovecotOptions,
}

impl Dovecot {
    /// Starts Dovecot with `messages` in the user's mailbox, in this order (message N is
    /// `messages[N-1]`), and waits until it greets on `pop3` and accepts on `pop3s`.
    ///
    /// # Errors
    /// Missing binaries, setup failures, or no greeting within 10 s (the error carries the
    /// Dovecot log).
    pub fn start(messages: &[Message], options: DovecotOptions) -> Result<Dovecot> {
        let dovecot = Peer::Dovecot.path().context("dovecot is not installed")?;
        let dir = tempfile::Builder::new()
            .prefix("popgate-dovecot-")
            .tempdir()?;
        let root = dir.path().to_path_buf();
        // The login, auth and mail processes run as other users: everything on the way to
        // the users file and the maildir must be traversable.
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755))?;
        let pki = if let (true, Some(placement)) = (options.ssl, &options.placement) {
            let sans = placement.sans();
            let sans: Vec<&str> = sans.iter().map(String::as_str).collect();
            Some(TestPki::generate_for(
                &root.join("pki"),
                "localhost",
                &sans,
            )?)
        } else if options.ssl {
            Some(TestPki::generate(&root.join("pki"))?)
        } else {
            None
        };
        let home = root.join("home").join(&options.user);
        seed_maildir(&home.join("Maildir"), messages)?;
        chown_recursive(&root.join("home"), MAIL_UID)?;
        fs::write(
            root.join("users"),
            format!(
                "{}:{{PLAIN}}{}:{MAIL_UID}:{MAIL_UID}::{}::\n",
                options.user,
                options.password,
                home.display()
            ),
        )?;
        let (pop3, pop3s, listen) = match &options.placement {
            Some(p) => (
                SocketAddr::new(p.addresses[0], p.pop3_port),
                options
                    .ssl
                    .then(|| SocketAddr::new(p.addresses[0], p.pop3s_port)),
                "*, ::",
            ),
            None => (
                SocketAddr::from(([127, 0, 0, 1], free_port())),
                options
                    .ssl
                    .then(|| SocketAddr::from(([127, 0, 0, 1], free_port()))),
                "127.0.0.1",
            ),
        };
        let conf = root.join("dovecot.conf");
        let text = config_text(&root, pop3, pop3s, pki.as_ref(), &options.extra_config);
        // The listen addresses are the only 127.0.0.1 of the generated text (extra lines
        // in a namespace see the same replacement).
        fs::write(&conf, text.replace("127.0.0.1", listen))?;
        let log = fs::File::create(root.join("stderr.log"))?;
        let netns = options.placement.as_ref().map(|p| p.netns.as_str());
        let child = ChildGuard::spawn(
            crate::netns::netns_command(netns, dovecot)
                .arg("-F")
                .arg("-c")
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log),
            "dovecot",
        )?;
        let mut server = Dovecot {
            child,
            dir,
            pop3,
            pop3s,
            pki,
            options,
        };
        if let Err(e) = server.wait_ready() {
            let log = server.log_text();
            bail!("{e:#}\n--- dovecot log ---\n{log}--- end of dovecot log ---");
        }
        Ok(server)
    }

    /// The plaintext/STLS listener.
    pub fn pop3_addr(&self) -> SocketAddr {
        self.pop3
    }

    /// The implicit-TLS listener.
    ///
    /// # Panics
    /// When the server was started without SSL.
    pub fn pop3s_addr(&self) -> SocketAddr {
        self.pop3s.expect("this Dovecot was started without SSL")
    }

    /// The mailbox user.
    pub fn user(&self) -> &str {
        &self.options.user
    }

    /// The mailbox password.
    pub fn password(&self) -> &str {
        &self.options.password
    }

    /// The user's account on the `pop3` listener (change the address with
    /// [`Account::at`]).
    pub fn account(&self) -> Account {
        Account::new(self.pop3, &self.options.user, &self.options.password)
    }

    /// The CA certificate that signed the server certificate.
    ///
    /// # Panics
    /// When the server was started without SSL.
    pub fn ca_cert(&self) -> &Path {
        &self
            .pki
            .as_ref()
            .expect("this Dovecot was started without SSL")
            .ca_cert
    }

    /// The generated PKI (CA and server certificate), when SSL is on.
    pub fn pki(&self) -> Option<&TestPki> {
        self.pki.as_ref()
    }

    /// Dovecot's `log_path`.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("dovecot.log")
    }

    /// Dovecot's log plus whatever the master printed on stdout/stderr.
    pub fn log_text(&self) -> String {
        let read = |name: &str| fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!("{}{}", read("dovecot.log"), read("stderr.log"))
    }

    /// The process id of the Dovecot master.
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut connected = None;
        wait_until("dovecot to accept on pop3", READY_TIMEOUT, || {
            if let Some(status) = self.child.exited()? {
                bail!("dovecot exited early with {status}");
            }
            let netns = self.options.placement.as_ref().map(|p| p.netns.as_str());
            connected =
                crate::netns::tcp_connect(netns, self.pop3, Duration::from_millis(200)).ok();
            Ok(connected.is_some())
        })?;
        let stream = connected.context("no pop3 connection")?;
        stream.set_read_timeout(Some(deadline.saturating_duration_since(Instant::now())))?;
        let mut greeting = String::new();
        BufReader::new(stream)
            .read_line(&mut greeting)
            .context("reading dovecot's greeting")?;
        if !greeting.starts_with("+OK") {
            bail!("unexpected dovecot greeting {greeting:?}");
        }
        if let Some(pop3s) = self.pop3s {
            let left = deadline.saturating_duration_since(Instant::now());
            let netns = self.options.placement.as_ref().map(|p| p.netns.as_str());
            crate::netns::wait_for_accept_in(netns, pop3s, left)?;
        }
        Ok(())
    }
}

fn config_text(
    root: &Path,
    pop3: SocketAddr,
    pop3s: Option<SocketAddr>,
    pki: Option<&TestPki>,
    extra: &str,
) -> String {
    let r = root.display();
    let mut conf = format!(
        "base_dir = {r}/run\n\
         state_dir = {r}/state\n\
         log_path = {r}/dovecot.log\n\
         protocols = pop3\n\
         listen = 127.0.0.1\n\
         disable_plaintext_auth = no\n\
         auth_mechanisms = plain login apop\n\
         auth_verbose = yes\n\
         passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%n {r}/users\n}}\n\
         userdb {{\n  driver = passwd-file\n  args = username_format=%n {r}/users\n}}\n\
         mail_location = maildir:~/Maildir\n\
         pop3_uidl_format = %08Xu%08Xv\n"
    );
    match pki {
        Some(pki) => {
            let _ = write!(
                conf,
                "ssl = yes\nssl_cert = <{}\nssl_key = <{}\nssl_min_protocol = TLSv1.2\n",
                pki.server_cert.display(),
                pki.server_key.display()
            );
            if Path::new("/usr/share/dovecot/dh.pem").exists() {
                conf.push_str("ssl_dh = </usr/share/dovecot/dh.pem\n");
            }
        }
        None => conf.push_str("ssl = no\n"),
    }
    // Port 0 disables a listener; the built-in defaults would otherwise bind 110/995.
    let _ = write!(
        conf,
        "service pop3-login {{\n\
         \x20 inet_listener pop3 {{\n    address = 127.0.0.1\n    port = {}\n  }}\n\
         \x20 inet_listener pop3s {{\n    address = 127.0.0.1\n    port = {}\n    ssl = yes\n  }}\n\
         }}\n",
        pop3.port(),
        pop3s.map_or(0, |a| a.port())
    );
    conf.push_str(extra);
    conf.push('\n');
    conf
}

/// Writes `messages` into `maildir/cur` with names whose timestamps increase, so Dovecot
/// assigns UIDs (and POP3 message numbers) in corpus order.
fn seed_maildir(maildir: &Path, messages: &[Message]) -> Result<()> {
    for sub in ["cur", "new", "tmp"] {
        fs::create_dir_all(maildir.join(sub))?;
    }
    for (i, message) in messages.iter().enumerate() {
        let name = format!(
            "{}.M{}P1.popgate-test,S={}:2,",
            1_700_000_000 + i,
            i + 1,
            message.bytes.len()
        );
        let path = maildir.join("cur").join(name);
        fs::write(&path, &message.bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn chown_recursive(path: &Path, uid: u32) -> Result<()> {
    chown(path, Some(uid), Some(uid)).with_context(|| format!("chown {}", path.display()))?;
    if path.is_dir() {
        for entry in fs::read_dir(path)? {
            chown_recursive(&entry?.path(), uid)?;
        }
    }
    Ok(())
}
