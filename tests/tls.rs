//! TLS: miners on a TLS bind next to a plain one, failed handshakes, certificate files,
//! cipher settings, and pools reached over TLS with a pin, a wrong pin, or tls-insecure.

mod netsupport;
mod support;

use netsupport::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use stratum_proxy::config::{Mode, TlsConfig};
use stratum_proxy::net::tls::fingerprint;
use stratum_proxy::proxy::Proxy;
use support::{MockPool, TestMiner, result_for, wait_until};

/// A config with a plain and a TLS stratum bind in front of `pool`.
fn plain_and_tls(pool: &MockPool) -> stratum_proxy::config::Config {
    let mut cfg = support::config(Mode::NiceHash, &[pool.url()]);
    cfg.binds = vec![stratum_bind(false, false), stratum_bind(true, false)];
    cfg
}

#[test]
fn tls_miner_logs_in_and_mines_while_the_plain_bind_works_too() {
    let pool = MockPool::start(1000);
    let proxy = Running::start(plain_and_tls(&pool));
    let pin = proxy.fingerprint.clone().expect("self-signed certificate made");
    assert_eq!(pin.len(), 64);
    let mut tls = LineMiner::new(tls_connect(proxy.addrs[1], &pin));
    tls.login();
    let reply = tls.submit(1, 1000, &result_for(5000));
    assert!(reply["error"].is_null(), "{reply}");
    let mut plain = TestMiner::connect(proxy.addrs[0]);
    plain.login();
    assert!(plain.submit(2, 1000)["error"].is_null());
    assert_eq!(pool.submits().len(), 2);
}

#[test]
fn failed_handshake_closes_only_that_connection() {
    let pool = MockPool::start(1000);
    let proxy = Running::start(plain_and_tls(&pool));
    let pin = proxy.fingerprint.clone().unwrap();
    let mut good = LineMiner::new(tls_connect(proxy.addrs[1], &pin));
    good.login();
    let mut bad = TcpStream::connect(proxy.addrs[1]).unwrap();
    bad.set_read_timeout(Some(WAIT)).unwrap();
    bad.write_all(b"{\"id\":1,\"method\":\"login\"}\n").unwrap();
    let mut buf = [0u8; 256];
    let mut closed = false;
    for _ in 0..4 {
        match bad.read(&mut buf) {
            Ok(0) | Err(_) => {
                closed = true;
                break;
            }
            Ok(_) => {} // the TLS alert
        }
    }
    assert!(closed, "plain text on a TLS bind is closed");
    let reply = good.submit(1, 1000, &result_for(5000));
    assert!(reply["error"].is_null(), "the TLS miner is untouched: {reply}");
}

#[test]
fn wrong_client_pin_fails_the_handshake() {
    let pool = MockPool::start(1000);
    let proxy = Running::start(plain_and_tls(&pool));
    let mut s = tls_connect(proxy.addrs[1], &"ab".repeat(32));
    assert!(s.write_all(b"{}\n").and_then(|_| s.flush()).and_then(|_| s.read(&mut [0u8; 8])).is_err());
}

