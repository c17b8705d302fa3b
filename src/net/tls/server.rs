//! Inbound TLS: the server configuration shared by every `"tls": true` bind, built once at
//! start-up from the top-level `tls` section. Without a configured certificate a
//! self-signed one is generated and its SHA-256 fingerprint logged, so miners can pin it.

use super::{TlsError, fingerprint};
use crate::config::TlsConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{CipherSuite, ServerConfig, SupportedCipherSuite, SupportedProtocolVersion};
use std::sync::Arc;

/// The server side of every TLS bind, and the fingerprint miners can pin.
#[derive(Debug, Clone)]
pub struct ServerTls {
    pub config: Arc<ServerConfig>,
    /// Lowercase hex SHA-256 of the certificate's DER.
    pub fingerprint: String,
}

/// Builds the inbound TLS configuration; every problem names the `tls.*` field.
pub fn server_config(cfg: &TlsConfig) -> Result<ServerTls, TlsError> {
    let (chain, key) = match (&cfg.cert, &cfg.cert_key) {
        (Some(cert), Some(key)) => load_pem(cert, key)?,
        (None, None) => self_signed()?,
        _ => return Err(TlsError::config("tls.cert", "cert and cert_key must be given together")),
    };
    let fingerprint = chain.first().map(|c| fingerprint(c)).unwrap_or_default();
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(names) = cfg.ciphers.as_deref() {
        provider.cipher_suites = cipher_suites(&provider, names)?;
    }
    let versions = protocol_versions(cfg.protocols.as_deref())?;
    let config = ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&versions)
        .map_err(|e| TlsError::config("tls.ciphers", &format!("no usable cipher suite for the protocols: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::config("tls.cert_key", &format!("certificate and key do not fit: {e}")))?;
    Ok(ServerTls { config: Arc::new(config), fingerprint })
}

/// Checks the `tls` settings that need no files (protocols, ciphers), so the binary can
/// refuse a bad config before anything listens.
pub fn check(cfg: &TlsConfig) -> Result<(), TlsError> {
    protocol_versions(cfg.protocols.as_deref())?;
    if let Some(names) = cfg.ciphers.as_deref() {
        cipher_suites(&rustls::crypto::ring::default_provider(), names)?;
    }
    if cfg.cert.is_some() != cfg.cert_key.is_some() {
        return Err(TlsError::config("tls.cert", "cert and cert_key must be given together"));
    }
    Ok(())
}

fn load_pem(cert: &str, key: &str) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let chain: Vec<_> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| TlsError::config("tls.cert", &format!("cannot read {cert}: {e}")))?;
    if chain.is_empty() {
        return Err(TlsError::config("tls.cert", &format!("{cert} holds no certificate")));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::config("tls.cert_key", &format!("cannot read {key}: {e}")))?;
    Ok((chain, key))
}

fn self_signed() -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let names = vec!["localhost".to_string(), "stratum-proxy".to_string()];
    let made =
        rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::config("tls", &format!("cannot make a certificate: {e}")))?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()));
    Ok((vec![made.cert.der().clone()], key))
}

/// Maps `"TLSv1.2 TLSv1.3"` to rustls versions. TLS 1.0 and 1.1 are not offered by rustls,
/// so they are skipped with a warning; any other name is an error.
pub fn protocol_versions(names: Option<&str>) -> Result<Vec<&'static SupportedProtocolVersion>, TlsError> {
    let Some(names) = names else { return Ok(rustls::ALL_VERSIONS.to_vec()) };
    let mut out = Vec::new();
    for name in split_list(names) {
        match name.to_ascii_lowercase().as_str() {
            "tlsv1.2" => out.push(&rustls::version::TLS12),
            "tlsv1.3" => out.push(&rustls::version::TLS13),
            "tlsv1" | "tlsv1.0" | "tlsv1.1" => log::warn!("tls.protocols: {name} is not supported and is ignored"),
            _ => return Err(TlsError::config("tls.protocols", &format!("unknown protocol {name}"))),
        }
    }
    if out.is_empty() {
        return Err(TlsError::config("tls.protocols", "no supported protocol left (TLSv1.2 or TLSv1.3)"));
    }
    Ok(out)
}

