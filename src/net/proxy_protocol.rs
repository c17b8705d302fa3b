//! PROXY protocol (HAProxy) v1 and v2 headers, sans-IO: [`parse`] looks at the bytes a
//! connection sent so far and says whether a whole header is there, how long it is and
//! which client address it carries; [`v1_header`] writes one for a jump target.
//!
//! A bind with `proxy-protocol` requires the header: anything else closes the connection.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The 12-byte signature of a v2 header.
pub const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// Longest v1 header, CRLF included (the spec's 107 bytes).
pub const V1_MAX: usize = 107;
/// Longest v2 header we accept (addresses plus TLVs).
pub const V2_MAX: usize = 16 + 1024;

/// What the bytes so far amount to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// A valid start; more bytes are needed.
    Incomplete,
    /// A whole header of `len` bytes. `source` is the real client, or `None` for
    /// `UNKNOWN` / `LOCAL` / non-TCP families (the connection's own peer stands).
    Done { len: usize, source: Option<SocketAddr> },
}

/// Why the bytes are not a PROXY header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderError(pub &'static str);

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad PROXY protocol header: {}", self.0)
    }
}

/// Parses a v1 or v2 header at the start of `buf`.
pub fn parse(buf: &[u8]) -> Result<Parsed, HeaderError> {
    let n = buf.len().min(V2_SIGNATURE.len());
    if buf[..n] == V2_SIGNATURE[..n] {
        return if n < V2_SIGNATURE.len() { Ok(Parsed::Incomplete) } else { parse_v2(buf) };
    }
    let n = buf.len().min(6);
    if buf[..n] == b"PROXY "[..n] {
        return if n < 6 { Ok(Parsed::Incomplete) } else { parse_v1(buf) };
    }
    Err(HeaderError("missing"))
}

fn parse_v1(buf: &[u8]) -> Result<Parsed, HeaderError> {
    let window = &buf[..buf.len().min(V1_MAX)];
    let Some(end) = window.windows(2).position(|w| w == b"\r\n") else {
        return if buf.len() >= V1_MAX { Err(HeaderError("v1 line too long")) } else { Ok(Parsed::Incomplete) };
    };
    let line = std::str::from_utf8(&buf[6..end]).map_err(|_| HeaderError("v1 line is not text"))?;
    let len = end + 2;
    let parts: Vec<&str> = line.split(' ').collect();
    let (fam, src, _dst, sport, _dport) = match parts.as_slice() {
        ["UNKNOWN", ..] => return Ok(Parsed::Done { len, source: None }),
        [fam, src, dst, sport, dport] => (*fam, *src, *dst, *sport, *dport),
        _ => return Err(HeaderError("v1 needs protocol, two addresses and two ports")),
    };
    let ip: IpAddr = match fam {
        "TCP4" => src.parse::<Ipv4Addr>().map(IpAddr::V4).map_err(|_| HeaderError("v1 bad IPv4 address"))?,
        "TCP6" => src.parse::<Ipv6Addr>().map(IpAddr::V6).map_err(|_| HeaderError("v1 bad IPv6 address"))?,
        _ => return Err(HeaderError("v1 unknown protocol")),
    };
    let port: u16 = sport.parse().map_err(|_| HeaderError("v1 bad port"))?;
    Ok(Parsed::Done { len, source: Some(SocketAddr::new(ip, port)) })
}

fn parse_v2(buf: &[u8]) -> Result<Parsed, HeaderError> {
    if buf.len() < 16 {
        return Ok(Parsed::Incomplete);
    }
    let (ver_cmd, fam) = (buf[12], buf[13]);
    if ver_cmd >> 4 != 2 {
        return Err(HeaderError("v2 bad version"));
    }
    let body = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    let len = 16 + body;
    if len > V2_MAX {
        return Err(HeaderError("v2 header too long"));
    }
    if buf.len() < len {
        return Ok(Parsed::Incomplete);
    }
    let addr = &buf[16..len];
    match ver_cmd & 0x0f {
        0 => return Ok(Parsed::Done { len, source: None }),
        1 => {}
        _ => return Err(HeaderError("v2 unknown command")),
    }
    let source = match fam {
        0x11 if addr.len() >= 12 => {
            let ip = Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3]);
            Some(SocketAddr::new(ip.into(), u16::from_be_bytes([addr[8], addr[9]])))
        }
        0x21 if addr.len() >= 36 => {
            let mut ip = [0u8; 16];
            ip.copy_from_slice(&addr[..16]);
            Some(SocketAddr::new(Ipv6Addr::from(ip).into(), u16::from_be_bytes([addr[32], addr[33]])))
        }
        0x11 | 0x21 => return Err(HeaderError("v2 address block too short")),
        _ => None,
    };
    Ok(Parsed::Done { len, source })
}

