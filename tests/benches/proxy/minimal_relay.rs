//! The floor of any TLS-terminating relay on this machine: tokio-rustls on both legs and
//! `copy_bidirectional`, nothing else (no POP3, no inspection, no logs, no limits).
//!
//! It shows how much of popgate's distance to direct Dovecot is the second TLS hop itself:
//! a ratio popgate cannot beat without leaving the path, whatever its own code does.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// Bytes per direction moved per read, as popgate reads (a TLS record is at most 16 KiB).
const CHUNK: usize = 32 * 1024;

/// A running relay; its runtime stops when dropped.
pub struct MinimalRelay {
    /// Where clients connect (TLS, Dovecot's own certificate).
    pub addr: SocketAddr,
    /// The runtime's threads, for their CPU time.
    pub threads: Arc<Mutex<Vec<libc::pid_t>>>,
    _runtime: tokio::runtime::Runtime,
}

impl MinimalRelay {
    /// Relays to `upstream` (TLS, trusted through `ca_pem`), presenting `cert_pem`/`key_pem`.
    pub fn start(
        upstream: SocketAddr,
        ca_pem: &[u8],
        cert_pem: &[u8],
        key_pem: &[u8],
    ) -> Result<MinimalRelay> {
        let certs = rustls_pemfile::certs(&mut &cert_pem[..]).collect::<Result<Vec<_>, _>>()?;
        let key = rustls_pemfile::private_key(&mut &key_pem[..])?.context("no private key")?;
        let server = ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)?;
        let mut roots = RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut &ca_pem[..]) {
            roots.add(cert?)?;
        }
        let client = ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let acceptor = TlsAcceptor::from(Arc::new(server));
        let connector = TlsConnector::from(Arc::new(client));

        // Two workers, as popgate runs on this 2-core machine.
        let threads = Arc::new(Mutex::new(Vec::new()));
        let started = threads.clone();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .on_thread_start(move || {
                if crate::placement::gateway_cpu() {
                    crate::placement::pin_this_thread_to_gateway_cpu();
                }
                // SAFETY: gettid has no preconditions.
                let tid = unsafe { libc::gettid() };
                if let Ok(mut threads) = started.lock() {
                    threads.push(tid);
                }
            })
            .enable_all()
            .build()?;
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        runtime.spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (acceptor, connector) = (acceptor.clone(), connector.clone());
                tokio::spawn(async move {
                    let _ = relay(socket, upstream, &acceptor, &connector).await;
                });
            }
        });
        Ok(MinimalRelay {
            addr,
            threads,
            _runtime: runtime,
        })
    }
}

async fn relay(
    socket: TcpStream,
    upstream: SocketAddr,
    acceptor: &TlsAcceptor,
    connector: &TlsConnector,
) -> std::io::Result<()> {
    socket.set_nodelay(true)?;
    let server = TcpStream::connect(upstream).await?;
    server.set_nodelay(true)?;
    let (client, server) = tokio::try_join!(
        acceptor.accept(socket),
        connector.connect(
            ServerName::try_from("localhost").expect("a valid name"),
            server
        ),
    )?;
    let (mut client, mut server) = (client, server);
    tokio::io::copy_bidirectional_with_sizes(&mut client, &mut server, CHUNK, CHUNK).await?;
    Ok(())
}
