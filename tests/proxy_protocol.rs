//! PROXY protocol: binds that expect the header accept v1 and v2 (also when the first
//! request or the TLS hello arrives in the same packet), refuse connections without a
//! valid one, and a transparent port passes the real client address on to its target.

mod netsupport;
mod support;

use netsupport::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use stratum_proxy::config::{BindKind, Mode};
use stratum_proxy::net::proxy_protocol::V2_SIGNATURE;
use stratum_proxy::net::tls::{Trust, client};
use support::{MockPool, TestMiner};

fn proxy_with_header_bind(pool: &MockPool, tls: bool) -> Running {
    let mut cfg = support::config(Mode::NiceHash, &[pool.url()]);
    cfg.binds = vec![stratum_bind(tls, true)];
    Running::start(cfg)
}

fn v2_tcp4() -> Vec<u8> {
    let mut h = V2_SIGNATURE.to_vec();
    h.extend([0x21, 0x11, 0, 12, 198, 51, 100, 7, 127, 0, 0, 1, 0x9c, 0x40, 0x0d, 0x05]);
    h
}

#[test]
fn v1_header_then_login_is_served() {
    let pool = MockPool::start(1000);
    let proxy = proxy_with_header_bind(&pool, false);
    let mut m = TestMiner::connect(proxy.addrs[0]);
    m.send_raw(b"PROXY TCP4 203.0.113.9 127.0.0.1 40000 3333\r\n").unwrap();
    m.login();
    assert!(m.submit(1, 1000)["error"].is_null());
}

#[test]
fn v2_header_and_login_in_one_write_are_served() {
    let pool = MockPool::start(1000);
    let proxy = proxy_with_header_bind(&pool, false);
    let mut m = TestMiner::connect(proxy.addrs[0]);
    let login = br#"{"id":1,"jsonrpc":"2.0","method":"login","params":{"login":"W","pass":"x","agent":"a","algo":["rx/0"]}}"#;
    m.send_raw(&[v2_tcp4(), login.to_vec(), b"\n".to_vec()].concat()).unwrap();
    let reply = m.recv();
    assert!(reply["error"].is_null() && reply["result"]["job"].is_object(), "{reply}");
}

#[test]
fn connection_without_header_is_closed() {
    let pool = MockPool::start(1000);
    let proxy = proxy_with_header_bind(&pool, false);
    let mut m = TestMiner::connect(proxy.addrs[0]);
    m.send("login", serde_json::json!({"login": "W", "pass": "x"}));
    assert!(m.closed_within(WAIT));
    let mut g = TestMiner::connect(proxy.addrs[0]);
    g.send_raw(b"PROXY TCP4 999.1.1.1 127.0.0.1 1 2\r\n").unwrap();
    assert!(g.closed_within(WAIT), "a malformed header closes too");
    assert_eq!(pool.logins(), 0);
}

#[test]
fn header_then_tls_hello_in_one_write_is_served() {
    let pool = MockPool::start(1000);
    let proxy = proxy_with_header_bind(&pool, true);
    let pin = proxy.fingerprint.clone().unwrap();
    let addr = proxy.addrs[0];
    let mut conn = client::connect(&addr.to_string(), Trust::Pinned(pin)).unwrap();
    let mut first = b"PROXY TCP6 2001:db8::5 ::1 5000 3333\r\n".to_vec();
    conn.write_tls(&mut first).unwrap();
    let mut sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(WAIT)).unwrap();
    sock.write_all(&first).unwrap();
    let mut m = LineMiner::new(rustls::StreamOwned::new(conn, sock));
    m.login();
}

#[test]
fn jump_passes_the_real_client_address_to_its_target() {
    let (target, conns) = handing_server();
    let mut bind = jump_bind(target, false, false);
    bind.proxy_protocol = true;
    if let BindKind::Transparent(j) = &mut bind.kind {
        j.proxy_protocol = true;
    }
    let proxy = Running::start(binds_only(vec![bind]));
    let jump = proxy.addrs[0];
    let mut c = TcpStream::connect(jump).unwrap();
    c.write_all(b"PROXY TCP4 203.0.113.9 192.0.2.1 40000 3333\r\nhello").unwrap();
    let mut t = conns.recv_timeout(WAIT).expect("target reached");
    t.set_read_timeout(Some(WAIT)).unwrap();
    let want = format!("PROXY TCP4 203.0.113.9 127.0.0.1 40000 {}\r\nhello", jump.port());
    let mut got = vec![0u8; want.len()];
    t.read_exact(&mut got).expect("header and data reach the target");
    assert_eq!(String::from_utf8_lossy(&got), want);
    t.write_all(b"back").unwrap();
    let mut back = [0u8; 4];
    c.set_read_timeout(Some(WAIT)).unwrap();
    c.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"back");
}
