//! Transparent jump ports: bytes pass unchanged both ways, half-close is passed on, an
//! unreachable target closes the client, a peer that does not read cannot grow the jump's
//! memory, a silent pair is closed at its idle timeout, a target named by host name is
//! resolved off the loop, and the chain miner -> jump -> TLS proxy -> pool works end to end.

mod netsupport;
mod support;

use netsupport::*;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};
use stratum_proxy::config::Mode;
use stratum_proxy::proxy::JUMP_BUFFER;
use support::{MockPool, result_for};

fn connect(addr: std::net::SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect to the jump");
    s.set_read_timeout(Some(WAIT)).unwrap();
    s
}

#[test]
fn bytes_pass_unchanged_both_ways_without_any_pool() {
    let target = echo_server();
    let proxy = Running::start(binds_only(vec![jump_bind(target, false, false)]));
    let mut c = connect(proxy.addrs[0]);
    let data = noise(1 << 20, 7);
    let mut w = c.try_clone().unwrap();
    let sent = data.clone();
    let writer = std::thread::spawn(move || {
        w.write_all(&sent).unwrap();
        w.shutdown(Shutdown::Write).unwrap();
    });
    let mut back = Vec::new();
    c.read_to_end(&mut back).expect("echo comes back and ends");
    writer.join().unwrap();
    assert!(back == data, "{} bytes back, {} sent", back.len(), data.len());
    let proxy = proxy.finish();
    let s = &proxy.jump_stats()[0];
    assert_eq!((s.total, s.bytes_up, s.bytes_down), (1, data.len() as u64, data.len() as u64));
    assert!(s.max_queued <= JUMP_BUFFER);
}

#[test]
fn half_close_is_passed_on_and_the_answer_still_arrives() {
    let (target, conns) = handing_server();
    let proxy = Running::start(binds_only(vec![jump_bind(target, false, false)]));
    let mut c = connect(proxy.addrs[0]);
    c.write_all(b"question").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut t = conns.recv_timeout(WAIT).expect("target reached");
    t.set_read_timeout(Some(WAIT)).unwrap();
    let mut got = Vec::new();
    t.read_to_end(&mut got).expect("target sees the end of the client's stream");
    assert_eq!(got, b"question");
    t.write_all(b"answer").unwrap();
    drop(t);
    let mut back = Vec::new();
    c.read_to_end(&mut back).expect("client sees the answer, then the end");
    assert_eq!(back, b"answer");
    let proxy = proxy.finish();
    assert_eq!(proxy.jump_stats()[0].active, 0, "the pair closed once both directions ended");
}

/// Sends `msg` and reads it back from an echo target.
fn ping(c: &mut TcpStream, msg: &[u8]) {
    c.write_all(msg).unwrap();
    let mut back = vec![0u8; msg.len()];
    c.read_exact(&mut back).expect("echo through the jump");
    assert_eq!(back, msg);
}

#[test]
fn a_silent_pair_is_closed_at_its_idle_timeout_while_a_busy_one_stays() {
    let target = echo_server();
    let proxy = Running::start(binds_only(vec![jump_bind_to(&target.to_string(), false, false, 1)]));
    let mut busy = connect(proxy.addrs[0]);
    let mut silent = connect(proxy.addrs[0]);
    ping(&mut busy, b"hello");
    // Taken before the last bytes move, so the proxy's idle clock starts after it.
    let quiet_since = Instant::now();
    ping(&mut silent, b"hello");
    // The busy pair talks every 200 ms (pacing, not waiting) until the silent one is closed.
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let talker = std::thread::spawn(move || {
        let mut rounds = 0;
        while done_rx.recv_timeout(Duration::from_millis(200)).is_err() && rounds < 100 {
            ping(&mut busy, b"ping");
            rounds += 1;
        }
        busy
    });
    let mut buf = [0u8; 8];
    let r = silent.read(&mut buf);
    assert!(matches!(r, Ok(0)), "the silent pair is closed, not left open: {r:?}");
    let waited = quiet_since.elapsed();
    assert!(waited >= Duration::from_secs(1), "closed after {waited:?}, before its 1 s idle timeout");
    done_tx.send(()).unwrap();
    let mut busy = talker.join().unwrap();
    ping(&mut busy, b"still here");
    let proxy = proxy.finish();
    let s = &proxy.jump_stats()[0];
    assert_eq!((s.total, s.failed), (2, 0));
}

