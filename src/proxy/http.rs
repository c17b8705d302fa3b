//! HTTP API clients on the event loop: bounded in number, in request size and in queued
//! output, with an idle timeout, so a slow or stuck client never costs the miners anything
//! but its own socket. Connections beyond the bound are refused with a 503, counted for
//! /metrics, and logged sparingly (`Refusals`): a flood of them must not flood the log.

use super::Proxy;
use super::accounts::Answer;
use crate::http::{self, Parsed};
use crate::logs::grouped;
use crate::net::{Conn, Source};
use mio::Interest;
use mio::net::TcpListener;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// HTTP clients served at once; more are answered 503 and closed.
pub const MAX_HTTP_CLIENTS: usize = 32;
/// A client idle (or stuck mid-request) this long is closed.
const HTTP_IDLE: Duration = Duration::from_secs(15);
/// Output queued for one client (a /1/miners of 20k miners is about 3 MB).
const MAX_HTTP_OUT: usize = 16 * 1024 * 1024;

/// Refusals logged one by one in each interval; the rest go into one summary line.
const REFUSALS_LOGGED: u32 = 3;
/// How often the summary of unlogged refusals is written.
const REFUSAL_INTERVAL: Duration = Duration::from_secs(10);

/// Connections refused because every client slot was busy: a total for /metrics, and the
/// state that keeps a flood to a few log lines per interval.
#[derive(Debug, Default)]
pub(super) struct Refusals {
    total: u64,
    /// Since when refusals are being counted for the next summary, and how many.
    window: Option<(Instant, u64)>,
}

impl Refusals {
    /// Counts one refusal; true when it should be logged on its own line.
    pub(super) fn refuse(&mut self, now: Instant) -> bool {
        self.total += 1;
        let (_, n) = self.window.get_or_insert((now, 0));
        *n += 1;
        *n <= u64::from(REFUSALS_LOGGED)
    }

    /// Once the interval that began with a refusal is over: the refusals it held and its
    /// length, when more were refused than logged on their own (then the summary is due).
    pub(super) fn summary(&mut self, now: Instant) -> Option<(u64, Duration)> {
        let (since, n) = self.window?;
        let length = now.saturating_duration_since(since);
        if length < REFUSAL_INTERVAL {
            return None;
        }
        self.window = None;
        (n > u64::from(REFUSALS_LOGGED)).then_some((n, length))
    }

    /// Refused since start.
    pub(super) fn total(&self) -> u64 {
        self.total
    }
}

/// The warning for an API reachable from beyond this host without a token, if it is.
fn exposure_warning(cfg: &crate::config::HttpConfig, local: SocketAddr) -> Option<String> {
    if local.ip().is_loopback() || cfg.access_token.is_some() {
        return None;
    }
    Some(format!(
        "HTTP API on {local} answers anyone who can reach it without a token: miners' IP addresses, worker names and \
         hashrates, pool URLs and their state. Set http.access-token, or http.host to 127.0.0.1"
    ))
}

/// One API connection.
#[derive(Debug)]
pub(super) struct HttpClient {
    conn: Conn,
    buf: Vec<u8>,
    last_active: Instant,
    /// Close once the queued response is written.
    closing: bool,
    /// Waiting for the store write with this ticket before answering (and before reading
    /// the next pipelined request), with the request's keep-alive.
    waiting: Option<(u64, bool)>,
}

/// Binds the API listener when the config enables it.
pub(super) fn bind_http(
    cfg: &crate::config::HttpConfig,
    poll: &mio::Poll,
    inherited: Option<std::net::TcpListener>,
) -> io::Result<Option<(TcpListener, SocketAddr)>> {
    if !cfg.enabled {
        return Ok(None);
    }
    if let Some(l) = inherited {
        l.set_nonblocking(true)?;
        let mut socket = TcpListener::from_std(l);
        poll.registry().register(&mut socket, Source::HttpListener.token(), Interest::READABLE)?;
        let local = socket.local_addr()?;
        log::info!("HTTP API on http://{local} (handed over)");
        return Ok(Some((socket, local)));
    }
    let addr: SocketAddr = format!("{}:{}", cfg.host, cfg.port)
        .parse()
        .or_else(|_| format!("[{}]:{}", cfg.host, cfg.port).parse())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("http.host {} is not an IP address", cfg.host)))?;
    let mut socket = TcpListener::bind(addr).map_err(|e| io::Error::new(e.kind(), format!("HTTP API: listen on {addr} failed: {e}")))?;
    poll.registry().register(&mut socket, Source::HttpListener.token(), Interest::READABLE)?;
    let local = socket.local_addr()?;
    log::info!("HTTP API on http://{local}{}", if cfg.access_token.is_some() { " (token required)" } else { "" });
    if let Some(warning) = exposure_warning(cfg, local) {
        log::warn!("{warning}");
    }
    Ok(Some((socket, local)))
}

