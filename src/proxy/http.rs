//! HTTP API clients on the event loop: bounded in number, in request size and in queued
//! output, with an idle timeout, so a slow or stuck client never costs the miners anything
//! but its own socket.

use super::Proxy;
use super::accounts::Answer;
use crate::http::{self, Parsed};
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
pub(super) fn bind_http(cfg: &crate::config::HttpConfig, poll: &mio::Poll) -> io::Result<Option<(TcpListener, SocketAddr)>> {
    if !cfg.enabled {
        return Ok(None);
    }
    let addr: SocketAddr = format!("{}:{}", cfg.host, cfg.port)
        .parse()
        .or_else(|_| format!("[{}]:{}", cfg.host, cfg.port).parse())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("http.host {} is not an IP address", cfg.host)))?;
    let mut socket = TcpListener::bind(addr).map_err(|e| io::Error::new(e.kind(), format!("HTTP API: listen on {addr} failed: {e}")))?;
    poll.registry().register(&mut socket, Source::HttpListener.token(), Interest::READABLE)?;
    let local = socket.local_addr()?;
    log::info!("HTTP API on http://{local}{}", if cfg.access_token.is_some() { " (token required)" } else { "" });
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
                log::warn!("HTTP client {peer} refused: {MAX_HTTP_CLIENTS} clients already connected");
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

    fn http_close(&mut self, key: usize) {
        if self.http_clients.contains(key) {
            let mut client = self.http_clients.remove(key);
            let _ = self.poll.registry().deregister(client.conn.stream());
        }
    }

    /// Closes clients idle past the timeout.
    pub(super) fn http_tick(&mut self, now: Instant) {
        let idle: Vec<usize> =
            self.http_clients.iter().filter(|(_, c)| now.saturating_duration_since(c.last_active) >= HTTP_IDLE).map(|(k, _)| k).collect();
        for key in idle {
            self.http_close(key);
        }
    }
}
