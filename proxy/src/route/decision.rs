//! The TLS decision table (SPEC §2, §4), pure: from the policy's, action's and profile's
//! settings and how the client arrived, what each leg does. No rustls material and no
//! configuration objects, so every combination is table-tested; `route::plan` turns the
//! decision into rustls configurations.

use popgate_policy::{
    Direction, InvalidCertificate, PortKind, TlsActionKind, TlsSupport, UpstreamTls,
};

use crate::pop3::{ClientStls, UpstreamStls};

/// What the decision depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inputs {
    /// The listener the client arrived on.
    pub kind: PortKind,
    /// The action's `tls.action`.
    pub tls_action: TlsActionKind,
    /// The policy's `tls_support`.
    pub tls_support: TlsSupport,
    /// The profile's `upstream_tls`, or `mandatory` when `force_encrypt` matches.
    pub upstream_tls: UpstreamTls,
    /// The policy's direction.
    pub direction: Direction,
    /// The profile's `invalid_certificate`.
    pub invalid_certificate: InvalidCertificate,
}

/// What to do with the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Copy bytes opaquely (`tls.action: allow` on the pop3s port).
    Opaque,
    /// Refuse (`tls.action: drop` on the pop3s port).
    RefuseTls,
    /// Run a POP3 session with these legs.
    Session(Legs),
}

/// Which certificate the client is shown when popgate terminates its TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientCertSource {
    /// Inbound: the Proxy Server certificate.
    ProxyServer,
    /// Outbound: minted by the Proxy Authority.
    Minted,
}

/// TLS toward the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerTls {
    /// Plaintext (and `UpstreamStls::Never`).
    None,
    /// TLS from the first byte (the server's pop3s port).
    Implicit,
    /// STLS, started by the POP3 core as this says.
    Stls(UpstreamStls),
}

/// Both legs of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Legs {
    /// What a client STLS gets.
    pub client_stls: ClientStls,
    /// popgate terminates the client's TLS, showing this certificate.
    pub client_cert: Option<ClientCertSource>,
    /// The client's TLS starts with its first byte.
    pub client_implicit: bool,
    /// TLS toward the server.
    pub server: ServerTls,
    /// Connect to the server's plaintext port (a pop3s client, a plaintext server leg).
    pub plain_port: bool,
    /// An invalid server certificate ends the session.
    pub block_invalid: bool,
    /// `opportunistic`: a failed server handshake is retried, then falls back.
    pub fallback: bool,
}

/// The decision for `inputs`.
pub fn decide(inputs: Inputs) -> Decision {
    let Inputs {
        kind,
        tls_action,
        tls_support,
        upstream_tls,
        direction,
        invalid_certificate,
    } = inputs;
    if kind == PortKind::Pop3s {
        match tls_action {
            TlsActionKind::Allow => return Decision::Opaque,
            TlsActionKind::Drop => return Decision::RefuseTls,
            TlsActionKind::Inspect => {}
        }
    }
    let client_stls = match (tls_support, tls_action) {
        (_, TlsActionKind::Drop) => ClientStls::Refuse,
        (_, TlsActionKind::Allow) => ClientStls::Tunnel,
        (TlsSupport::Disabled, TlsActionKind::Inspect) => ClientStls::Refuse,
        (_, TlsActionKind::Inspect) => ClientStls::Terminate,
    };
    // Outbound under `invalid_certificate: block`, a client handshake over a plaintext
    // server leg is refused: the core answers STLS with -ERR while the leg is plaintext.
    let block_invalid =
        direction == Direction::Inbound || invalid_certificate == InvalidCertificate::Block;
    let client_stls = match client_stls {
        ClientStls::Terminate if direction == Direction::Outbound && block_invalid => {
            ClientStls::TerminateOverTls
        }
        other => other,
    };
    let terminates = kind == PortKind::Pop3s
        || matches!(
            client_stls,
            ClientStls::Terminate | ClientStls::TerminateOverTls
        );
    let client_cert = terminates.then_some(match direction {
        Direction::Inbound => ClientCertSource::ProxyServer,
        Direction::Outbound => ClientCertSource::Minted,
    });
    let server = match (kind, upstream_tls) {
        (PortKind::Pop3s, UpstreamTls::None) => ServerTls::None,
        (PortKind::Pop3s, _) => ServerTls::Implicit,
        (PortKind::Pop3, UpstreamTls::Match) if terminates => {
            ServerTls::Stls(UpstreamStls::WithClient)
        }
        (PortKind::Pop3, UpstreamTls::Match | UpstreamTls::None) => ServerTls::None,
        (PortKind::Pop3, UpstreamTls::Opportunistic) => {
            ServerTls::Stls(UpstreamStls::Opportunistic)
        }
        (PortKind::Pop3, UpstreamTls::Mandatory) => ServerTls::Stls(UpstreamStls::Mandatory),
    };
    Decision::Session(Legs {
        client_stls,
        client_cert,
        client_implicit: kind == PortKind::Pop3s,
        server,
        plain_port: kind == PortKind::Pop3s && server != ServerTls::Implicit,
        block_invalid,
        fallback: upstream_tls == UpstreamTls::Opportunistic,
    })
}