impl Proxy {
    /// Address of the HTTP API, when enabled.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().map(|(_, a)| *a)
    }

    pub(super) fn http_accept(&mut self, now: Instant) {
        loop {
            let Some((listener, _)) = self.http.as_ref() else { return };
            let (mut stream, peer) = match listener.accept() {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::warn!("HTTP accept failed: {e}");
                    return;
                }
            };
            if self.http_clients.len() >= MAX_HTTP_CLIENTS {
                let mut out = Vec::new();
                http::respond_error(&mut out, 503, false);
                let _ = io::Write::write(&mut stream, &out);
                if self.http_refusals.refuse(now) {
                    log::warn!(
                        "HTTP client {peer} refused: {MAX_HTTP_CLIENTS} clients already connected (more refusals are summed up every {} s)",
                        REFUSAL_INTERVAL.as_secs()
                    );
                }
                continue;
            }
            let entry = self.http_clients.vacant_entry();
            let token = Source::Http(entry.key()).token();
            if self.poll.registry().register(&mut stream, token, Interest::READABLE | Interest::WRITABLE).is_err() {
                continue;
            }
            entry.insert(HttpClient {
                conn: Conn::new(stream, MAX_HTTP_OUT),
                buf: Vec::new(),
                last_active: now,
                closing: false,
                waiting: None,
            });
        }
    }

    pub(super) fn http_event(&mut self, key: usize, readable: bool, writable: bool, now: Instant) {
        let Some(client) = self.http_clients.get_mut(key) else { return };
        if writable && client.conn.flush().is_err() {
            return self.http_close(key);
        }
        if readable && !client.closing {
            // Read until the socket is empty (edge-triggered), answering whenever the buffer
            // reaches its bound, so a long pipeline is served without growing the buffer.
            let mut chunk = [0u8; 4096];
            let mut drained = false;
            while !drained {
                let Some(client) = self.http_clients.get_mut(key).filter(|c| !c.closing) else { break };
                loop {
                    match client.conn.read(&mut chunk) {
                        Ok(0) => return self.http_close(key),
                        Ok(n) => {
                            client.buf.extend_from_slice(&chunk[..n]);
                            client.last_active = now;
                            if client.buf.len() > http::MAX_HEAD + http::MAX_BODY {
                                break;
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            drained = true;
                            break;
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(_) => return self.http_close(key),
                    }
                }
                self.http_serve(key, now);
            }
        }
        if self.http_clients.get(key).is_some_and(|c| c.closing && c.conn.queued() == 0) {
            self.http_close(key);
        }
    }

    /// Answers every complete request in the client's buffer (pipelining allowed).
    fn http_serve(&mut self, key: usize, now: Instant) {
        loop {
            let Some(client) = self.http_clients.get_mut(key) else { return };
            if client.closing || client.buf.is_empty() || client.waiting.is_some() {
                return;
            }
            let mut out = Vec::new();
            match http::parse(&client.buf) {
                Parsed::Partial => return,
                Parsed::Error(status) => {
                    http::respond_error(&mut out, status, false);
                    client.closing = true;
                    client.buf = Vec::new();
                }
                Parsed::Complete(req) => {
                    let body: Vec<u8> = client.buf.drain(..req.len).skip(req.head_len).collect();
                    let (status, ctype, body) = match self.route(&req, &body, now) {
                        Answer::Now(reply) => reply,
                        Answer::Wait(ticket) => {
                            self.http_clients[key].waiting = Some((ticket, req.keep_alive));
                            return;
                        }
                    };
                    let client = &mut self.http_clients[key];
                    http::respond(&mut out, status, ctype, &body, req.keep_alive);
                    client.closing = !req.keep_alive;
                }
            }
            let client = &mut self.http_clients[key];
            if client.conn.send(&out).is_err() {
                return self.http_close(key);
            }
        }
    }

    /// The store finished the write clients were waiting on: they get `reply`, then their
    /// next pipelined requests are served.
    pub(super) fn http_answer_waiting(&mut self, ticket: u64, reply: &super::api::Reply, now: Instant) {
        let keys: Vec<usize> =
            self.http_clients.iter().filter(|(_, c)| c.waiting.is_some_and(|(t, _)| t == ticket)).map(|(k, _)| k).collect();
        for key in keys {
            let Some(client) = self.http_clients.get_mut(key) else { continue };
            let keep_alive = client.waiting.take().is_some_and(|(_, k)| k);
            let mut out = Vec::new();
            http::respond(&mut out, reply.0, reply.1, &reply.2, keep_alive);
            client.closing = !keep_alive;
            if client.conn.send(&out).is_err() {
                self.http_close(key);
                continue;
            }
            self.http_serve(key, now);
            if self.http_clients.get(key).is_some_and(|c| c.closing && c.conn.queued() == 0) {
                self.http_close(key);
            }
        }
    }

    pub(super) fn http_close(&mut self, key: usize) {
        if self.http_clients.contains(key) {
            let mut client = self.http_clients.remove(key);
            let _ = self.poll.registry().deregister(client.conn.stream());
        }
    }

    /// Closes clients idle past the timeout; writes the refusal summary when due.
    pub(super) fn http_tick(&mut self, now: Instant) {
        if let Some((n, length)) = self.http_refusals.summary(now) {
            log::warn!(
                "HTTP: refused {} connections in the last {} s ({} clients busy)",
                grouped(n),
                length.as_secs(),
                self.http_clients.len()
            );
        }
        let idle: Vec<usize> =
            self.http_clients.iter().filter(|(_, c)| now.saturating_duration_since(c.last_active) >= HTTP_IDLE).map(|(k, _)| k).collect();
        for key in idle {
            self.http_close(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HttpConfig;

    #[test]
    fn a_flood_logs_a_few_lines_then_one_summary_per_interval() {
        let t0 = Instant::now();
        let mut r = Refusals::default();
        let logged = (0..4000).filter(|i| r.refuse(t0 + Duration::from_millis(*i / 1000))).count();
        assert_eq!(logged, REFUSALS_LOGGED as usize);
        assert_eq!(r.summary(t0 + Duration::from_secs(9)), None, "the interval is not over");
        assert_eq!(r.summary(t0 + Duration::from_secs(10)), Some((4000, Duration::from_secs(10))));
        assert_eq!(r.summary(t0 + Duration::from_secs(20)), None, "said once");
        // A new interval begins with the next refusal, and logs its first few again.
        assert!(r.refuse(t0 + Duration::from_secs(30)));
        assert_eq!(r.summary(t0 + Duration::from_secs(40)), None, "nothing unlogged to sum up");
        assert_eq!(r.total(), 4001);
    }

    #[test]
    fn only_an_open_api_beyond_loopback_is_warned_about() {
        let open = HttpConfig::default();
        let token = HttpConfig { access_token: Some("secret-token".into()), ..HttpConfig::default() };
        let warning = exposure_warning(&open, "0.0.0.0:8080".parse().unwrap()).expect("warned");
        assert!(warning.contains("0.0.0.0:8080") && warning.contains("IP addresses") && warning.contains("worker names"), "{warning}");
        assert!(warning.contains("pool URLs and their state"), "{warning}");
        assert_eq!(exposure_warning(&open, "127.0.0.1:8080".parse().unwrap()), None);
        assert_eq!(exposure_warning(&open, "[::1]:8080".parse().unwrap()), None);
        assert_eq!(exposure_warning(&token, "0.0.0.0:8080".parse().unwrap()), None);
    }
}