#[test]
fn a_target_named_by_host_name_is_resolved_off_the_loop() {
    let target = echo_server();
    let named = format!("localhost:{}", target.port());
    let proxy = Running::start(binds_only(vec![jump_bind_to(&named, false, false, 600)]));
    let mut c = connect(proxy.addrs[0]);
    ping(&mut c, b"first client, maybe before the resolver answered");
    let mut d = connect(proxy.addrs[0]);
    ping(&mut d, b"second client");
    let proxy = proxy.finish();
    let s = &proxy.jump_stats()[0];
    assert_eq!((s.total, s.failed), (2, 0));
}

#[test]
fn unreachable_target_closes_the_client() {
    let proxy = Running::start(binds_only(vec![jump_bind(support::dead_port(), false, false)]));
    let mut c = connect(proxy.addrs[0]);
    let mut buf = [0u8; 16];
    let r = c.read(&mut buf);
    assert!(matches!(r, Ok(0)) || matches!(&r, Err(e) if e.kind() == ErrorKind::ConnectionReset), "{r:?}");
    let proxy = proxy.finish();
    let s = &proxy.jump_stats()[0];
    assert_eq!((s.failed, s.active), (1, 0));
}

/// Writes into `s` until the whole path (this socket, the jump, the far socket) is full
/// (a write blocks for 300 ms), at most 64 MB or 20 s; returns the bytes written.
fn push_until_full(s: &TcpStream, byte: u8) -> usize {
    s.set_write_timeout(Some(Duration::from_millis(300))).unwrap();
    let chunk = vec![byte; 64 * 1024];
    let (mut pushed, end) = (0usize, Instant::now() + Duration::from_secs(20));
    let mut w = s;
    while pushed < 64 << 20 && Instant::now() < end {
        match w.write(&chunk) {
            Ok(n) => pushed += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(e) => panic!("write failed: {e}"),
        }
    }
    pushed
}

#[test]
fn a_target_that_never_reads_does_not_grow_the_jump_buffer() {
    let (target, conns) = handing_server();
    let proxy = Running::start(binds_only(vec![jump_bind(target, false, false)]));
    let c = connect(proxy.addrs[0]);
    let _held = conns.recv_timeout(WAIT).expect("target reached");
    let pushed = push_until_full(&c, 0x5a);
    assert!(pushed >= 1 << 20, "pushed only {pushed} bytes before the path filled");
    let proxy = proxy.finish();
    let s = &proxy.jump_stats()[0];
    assert!(s.max_queued <= JUMP_BUFFER, "jump queued {} bytes", s.max_queued);
    assert!(s.bytes_up < pushed as u64, "the jump stopped taking bytes ({} of {pushed})", s.bytes_up);
}

#[test]
fn tls_terminating_jump_passes_plain_bytes_to_the_target() {
    let target = echo_server();
    let proxy = Running::start(binds_only(vec![jump_bind(target, false, true)]));
    let pin = proxy.fingerprint.clone().expect("a TLS bind has a certificate");
    let mut c = tls_connect(proxy.addrs[0], &pin);
    let data = noise(200_000, 3);
    c.write_all(&data).unwrap();
    c.flush().unwrap();
    let mut back = vec![0u8; data.len()];
    c.read_exact(&mut back).expect("echo through TLS");
    assert!(back == data);
}

