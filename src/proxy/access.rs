//! Who may do what on the monitoring API, decided from the config and the request alone.
//!
//! - The dashboard page (`GET /`) is served to anyone: it holds no data, and it must load
//!   before the user has pasted a token into it. Everything it shows comes from the data
//!   endpoints, which stay behind the tokens below.
//! - Reads need `access-token` when one is set (`admin-token` works as well).
//! - Writes (any method but GET and OPTIONS) need `admin-token` when it is set. Without
//!   one, xmrig-proxy's meaning holds: `access-token` with `restricted: false` allows
//!   writes. Without any token a write is never allowed, whatever `restricted` says.
//!
//! Tokens are compared in constant time; a token never appears in a log line.

use super::miner::constant_time_eq;
use crate::config::HttpConfig;

/// What a request may do, or the status that refuses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Access {
    /// The dashboard page: no token needed.
    Page,
    Read,
    Write,
    /// Refused with this status (401: no or a wrong token; 403: a valid token that may
    /// not write).
    Denied(u16),
}

/// Decides `method path` with the `Authorization` header value `authorization`.
pub(super) fn decide(cfg: &HttpConfig, method: &str, path: &str, authorization: Option<&str>) -> Access {
    if method == "GET" && path == "/" {
        return Access::Page;
    }
    let given = authorization.and_then(|h| h.strip_prefix("Bearer ")).map(str::trim);
    let is = |token: Option<&String>| matches!((token, given), (Some(t), Some(g)) if constant_time_eq(g.as_bytes(), t.as_bytes()));
    let admin = is(cfg.admin_token.as_ref());
    let reader = is(cfg.access_token.as_ref());
    if cfg.access_token.is_some() && !reader && !admin {
        return Access::Denied(401);
    }
    if matches!(method, "GET" | "OPTIONS") {
        return Access::Read;
    }
    if cfg.admin_token.is_some() {
        // The read token is known but not enough; anything else is no token at all.
        return if admin {
            Access::Write
        } else if reader {
            Access::Denied(403)
        } else {
            Access::Denied(401)
        };
    }
    if cfg.access_token.is_some() && reader && !cfg.restricted { Access::Write } else { Access::Denied(403) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(access: Option<&str>, admin: Option<&str>, restricted: bool) -> HttpConfig {
        HttpConfig { access_token: access.map(str::to_string), admin_token: admin.map(str::to_string), restricted, ..HttpConfig::default() }
    }

    fn bearer(t: &str) -> Option<String> {
        Some(format!("Bearer {t}"))
    }

    fn check(c: &HttpConfig, method: &str, auth: Option<String>) -> Access {
        decide(c, method, "/1/accounts", auth.as_deref())
    }

    #[test]
    fn the_page_loads_without_a_token_and_data_does_not() {
        let c = cfg(Some("read"), Some("admin"), true);
        assert_eq!(decide(&c, "GET", "/", None), Access::Page);
        assert_eq!(decide(&c, "GET", "/1/summary", None), Access::Denied(401));
        assert_eq!(decide(&c, "GET", "/1/history", bearer("nope").as_deref()), Access::Denied(401));
        assert_eq!(decide(&c, "GET", "/1/history", bearer("read").as_deref()), Access::Read);
        assert_eq!(decide(&c, "GET", "/metrics", bearer("admin").as_deref()), Access::Read, "the admin token reads too");
        assert_eq!(decide(&c, "POST", "/", None), Access::Denied(401), "only GET / is open");
    }

    #[test]
    fn with_an_admin_token_only_it_writes() {
        for restricted in [true, false] {
            let c = cfg(Some("read"), Some("admin"), restricted);
            assert_eq!(check(&c, "POST", bearer("admin")), Access::Write);
            assert_eq!(check(&c, "DELETE", bearer("admin")), Access::Write);
            assert_eq!(check(&c, "POST", bearer("read")), Access::Denied(403), "restricted: {restricted}");
            assert_eq!(check(&c, "POST", None), Access::Denied(401));
        }
        // An admin token alone: reads are open (as without any token), writes need it.
        let c = cfg(None, Some("admin"), false);
        assert_eq!(check(&c, "GET", None), Access::Read);
        assert_eq!(check(&c, "POST", None), Access::Denied(401));
        assert_eq!(check(&c, "POST", bearer("wrong")), Access::Denied(401));
        assert_eq!(check(&c, "PUT", bearer("admin")), Access::Write);
    }

    #[test]
    fn without_an_admin_token_restricted_false_keeps_xmrig_proxys_meaning() {
        let c = cfg(Some("read"), None, false);
        assert_eq!(check(&c, "POST", bearer("read")), Access::Write);
        assert_eq!(check(&c, "POST", None), Access::Denied(401));
        let c = cfg(Some("read"), None, true);
        assert_eq!(check(&c, "POST", bearer("read")), Access::Denied(403));
        assert_eq!(check(&c, "GET", bearer("read")), Access::Read);
    }

    #[test]
    fn no_token_at_all_never_writes() {
        for restricted in [true, false] {
            let c = cfg(None, None, restricted);
            assert_eq!(check(&c, "GET", None), Access::Read);
            assert_eq!(check(&c, "OPTIONS", None), Access::Read);
            assert_eq!(check(&c, "POST", None), Access::Denied(403));
            assert_eq!(check(&c, "POST", bearer("anything")), Access::Denied(403));
        }
    }

    #[test]
    fn a_token_must_be_a_bearer_token_of_the_same_length() {
        let c = cfg(Some("t0ken"), None, true);
        assert_eq!(decide(&c, "GET", "/1/summary", Some("t0ken")), Access::Denied(401));
        assert_eq!(decide(&c, "GET", "/1/summary", Some("Bearer t0ke")), Access::Denied(401));
        assert_eq!(decide(&c, "GET", "/1/summary", Some("Bearer t0ken ")), Access::Read, "surrounding blanks are not part of it");
    }
}