impl Legs {
    /// What the POP3 core does toward the server.
    pub fn upstream_stls(&self) -> UpstreamStls {
        match self.server {
            ServerTls::Stls(stls) => stls,
            ServerTls::None | ServerTls::Implicit => UpstreamStls::Never,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ClientCertSource::{Minted, ProxyServer};
    use Direction::{Inbound, Outbound};
    use PortKind::{Pop3, Pop3s};
    use ServerTls::{Implicit, Stls};
    use UpstreamTls::{Mandatory, Match, None as NoTls, Opportunistic};

    fn inputs(kind: PortKind, mode: UpstreamTls, direction: Direction) -> Inputs {
        Inputs {
            kind,
            tls_action: TlsActionKind::Inspect,
            tls_support: TlsSupport::Enabled,
            upstream_tls: mode,
            direction,
            invalid_certificate: InvalidCertificate::MirrorUntrusted,
        }
    }

    /// Every upstream mode × leg × direction with `tls.action: inspect`: (kind, mode,
    /// direction) → (client certificate, server TLS, plain port, block invalid).
    #[test]
    fn inspect_table_over_every_mode_leg_and_direction() {
        let table = [
            (
                Pop3,
                Match,
                Inbound,
                ProxyServer,
                Stls(UpstreamStls::WithClient),
                false,
                true,
            ),
            (
                Pop3,
                Match,
                Outbound,
                Minted,
                Stls(UpstreamStls::WithClient),
                false,
                false,
            ),
            (
                Pop3,
                Opportunistic,
                Inbound,
                ProxyServer,
                Stls(UpstreamStls::Opportunistic),
                false,
                true,
            ),
            (
                Pop3,
                Opportunistic,
                Outbound,
                Minted,
                Stls(UpstreamStls::Opportunistic),
                false,
                false,
            ),
            (
                Pop3,
                Mandatory,
                Inbound,
                ProxyServer,
                Stls(UpstreamStls::Mandatory),
                false,
                true,
            ),
            (
                Pop3,
                Mandatory,
                Outbound,
                Minted,
                Stls(UpstreamStls::Mandatory),
                false,
                false,
            ),
            (
                Pop3,
                NoTls,
                Inbound,
                ProxyServer,
                ServerTls::None,
                false,
                true,
            ),
            (Pop3, NoTls, Outbound, Minted, ServerTls::None, false, false),
            (Pop3s, Match, Inbound, ProxyServer, Implicit, false, true),
            (Pop3s, Match, Outbound, Minted, Implicit, false, false),
            (
                Pop3s,
                Opportunistic,
                Inbound,
                ProxyServer,
                Implicit,
                false,
                true,
            ),
            (
                Pop3s,
                Opportunistic,
                Outbound,
                Minted,
                Implicit,
                false,
                false,
            ),
            (
                Pop3s,
                Mandatory,
                Inbound,
                ProxyServer,
                Implicit,
                false,
                true,
            ),
            (Pop3s, Mandatory, Outbound, Minted, Implicit, false, false),
            (
                Pop3s,
                NoTls,
                Inbound,
                ProxyServer,
                ServerTls::None,
                true,
                true,
            ),
            (Pop3s, NoTls, Outbound, Minted, ServerTls::None, true, false),
        ];
        for (kind, mode, direction, cert, server, plain_port, block) in table {
            let row = format!("{kind:?} {mode:?} {direction:?}");
            let Decision::Session(legs) = decide(inputs(kind, mode, direction)) else {
                panic!("{row}: not a session");
            };
            assert_eq!(legs.client_stls, ClientStls::Terminate, "{row}");
            assert_eq!(legs.client_cert, Some(cert), "{row}");
            assert_eq!(legs.client_implicit, kind == Pop3s, "{row}");
            assert_eq!(legs.server, server, "{row}");
            assert_eq!(legs.plain_port, plain_port, "{row}");
            assert_eq!(legs.block_invalid, block, "{row}");
            assert_eq!(legs.fallback, mode == Opportunistic, "{row}");
        }
    }

    #[test]
    fn allow_and_drop_over_every_mode_leg_and_direction() {
        for mode in [Match, Opportunistic, Mandatory, NoTls] {
            for direction in [Inbound, Outbound] {
                for (action, pop3s, stls) in [
                    (TlsActionKind::Allow, Decision::Opaque, ClientStls::Tunnel),
                    (TlsActionKind::Drop, Decision::RefuseTls, ClientStls::Refuse),
                ] {
                    let row = format!("{action:?} {mode:?} {direction:?}");
                    let mut i = inputs(Pop3s, mode, direction);
                    i.tls_action = action;
                    assert_eq!(decide(i), pop3s, "{row}");
                    i.kind = Pop3;
                    let Decision::Session(legs) = decide(i) else {
                        panic!("{row}: pop3 runs a session");
                    };
                    assert_eq!(legs.client_stls, stls, "{row}");
                    assert_eq!(legs.client_cert, None, "{row}: nothing terminated");
                    // `match` follows a client that does not get TLS from popgate.
                    if mode == Match {
                        assert_eq!(legs.server, ServerTls::None, "{row}");
                    }
                }
            }
        }
    }

    #[test]
    fn tls_support_disabled_refuses_stls_and_block_follows_the_profile() {
        let mut i = inputs(Pop3, Match, Outbound);
        i.tls_support = TlsSupport::Disabled;
        i.invalid_certificate = InvalidCertificate::Block;
        let Decision::Session(legs) = decide(i) else {
            panic!("a session");
        };
        assert_eq!(legs.client_stls, ClientStls::Refuse);
        assert_eq!(legs.client_cert, None);
        assert_eq!(legs.server, ServerTls::None);
        assert!(legs.block_invalid, "invalid_certificate: block");
    }

    #[test]
    fn outbound_block_terminates_stls_only_over_a_tls_server_leg() {
        for mode in [Match, Opportunistic, Mandatory, NoTls] {
            let mut i = inputs(Pop3, mode, Outbound);
            i.invalid_certificate = InvalidCertificate::Block;
            let Decision::Session(legs) = decide(i) else {
                panic!("a session");
            };
            assert_eq!(legs.client_stls, ClientStls::TerminateOverTls, "{mode:?}");
            assert_eq!(legs.client_cert, Some(Minted), "{mode:?}");
            if mode == Match {
                assert_eq!(legs.server, Stls(UpstreamStls::WithClient));
            }
        }
    }
}