#[test]
fn miner_through_jump_to_a_tls_proxy_reaches_the_pool() {
    let pool = MockPool::start(1000);
    // Proxy B: a TLS stratum port in front of the pool.
    let mut cfg_b = support::config(Mode::NiceHash, &[pool.url()]);
    cfg_b.binds = vec![stratum_bind(true, false)];
    let b = Running::start(cfg_b);
    // Proxy A: a plain transparent port whose target is B's TLS port.
    let a = Running::start(binds_only(vec![jump_bind(b.addrs[0], true, false)]));
    let mut miner = LineMiner::new(connect(a.addrs[0]));
    miner.login();
    let reply = miner.submit(1, 1000, &result_for(5000));
    assert!(reply["error"].is_null(), "{reply}");
    assert_eq!(pool.submits().len(), 1);
    drop(miner);
    let a = a.finish();
    let s = &a.jump_stats()[0];
    assert_eq!(s.target_fingerprint.as_deref(), b.fingerprint.as_deref(), "the target's certificate fingerprint is kept");
    assert!(s.bytes_up > 0 && s.bytes_down > 0);
}

#[test]
fn bytes_sent_before_the_target_tls_handshake_ends_are_held_not_dropped() {
    let (target, conns) = handing_server();
    let a = Running::start(binds_only(vec![jump_bind(target, true, false)]));
    let mut c = connect(a.addrs[0]);
    let t = conns.recv_timeout(WAIT).expect("target reached");
    // The target does not answer the TLS hello yet; the client sends more than rustls
    // would hold before the handshake (64 KiB).
    let data = noise(256 * 1024, 5);
    let (mut w, sent) = (c.try_clone().unwrap(), data.clone());
    let writer = std::thread::spawn(move || w.write_all(&sent).unwrap());
    // Let the jump read what it will (nothing observable to wait on from outside).
    std::thread::sleep(Duration::from_millis(200));
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(made.signing_key.serialize_der().into());
    let cfg = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![made.cert.der().clone()], key)
        .unwrap();
    t.set_read_timeout(Some(WAIT)).unwrap();
    let mut tls = rustls::StreamOwned::new(rustls::ServerConnection::new(std::sync::Arc::new(cfg)).unwrap(), t);
    let mut got = vec![0u8; data.len()];
    tls.read_exact(&mut got).expect("every byte arrives once the handshake ends");
    writer.join().unwrap();
    assert!(got == data);
    tls.write_all(b"ok").unwrap();
    tls.flush().unwrap();
    let mut back = [0u8; 2];
    c.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"ok");
}

/// A jump to `target` over TLS that accepts only the certificate `pin`.
fn pinned_jump(target: std::net::SocketAddr, pin: &str) -> stratum_proxy::config::Bind {
    let mut bind = jump_bind(target, true, false);
    if let stratum_proxy::config::BindKind::Transparent(j) = &mut bind.kind {
        j.fingerprint = Some(pin.to_string());
    }
    bind
}

#[test]
fn a_pinned_target_is_reached_with_its_certificate_and_refused_with_another() {
    let echo = echo_server();
    let b = Running::start(binds_only(vec![jump_bind(echo, false, true)]));
    let pin = b.fingerprint.clone().expect("a TLS port logs its certificate's fingerprint");

    // Spelled as operators copy it from other tools: upper case with colons.
    let spelled: Vec<String> = pin.as_bytes().chunks(2).map(|c| String::from_utf8_lossy(c).to_uppercase()).collect();
    let good = Running::start(binds_only(vec![pinned_jump(b.addrs[0], &spelled.join(":"))]));
    let mut c = connect(good.addrs[0]);
    ping(&mut c, b"through the pinned target");
    drop(c);
    let good = good.finish();
    assert_eq!(good.jump_stats()[0].failed, 0);
    assert_eq!(good.jump_stats()[0].target_fingerprint.as_deref(), Some(pin.as_str()));

    let bad = Running::start(binds_only(vec![pinned_jump(b.addrs[0], &"00".repeat(32))]));
    let mut d = connect(bad.addrs[0]);
    d.write_all(b"must not reach the target").unwrap();
    let mut buf = [0u8; 32];
    let r = d.read(&mut buf);
    assert!(matches!(r, Ok(0)) || matches!(&r, Err(e) if e.kind() == ErrorKind::ConnectionReset), "{r:?}");
    let bad = bad.finish();
    let s = &bad.jump_stats()[0];
    assert_eq!((s.failed, s.active, s.bytes_down), (1, 0, 0), "a refused certificate counts as an unreachable target");
}