/// A v1 header telling the target that `src` connected to `dst`.
pub fn v1_header(src: SocketAddr, dst: SocketAddr) -> String {
    match (src, dst) {
        (SocketAddr::V4(s), SocketAddr::V4(d)) => format!("PROXY TCP4 {} {} {} {}\r\n", s.ip(), d.ip(), s.port(), d.port()),
        (s, d) => {
            let v6 = |a: SocketAddr| match a.ip() {
                IpAddr::V4(ip) => ip.to_ipv6_mapped(),
                IpAddr::V6(ip) => ip,
            };
            format!("PROXY TCP6 {} {} {} {}\r\n", v6(s), v6(d), s.port(), d.port())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(buf: &[u8]) -> (usize, Option<SocketAddr>) {
        match parse(buf) {
            Ok(Parsed::Done { len, source }) => (len, source),
            other => panic!("expected a header, got {other:?}"),
        }
    }

    #[test]
    fn v1_tcp4_gives_the_source_and_header_length() {
        let h = b"PROXY TCP4 192.0.2.7 10.0.0.1 51000 3333\r\n{\"id\":1}";
        assert_eq!(done(h), (42, Some("192.0.2.7:51000".parse().unwrap())));
    }

    #[test]
    fn v1_tcp6_and_unknown() {
        assert_eq!(done(b"PROXY TCP6 2001:db8::1 ::1 4000 443\r\n").1, Some("[2001:db8::1]:4000".parse().unwrap()));
        assert_eq!(done(b"PROXY UNKNOWN\r\n"), (15, None));
        assert_eq!(done(b"PROXY UNKNOWN ffff::1 ::1 1 2\r\n").1, None);
    }

    #[test]
    fn v1_truncated_is_incomplete_and_garbage_is_an_error() {
        assert_eq!(parse(b"PRO"), Ok(Parsed::Incomplete));
        assert_eq!(parse(b"PROXY TCP4 1.2.3.4"), Ok(Parsed::Incomplete));
        assert!(parse(b"GET / HTTP/1.1\r\n").is_err());
        assert!(parse(b"{\"id\":1,\"method\":\"login\"}\n").is_err());
        assert!(parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 99999 1\r\n").is_err());
        assert!(parse(b"PROXY TCP4 ::1 ::1 1 1\r\n").is_err());
        assert!(parse(b"PROXY TCP5 1.2.3.4 5.6.7.8 1 1\r\n").is_err());
        assert!(parse(&[b"PROXY ".as_slice(), &[b'x'; 120]].concat()).is_err());
    }

    fn v2(cmd: u8, fam: u8, addr: &[u8]) -> Vec<u8> {
        let mut h = V2_SIGNATURE.to_vec();
        h.extend([0x20 | cmd, fam]);
        h.extend((addr.len() as u16).to_be_bytes());
        h.extend(addr);
        h
    }

    #[test]
    fn v2_proxy_tcp4_and_tcp6() {
        let h = v2(1, 0x11, &[198, 51, 100, 9, 10, 0, 0, 1, 0x1f, 0x90, 0x0d, 0x05]);
        assert_eq!(done(&h), (28, Some("198.51.100.9:8080".parse().unwrap())));
        let mut a = [0u8; 36];
        a[15] = 1;
        a[32..34].copy_from_slice(&9000u16.to_be_bytes());
        assert_eq!(done(&v2(1, 0x21, &a)).1, Some("[::1]:9000".parse().unwrap()));
    }

    #[test]
    fn v2_local_keeps_the_peer_and_tlvs_are_skipped() {
        assert_eq!(done(&v2(0, 0x00, &[])), (16, None));
        let mut a = vec![1, 2, 3, 4, 5, 6, 7, 8, 0, 80, 0, 81];
        a.extend([0x04, 0x00, 0x01, 0xff]);
        assert_eq!(done(&v2(1, 0x11, &a)), (32, Some("1.2.3.4:80".parse().unwrap())));
    }

    #[test]
    fn v2_truncated_and_bad() {
        let h = v2(1, 0x11, &[1, 2, 3, 4, 5, 6, 7, 8, 0, 80, 0, 81]);
        for cut in [5, 12, 15, 20] {
            assert_eq!(parse(&h[..cut]), Ok(Parsed::Incomplete), "cut at {cut}");
        }
        let mut bad = h.clone();
        bad[12] = 0x11;
        assert!(parse(&bad).is_err());
        assert!(parse(&v2(1, 0x11, &[1, 2, 3])).is_err());
        assert!(parse(&v2(7, 0x11, &[0; 12])).is_err());
        let mut long = V2_SIGNATURE.to_vec();
        long.extend([0x21, 0x11, 0xff, 0xff]);
        assert!(parse(&long).is_err());
    }

    #[test]
    fn v1_header_round_trips() {
        let (s, d) = ("203.0.113.5:40000".parse().unwrap(), "127.0.0.1:3333".parse().unwrap());
        let h = v1_header(s, d);
        assert_eq!(h, "PROXY TCP4 203.0.113.5 127.0.0.1 40000 3333\r\n");
        assert_eq!(done(h.as_bytes()), (h.len(), Some(s)));
        let h6 = v1_header("[2001:db8::2]:5".parse().unwrap(), d);
        assert_eq!(done(h6.as_bytes()).1, Some("[2001:db8::2]:5".parse().unwrap()));
    }
}