/// Maps OpenSSL or IANA cipher names to the provider's suites, in the order given.
pub fn cipher_suites(provider: &CryptoProvider, names: &str) -> Result<Vec<SupportedCipherSuite>, TlsError> {
    let mut out = Vec::new();
    for name in split_list(names) {
        let Some(id) = suite_id(name) else {
            return Err(TlsError::config("tls.ciphers", &format!("unknown cipher {name}")));
        };
        if let Some(s) = provider.cipher_suites.iter().find(|s| s.suite() == id)
            && !out.contains(s)
        {
            out.push(*s);
        }
    }
    if out.is_empty() {
        return Err(TlsError::config("tls.ciphers", "no cipher suite given"));
    }
    Ok(out)
}

fn split_list(s: &str) -> impl Iterator<Item = &str> {
    s.split([' ', ':', ',']).filter(|n| !n.is_empty())
}

/// The suites rustls with ring implements, by their OpenSSL and IANA names.
const SUITES: &[(&str, &str, CipherSuite)] = &[
    ("TLS_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256", CipherSuite::TLS13_AES_128_GCM_SHA256),
    ("TLS_AES_256_GCM_SHA384", "TLS_AES_256_GCM_SHA384", CipherSuite::TLS13_AES_256_GCM_SHA384),
    ("TLS_CHACHA20_POLY1305_SHA256", "TLS_CHACHA20_POLY1305_SHA256", CipherSuite::TLS13_CHACHA20_POLY1305_SHA256),
    ("ECDHE-ECDSA-AES128-GCM-SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256),
    ("ECDHE-ECDSA-AES256-GCM-SHA384", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384),
    (
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
    ("ECDHE-RSA-AES128-GCM-SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256),
    ("ECDHE-RSA-AES256-GCM-SHA384", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384),
    (
        "ECDHE-RSA-CHACHA20-POLY1305",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
];

fn suite_id(name: &str) -> Option<CipherSuite> {
    SUITES.iter().find(|(ossl, iana, _)| name.eq_ignore_ascii_case(ossl) || name.eq_ignore_ascii_case(iana)).map(|s| s.2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openssl_and_iana_cipher_names_map_to_suites() {
        let p = rustls::crypto::ring::default_provider();
        let got = cipher_suites(&p, "ECDHE-RSA-AES128-GCM-SHA256:TLS_AES_256_GCM_SHA384").unwrap();
        let ids: Vec<_> = got.iter().map(|s| s.suite()).collect();
        assert_eq!(ids, [CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, CipherSuite::TLS13_AES_256_GCM_SHA384]);
    }

    #[test]
    fn unknown_cipher_is_a_config_error() {
        let p = rustls::crypto::ring::default_provider();
        let e = cipher_suites(&p, "TLS_AES_128_GCM_SHA256 RC4-MD5").unwrap_err();
        assert_eq!(e.to_string(), "tls.ciphers: unknown cipher RC4-MD5");
    }

    #[test]
    fn protocols_map_and_old_versions_are_skipped() {
        assert_eq!(protocol_versions(Some("TLSv1.1 TLSv1.3")).unwrap().len(), 1);
        assert_eq!(protocol_versions(None).unwrap().len(), 2);
        assert!(protocol_versions(Some("SSLv3")).is_err());
        assert!(protocol_versions(Some("TLSv1")).is_err());
    }

    #[test]
    fn without_a_certificate_a_self_signed_one_is_made() {
        let tls = server_config(&TlsConfig::default()).unwrap();
        assert_eq!(tls.fingerprint.len(), 64);
    }

    #[test]
    fn only_tls13_ciphers_with_only_tls12_is_an_error() {
        let cfg = TlsConfig { ciphers: Some("TLS_AES_128_GCM_SHA256".into()), protocols: Some("TLSv1.2".into()), ..TlsConfig::default() };
        assert!(server_config(&cfg).is_err());
    }
}