#[test]
fn certificate_files_are_served_and_pinnable() {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let dir = std::env::temp_dir().join(format!("stratum-proxy-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    let pool = MockPool::start(1000);
    let mut cfg = plain_and_tls(&pool);
    cfg.tls = TlsConfig {
        cert: Some(cert.display().to_string()),
        cert_key: Some(key.display().to_string()),
        ciphers: Some("TLS_AES_128_GCM_SHA256 ECDHE-ECDSA-AES128-GCM-SHA256".into()),
        protocols: Some("TLSv1.2 TLSv1.3".into()),
    };
    let want = fingerprint(made.cert.der());
    let proxy = Running::start(cfg);
    assert_eq!(proxy.fingerprint.as_deref(), Some(want.as_str()));
    let mut m = LineMiner::new(tls_connect(proxy.addrs[1], &want));
    m.login();
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn unknown_cipher_name_is_a_config_error() {
    let pool = MockPool::start(1000);
    let mut cfg = plain_and_tls(&pool);
    cfg.tls.ciphers = Some("TLS_AES_128_GCM_SHA256 NOT-A-CIPHER".into());
    let e = Proxy::bind(cfg).err().expect("bind refuses the config");
    assert!(e.to_string().contains("tls.ciphers: unknown cipher NOT-A-CIPHER"), "{e}");
}

/// A TLS pool: a transparent TLS port of another proxy in front of a mock pool.
fn tls_pool(pool: &MockPool) -> Running {
    let target = pool.addr;
    Running::start(binds_only(vec![jump_bind(target, false, true)]))
}

fn tls_pool_config(url: String, fingerprint: Option<String>, insecure: bool) -> stratum_proxy::config::PoolConfig {
    let mut p = support::pool(&url);
    p.tls = true;
    p.tls_fingerprint = fingerprint;
    p.tls_insecure = insecure;
    p
}

#[test]
fn pool_with_the_pinned_certificate_is_used() {
    let pool = MockPool::start(1000);
    let front = tls_pool(&pool);
    let mut cfg = support::config(Mode::NiceHash, &[]);
    cfg.pools = vec![tls_pool_config(front.addrs[0].to_string(), front.fingerprint.clone(), false)];
    let proxy = support::RunningProxy::start(cfg);
    let mut m = proxy.miner();
    m.login();
    assert!(m.submit(1, 1000)["error"].is_null());
    assert_eq!((pool.logins(), pool.submits().len()), (1, 1));
}

#[test]
fn wrong_pin_moves_on_to_the_next_pool() {
    let (pinned, fallback) = (MockPool::start(1000), MockPool::start(1000));
    let front = tls_pool(&pinned);
    let mut cfg = support::config(Mode::NiceHash, &[]);
    cfg.retries = 1;
    cfg.pools = vec![tls_pool_config(front.addrs[0].to_string(), Some("00".repeat(32)), false), support::pool(&fallback.url())];
    let proxy = support::RunningProxy::start(cfg);
    let mut m = proxy.miner();
    m.login();
    assert!(m.submit(1, 1000)["error"].is_null());
    assert_eq!(pinned.logins(), 0, "no login went to the pool with the wrong certificate");
    assert_eq!(fallback.logins(), 1);
}

#[test]
fn insecure_pool_is_accepted_without_verification() {
    let pool = MockPool::start(1000);
    let front = tls_pool(&pool);
    let mut cfg = support::config(Mode::NiceHash, &[]);
    cfg.pools = vec![tls_pool_config(front.addrs[0].to_string(), None, true)];
    let proxy = support::RunningProxy::start(cfg);
    let mut m = proxy.miner();
    m.login();
    assert!(wait_until(WAIT, || pool.logins() == 1));
}

#[test]
fn unverifiable_pool_without_pin_is_refused() {
    let (selfsigned, fallback) = (MockPool::start(1000), MockPool::start(1000));
    let front = tls_pool(&selfsigned);
    let mut cfg = support::config(Mode::NiceHash, &[]);
    cfg.pools = vec![tls_pool_config(front.addrs[0].to_string(), None, false), support::pool(&fallback.url())];
    let proxy = support::RunningProxy::start(cfg);
    let mut m = proxy.miner();
    m.login();
    assert_eq!((selfsigned.logins(), fallback.logins()), (0, 1), "a self-signed pool fails web-root verification");
}

#[test]
fn sni_names_the_pool_host() {
    use std::net::TcpListener;
    // Listen on the same port for both loopback families, whichever "localhost" resolves to.
    let v4 = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = v4.local_addr().unwrap().port();
    let v6 = TcpListener::bind(("::1", port)).ok();
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(made.signing_key.serialize_der().into());
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![made.cert.der().clone()], key)
        .unwrap();
    let cfg = std::sync::Arc::new(cfg);
    let (tx, rx) = std::sync::mpsc::channel();
    for l in std::iter::once(v4).chain(v6) {
        let (cfg, tx) = (cfg.clone(), tx.clone());
        std::thread::spawn(move || {
            let Ok((mut sock, _)) = l.accept() else { return };
            sock.set_read_timeout(Some(WAIT)).unwrap();
            let mut conn = rustls::ServerConnection::new(cfg).unwrap();
            while conn.is_handshaking() {
                if conn.complete_io(&mut sock).is_err() {
                    return;
                }
            }
            let _ = tx.send(conn.server_name().map(str::to_string));
        });
    }
    let mut cfg = support::config(Mode::NiceHash, &[]);
    cfg.pools = vec![tls_pool_config(format!("localhost:{port}"), None, true)];
    let proxy = support::RunningProxy::start(cfg);
    let mut m = proxy.miner();
    m.send("login", serde_json::json!({"login": "W", "pass": "x", "agent": "a"}));
    let sni = rx.recv_timeout(WAIT).expect("the proxy finished a handshake");
    assert_eq!(sni.as_deref(), Some("localhost"));
}
