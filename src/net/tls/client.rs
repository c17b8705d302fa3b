//! Outbound TLS (pools and jump targets). Three ways to trust the server:
//!
//! - a pinned fingerprint: exactly the certificate whose DER SHA-256 matches is accepted,
//!   chain and name are not checked (pools with `tls-fingerprint`);
//! - the web roots: chain and host name verified against `webpki-roots` (pools by default);
//! - any certificate, with its fingerprint logged so it can be pinned (`tls-insecure`,
//!   and jump targets, whose inner stream is the miner's own business).
//!
//! SNI is sent for host names; for IP addresses rustls sends none.

use super::{TlsError, fingerprint};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme};
use std::sync::Arc;

/// How an outbound connection trusts its server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// Exactly this certificate (lowercase hex SHA-256 of the DER).
    Pinned(String),
    /// Chain and name against the web roots.
    WebRoots,
    /// Anything; `log` says whether the verifier logs the fingerprint itself.
    AnyCert { log: bool },
}

/// How a pool's certificate is trusted: its pin, else `tls-insecure`, else the web roots.
pub fn trust_for(pool: &crate::config::PoolConfig) -> Trust {
    match (&pool.tls_fingerprint, pool.tls_insecure) {
        (Some(pin), _) => Trust::Pinned(pin.clone()),
        (None, true) => Trust::AnyCert { log: true },
        (None, false) => Trust::WebRoots,
    }
}

/// A client connection toward `host` (the host part of `host:port`).
pub fn connect(host_port: &str, trust: Trust) -> Result<ClientConnection, TlsError> {
    let host = host_of(host_port);
    let name = ServerName::try_from(host.to_string()).map_err(|e| TlsError::Handshake(format!("bad server name {host}: {e}")))?;
    let config = client_config(trust, host)?;
    ClientConnection::new(config, name).map_err(|e| TlsError::Handshake(e.to_string()))
}

/// The host of `host:port` or `[v6]:port`, without brackets.
pub fn host_of(host_port: &str) -> &str {
    let host = host_port.rsplit_once(':').map_or(host_port, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

fn client_config(trust: Trust, host: &str) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Handshake(e.to_string()))?;
    let config = match trust {
        Trust::WebRoots => {
            let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        Trust::Pinned(pin) => {
            // Compared in the form `fingerprint` gives, however the caller spelled it; a pin
            // that is not a fingerprint at all matches nothing.
            let pin = super::normalise_fingerprint(&pin).unwrap_or(pin);
            let v = Fingerprint { pin: Some(pin), log: false, host: host.to_string(), algs: algs(&provider) };
            builder.dangerous().with_custom_certificate_verifier(Arc::new(v)).with_no_client_auth()
        }
        Trust::AnyCert { log } => {
            let v = Fingerprint { pin: None, log, host: host.to_string(), algs: algs(&provider) };
            builder.dangerous().with_custom_certificate_verifier(Arc::new(v)).with_no_client_auth()
        }
    };
    Ok(Arc::new(config))
}

fn algs(p: &CryptoProvider) -> WebPkiSupportedAlgorithms {
    p.signature_verification_algorithms
}

/// Accepts the certificate whose fingerprint is `pin`, or any when `pin` is `None`. The
/// handshake signatures are still checked, so the server must hold the certificate's key.
#[derive(Debug)]
struct Fingerprint {
    pin: Option<String>,
    log: bool,
    host: String,
    algs: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Fingerprint {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got = fingerprint(end_entity);
        match &self.pin {
            Some(pin) if *pin == got => Ok(ServerCertVerified::assertion()),
            Some(pin) => {
                log::error!("{}: TLS certificate fingerprint {got} does not match the pinned {pin}", self.host);
                Err(rustls::Error::General("certificate fingerprint does not match the pin".into()))
            }
            None => {
                if self.log {
                    log::warn!("{}: TLS certificate not verified (tls-insecure); its SHA-256 fingerprint is {got}", self.host);
                }
                Ok(ServerCertVerified::assertion())
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_is_taken_from_host_port() {
        assert_eq!(host_of("pool.example.com:443"), "pool.example.com");
        assert_eq!(host_of("[::1]:3333"), "::1");
        assert_eq!(host_of("127.0.0.1:1"), "127.0.0.1");
    }

    #[test]
    fn ip_and_name_targets_make_connections() {
        assert!(connect("127.0.0.1:3333", Trust::WebRoots).is_ok());
        assert!(connect("pool.example.com:443", Trust::Pinned("00".repeat(32))).is_ok());
        assert!(connect("[::1]:443", Trust::AnyCert { log: true }).is_ok());
    }
}
