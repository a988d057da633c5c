//! `popgate demo`: a self-contained trial on loopback (SPEC §6).
//!
//! It builds a temporary configuration directory with a fresh Proxy Authority, starts the
//! demo mailbox (a tiny built-in POP3 server, demo only) with a certificate from its own
//! CA, runs popgate in front of it with an outbound policy that mints certificates and
//! strips executables, fetches every message over STLS and over implicit TLS trusting only
//! the Proxy Authority, and prints what arrived. Session summaries are popgate's own log.

mod client;
mod mailbox;
mod messages;

use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use popgate_ca::{Authority, KeyType};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;
use tokio_rustls::TlsAcceptor;

use crate::files::write_atomic;
use crate::tls::config::{self as tls_config, MinVersion};
use client::Mode;

/// Runs the demo; `keep_running` leaves it up for a manual try.
pub fn run(keep_running: bool) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("popgate demo: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(demo(keep_running));
    crate::log_writer::flush();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("popgate demo failed: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn demo(keep_running: bool) -> Result<()> {
    let dir = tempfile::Builder::new().prefix("popgate-demo-").tempdir()?;
    let config_dir = dir.path().to_owned();
    println!("popgate demo: configuration in {}", config_dir.display());

    let now = time::OffsetDateTime::now_utc();
    let pki = config_dir.join("pki");
    fs::create_dir_all(&pki)?;
    let authority = Authority::generate(
        KeyType::EcdsaP256,
        "CN=popgate demo Proxy Authority",
        30,
        now,
    )?;
    write_atomic(&pki.join("ca.key"), authority.key_pem.as_bytes(), 0o600)?;
    fs::write(pki.join("ca.crt"), &authority.cert_pem)?;
    let untrusted =
        Authority::generate(KeyType::EcdsaP256, "CN=popgate demo untrusted CA", 30, now)?;
    write_atomic(
        &pki.join("untrusted-ca.key"),
        untrusted.key_pem.as_bytes(),
        0o600,
    )?;
    fs::write(pki.join("untrusted-ca.crt"), &untrusted.cert_pem)?;
    let proxy_ca = Authority::from_pem(
        authority.cert_pem.as_bytes(),
        authority.key_pem.as_bytes(),
        now,
    )?;
    let (server_cert, server_key) = popgate_ca::server_cert::generate(
        &proxy_ca,
        &["localhost".into(), "127.0.0.1".into()],
        30,
        now,
    )?;
    fs::write(pki.join("server.crt"), server_cert)?;
    write_atomic(&pki.join("server.key"), server_key.as_bytes(), 0o600)?;

    // The mail server's own CA: what popgate trusts toward the real server.
    let mail_ca = Authority::generate(KeyType::EcdsaP256, "CN=demo mail provider CA", 30, now)?;
    fs::write(config_dir.join("demo-mailbox-ca.crt"), &mail_ca.cert_pem)?;
    let mail_ca =
        Authority::from_pem(mail_ca.cert_pem.as_bytes(), mail_ca.key_pem.as_bytes(), now)?;
    let (mail_cert, mail_key) = popgate_ca::server_cert::generate(
        &mail_ca,
        &["localhost".into(), "127.0.0.1".into()],
        30,
        now,
    )?;
    let mailbox_tls = server_tls(&mail_cert, &mail_key)?;
    let originals = Arc::new(messages::samples());
    let mailbox = mailbox::Mailbox::start(originals.clone(), mailbox_tls).await?;
    println!(
        "demo mailbox (built-in, demo only): 127.0.0.1:{} (STLS) and 127.0.0.1:{} (TLS)",
        mailbox.pop3, mailbox.pop3s
    );

    let ports = (free_port()?, free_port()?);
    write_config(&config_dir, &mailbox, ports)?;
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let popgate = tokio::spawn(crate::runtime::run(config_dir.clone(), Some(ready_tx)));
    let listening = match ready_rx.await {
        Ok(addrs) => addrs,
        Err(_) => match popgate.await {
            Ok(Err(err)) => return Err(err.context("popgate did not start")),
            _ => bail!("popgate did not start"),
        },
    };
    println!("popgate listening on {listening:?}\n");

    let client_tls = client_tls(&pki.join("ca.crt"))?;
    let pop3 = SocketAddr::from(([127, 0, 0, 1], ports.0));
    let pop3s = SocketAddr::from(([127, 0, 0, 1], ports.1));
    for (mode, addr) in [(Mode::Stls, pop3), (Mode::Implicit, pop3s)] {
        let fetched = client::fetch(addr, mode, client_tls.clone())
            .await
            .with_context(|| format!("fetching over {mode:?} from {addr}"))?;
        report(mode, &fetched, &originals)?;
    }
    if keep_running {
        println!("popgate keeps running (Ctrl-C to stop). Try:");
        println!(
            "  curl --cacert {} pop3s://demo:demo@127.0.0.1:{}/2",
            pki.join("ca.crt").display(),
            ports.1
        );
        println!(
            "  curl --ssl-reqd --cacert {} pop3://demo:demo@127.0.0.1:{}/1",
            pki.join("ca.crt").display(),
            ports.0
        );
        // The binary that runs now: the commands work as printed, installed or not.
        let me = std::env::current_exe().unwrap_or_else(|_| "popgate".into());
        for command in ["status", "sessions", "quarantine list", "config dump"] {
            println!(
                "  {} {command} --config {}",
                me.display(),
                config_dir.display()
            );
        }
        // Line-buffered only on a terminal: a script reading the commands gets them now.
        std::io::Write::flush(&mut std::io::stdout())?;
        popgate.await.context("popgate task")??;
    }
    println!("popgate demo: done");
    Ok(())
}

fn report(mode: Mode, fetched: &client::Fetched, originals: &[Vec<u8>]) -> Result<()> {
    println!(
        "== fetched over {mode:?}; popgate presented {}",
        fetched.certificate
    );
    if fetched.messages.len() != originals.len() {
        bail!(
            "expected {} messages, got {}",
            originals.len(),
            fetched.messages.len()
        );
    }
    let mut stripped = 0;
    for (n, (got, original)) in fetched.messages.iter().zip(originals).enumerate() {
        let subject = messages::subject(original);
        let verdict = if got == original {
            "allow: byte-identical to what the server sent".to_owned()
        } else if messages::contains(got, b"was removed by") {
            stripped += 1;
            let notice = messages::notice(got).unwrap_or_default();
            format!("strip: the attachment was replaced by a notice: \"{notice}\"")
        } else {
            bail!("message {} changed unexpectedly", n + 1);
        };
        println!(
            "  message {} \"{subject}\" ({} bytes): {verdict}",
            n + 1,
            got.len()
        );
    }
    if stripped != 1 {
        bail!("expected the executable to be stripped once, saw {stripped}");
    }
    println!();
    Ok(())
}

fn write_config(dir: &Path, mailbox: &mailbox::Mailbox, ports: (u16, u16)) -> Result<()> {
    let files = [
        (
            "popgate.json",
            json!({
                "interception": "none",
                "bind_addresses": ["127.0.0.1"],
                "user": "root", "group": "root",
                "log": { "format": "text", "level": "info" },
                "limits": { "handshake_timeout_s": 10, "max_connections": 100 },
                // Beside the configuration: the demo leaves the system paths alone.
                "state_dir": dir.join("state"),
                "control": { "socket": dir.join("control.sock") }
            }),
        ),
        (
            "policies/demo-outbound.json",
            json!({
                "name": "Demo-Outbound", "enabled": true, "order": 10,
                "direction": "outbound", "from": ["any"], "to": ["any"],
                "tls_support": "enabled",
                "ports": { "pop3": ports.0, "pop3s": ports.1 },
                "upstream": { "host": "127.0.0.1", "pop3": mailbox.pop3, "pop3s": mailbox.pop3s },
                "proxy_action": "Demo.Strip-Executables"
            }),
        ),
        (
            "actions/demo.json",
            json!({
                "name": "Demo.Strip-Executables",
                "authentication": { "require_tls": true },
                "content_types": { "default": "allow",
                    "rules": [ { "match": "application/x-msdownload", "action": "strip" } ] },
                "file_names": { "default": "allow",
                    "rules": [ { "match": "*.exe", "action": "strip" } ] },
                "tls": { "action": "inspect", "profile": "Demo-TLS" }
            }),
        ),
        (
            "tls-profiles/demo.json",
            json!({
                "name": "Demo-TLS", "min_version": "1.2", "upstream_tls": "match",
                "certificate_validation": "full", "invalid_certificate": "block",
                "trust": { "system_roots": false, "ca_files": ["demo-mailbox-ca.crt"] }
            }),
        ),
    ];
    for (file, value) in files {
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&path, serde_json::to_vec_pretty(&value)?)?;
    }
    Ok(())
}

fn server_tls(cert_pem: &str, key_pem: &str) -> Result<TlsAcceptor> {
    let chain =
        CertificateDer::pem_slice_iter(cert_pem.as_bytes()).collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())?;
    Ok(TlsAcceptor::from(tls_config::server_config(
        chain,
        key,
        MinVersion::Tls12,
    )?))
}

fn client_tls(ca: &Path) -> Result<Arc<rustls::ClientConfig>> {
    let roots = tls_config::roots(false, &[ca])?;
    let config = rustls::ClientConfig::builder_with_provider(tls_config::provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}
