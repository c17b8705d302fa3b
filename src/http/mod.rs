//! A small HTTP/1.1 server side, free of sockets: request parsing with httparse under fixed
//! limits, and response encoding with the headers xmrig-proxy sends. The event loop feeds
//! bytes in and writes the encoded responses out (`proxy/http.rs`).

use std::fmt::Write as _;

/// Largest request head (request line and headers) we read.
pub const MAX_HEAD: usize = 8 * 1024;
/// Largest request body we accept (registrations are well under 1 KiB).
pub const MAX_BODY: usize = 64 * 1024;
const MAX_HEADERS: usize = 32;

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// Path without the query string.
    pub path: String,
    /// The `Authorization` header value.
    pub authorization: Option<String>,
    /// The client wants the connection kept open after the response.
    pub keep_alive: bool,
    /// Bytes of the head: the body is `buf[head_len..len]`.
    pub head_len: usize,
    /// Bytes of head and body this request used in the buffer.
    pub len: usize,
}

/// What the bytes so far amount to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// Need more bytes.
    Partial,
    Complete(Request),
    /// Answer with this status and close.
    Error(u16),
}

/// Parses one request from the start of `buf`.
pub fn parse(buf: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => return Parsed::Error(413),
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(httparse::Error::TooManyHeaders) => return Parsed::Error(413),
        Err(_) => return Parsed::Error(400),
    };
    if head_len > MAX_HEAD {
        return Parsed::Error(413);
    }
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else { return Parsed::Error(400) };
    let mut keep_alive = version == 1;
    let mut authorization = None;
    let mut body = 0usize;
    for h in req.headers.iter() {
        let value = std::str::from_utf8(h.value).unwrap_or("").trim();
        if h.name.eq_ignore_ascii_case("content-length") {
            let Ok(n) = value.parse::<usize>() else { return Parsed::Error(400) };
            body = n;
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            // Bodies are small registrations; a streamed body is not worth supporting.
            return Parsed::Error(411);
        } else if h.name.eq_ignore_ascii_case("connection") {
            if value.eq_ignore_ascii_case("close") {
                keep_alive = false;
            } else if value.eq_ignore_ascii_case("keep-alive") {
                keep_alive = true;
            }
        } else if h.name.eq_ignore_ascii_case("authorization") {
            authorization = Some(value.to_string());
        }
    }
    if body > MAX_BODY {
        return Parsed::Error(413);
    }
    if buf.len() < head_len + body {
        return Parsed::Partial;
    }
    let path = target.split('?').next().unwrap_or("").to_string();
    Parsed::Complete(Request { method: method.to_string(), path, authorization, keep_alive, head_len, len: head_len + body })
}

/// The reason phrase xmrig-proxy uses (upper case, underscores).
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "CREATED",
        204 => "NO_CONTENT",
        400 => "BAD_REQUEST",
        401 => "UNAUTHORIZED",
        403 => "FORBIDDEN",
        404 => "NOT_FOUND",
        405 => "METHOD_NOT_ALLOWED",
        411 => "LENGTH_REQUIRED",
        413 => "PAYLOAD_TOO_LARGE",
        422 => "UNPROCESSABLE_ENTITY",
        503 => "SERVICE_UNAVAILABLE",
        _ => "ERROR",
    }
}

/// Appends a whole response to `out`.
pub fn respond(out: &mut Vec<u8>, status: u16, content_type: &str, body: &[u8], keep_alive: bool) {
    let mut head = String::with_capacity(256);
    let _ = write!(
        head,
        "HTTP/1.1 {status} {}\r\nAccess-Control-Allow-Headers: Authorization, Content-Type\r\n\
         Access-Control-Allow-Methods: GET, PUT, POST, DELETE\r\nAccess-Control-Allow-Origin: *\r\n\
         Connection: {}\r\nContent-Length: {}\r\n",
        reason(status),
        if keep_alive { "keep-alive" } else { "close" },
        body.len()
    );
    if !content_type.is_empty() {
        let _ = write!(head, "Content-Type: {content_type}\r\n");
    }
    if status == 401 {
        head.push_str("WWW-Authenticate: Bearer\r\n");
    }
    head.push_str("\r\n");
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(body);
}

/// xmrig-proxy's JSON body for an error status.
pub fn error_body(status: u16) -> String {
    format!("{{\n    \"status\": {status},\n    \"error\": \"{}\"\n}}", reason(status))
}

/// Appends an error response with xmrig-proxy's JSON body.
pub fn respond_error(out: &mut Vec<u8>, status: u16, keep_alive: bool) {
    respond(out, status, "application/json", error_body(status).as_bytes(), keep_alive);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(raw: &str) -> Request {
        match parse(raw.as_bytes()) {
            Parsed::Complete(r) => r,
            other => panic!("{raw:?} -> {other:?}"),
        }
    }

    #[test]
    fn a_get_with_a_token_and_a_query_parses() {
        let raw = "GET /1/summary?x=1 HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer tok\r\n\r\n";
        let r = complete(raw);
        assert_eq!((r.method.as_str(), r.path.as_str(), r.authorization.as_deref()), ("GET", "/1/summary", Some("Bearer tok")));
        assert!(r.keep_alive);
        assert_eq!(r.len, raw.len());
    }

    #[test]
    fn keep_alive_follows_the_version_and_the_connection_header() {
        assert!(!complete("GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(complete("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keep_alive);
        assert!(!complete("GET / HTTP/1.1\r\nConnection: close\r\n\r\n").keep_alive);
    }

    #[test]
    fn partial_heads_and_bodies_wait_for_more() {
        assert_eq!(parse(b"GET /1/summ"), Parsed::Partial);
        assert_eq!(parse(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab"), Parsed::Partial);
        assert_eq!(complete("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nabcde").len, 43);
    }

    #[test]
    fn limits_and_garbage_get_their_status() {
        assert_eq!(parse(b"\x00\x01garbage\r\n\r\n"), Parsed::Error(400));
        assert_eq!(parse(format!("GET / HTTP/1.1\r\nX: {}", "a".repeat(MAX_HEAD)).as_bytes()), Parsed::Error(413));
        assert_eq!(parse(format!("POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n", MAX_BODY + 1).as_bytes()), Parsed::Error(413));
        assert_eq!(parse(b"POST / HTTP/1.1\r\nContent-Length: nope\r\n\r\n"), Parsed::Error(400));
        assert_eq!(parse(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"), Parsed::Error(411));
        let many: String = (0..40).map(|i| format!("H{i}: v\r\n")).collect();
        assert_eq!(parse(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes()), Parsed::Error(413));
    }

    #[test]
    fn error_bodies_match_xmrig_proxy() {
        let mut out = Vec::new();
        respond_error(&mut out, 404, false);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 404 NOT_FOUND\r\n"), "{text}");
        assert!(text.contains("Connection: close\r\nContent-Length: 47\r\nContent-Type: application/json\r\n"), "{text}");
        assert!(text.ends_with("{\n    \"status\": 404,\n    \"error\": \"NOT_FOUND\"\n}"));
    }
}