#[test]
fn a_client_failing_its_own_tls_is_not_counted_against_the_target() {
    // The target accepts TCP and never answers the TLS hello, so its handshake is in flight
    // when the plain client's bytes break the port's TLS.
    let (target, conns) = handing_server();
    let proxy = Running::start(binds_only(vec![jump_bind(target, true, true)]));
    let mut c = connect(proxy.addrs[0]);
    let _held = conns.recv_timeout(WAIT).expect("target reached");
    c.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut alert = Vec::new();
    let r = c.read_to_end(&mut alert);
    assert!(r.is_ok() || matches!(&r, Err(e) if e.kind() == ErrorKind::ConnectionReset), "the port closes the client: {r:?}");
    let proxy = proxy.finish();
    let s = &proxy.jump_stats()[0];
    assert_eq!((s.total, s.failed), (1, 0), "the client's failure is not the target's");
}

#[test]
fn megabytes_pass_through_a_tls_target_jump_and_a_tls_terminating_jump() {
    let echo = echo_server();
    // B ends TLS and echoes; A starts TLS toward B while the client is already sending.
    let b = Running::start(binds_only(vec![jump_bind(echo, false, true)]));
    let a = Running::start(binds_only(vec![jump_bind(b.addrs[0], true, false)]));
    let mut c = connect(a.addrs[0]);
    let data = noise(2 << 20, 11);
    let (mut w, sent) = (c.try_clone().unwrap(), data.clone());
    let writer = std::thread::spawn(move || {
        w.write_all(&sent).unwrap();
        w.shutdown(Shutdown::Write).unwrap();
    });
    let mut back = Vec::new();
    c.read_to_end(&mut back).expect("echo through both jumps");
    writer.join().unwrap();
    assert!(back == data, "{} bytes back of {}", back.len(), data.len());
    let a = a.finish();
    assert!(a.jump_stats()[0].max_queued <= JUMP_BUFFER);
}

#[test]
fn a_client_that_never_reads_does_not_grow_the_jump_buffer() {
    let (target, conns) = handing_server();
    let proxy = Running::start(binds_only(vec![jump_bind(target, false, false)]));
    let _client = connect(proxy.addrs[0]);
    let t = conns.recv_timeout(WAIT).expect("target reached");
    let pushed = push_until_full(&t, 0xa5);
    let proxy = proxy.finish();
    let s = &proxy.jump_stats()[0];
    assert!(s.max_queued <= JUMP_BUFFER, "jump queued {} bytes", s.max_queued);
    assert!(s.bytes_down < pushed as u64, "the jump stopped taking bytes ({} of {pushed})", s.bytes_down);
}

#[test]
fn jump_counts_show_in_the_summary_and_the_metrics() {
    let target = echo_server();
    let mut cfg = binds_only(vec![jump_bind(target, false, false)]);
    cfg.http.enabled = true;
    cfg.http.port = 0;
    let proxy = Running::start(cfg);
    let mut c = connect(proxy.addrs[0]);
    c.write_all(b"hello jump").unwrap();
    let mut back = [0u8; 10];
    c.read_exact(&mut back).unwrap();
    let api = proxy.http.expect("API enabled");
    let summary = support::http_get(api, "/1/summary", "").json();
    let port = &summary["transparent"][0];
    assert_eq!(port["target"], target.to_string());
    assert_eq!((port["connections"]["now"].as_u64(), port["connections"]["total"].as_u64()), (Some(1), Some(1)));
    assert_eq!((port["bytes"]["up"].as_u64(), port["bytes"]["down"].as_u64()), (Some(10), Some(10)));
    let metrics = support::http_get(api, "/metrics", "").body;
    let bind = proxy.addrs[0].to_string();
    assert!(metrics.contains(&format!("proxy_jump_connections_total{{bind=\"{bind}\",target=\"{target}\"}} 1")), "{metrics}");
    assert!(metrics.contains(&format!("proxy_jump_bytes_up_total{{bind=\"{bind}\",target=\"{target}\"}} 10")), "{metrics}");
}
