//! Accounts on the loop: the `/api/v1` endpoints, one pool group per account, routing a
//! miner whose login is an account name to that account's pool, and the store's
//! completions.
//!
//! The loop never waits for the disk: a registration or deletion is handed to the store's
//! thread, and the HTTP client that asked waits (its later pipelined requests too) until
//! the store says the record is durable; only then does it get its 201 (or 200), or a 503
//! when the write failed. An account's group exists only once its record is durable, so a
//! miner can never mine to an account that a crash would forget.

use super::api::Reply;
use super::miner::MinerState;
use super::{MinerId, Proxy};
use crate::GroupId;
use crate::accounts::{self, Account, Accounts, LoadReport, Op, StoreWriter, parse_registration};
use crate::config::{Config, PoolConfig};
use crate::http::Request;
use mio::Waker;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// How often activity is recorded and idle accounts are looked for, in seconds.
const ACCOUNTS_EVERY: u32 = 60;

/// What a store write in flight is for.
#[derive(Debug)]
enum Write {
    Register(String),
    Delete(String),
    Touch,
}

/// An API answer now, or once the store write with this ticket is durable.
pub(super) enum Answer {
    Now(Reply),
    Wait(u64),
}

/// The loop's accounts: the table, the store's writer, and each account's group.
pub(super) struct AccountBook {
    table: Accounts,
    writer: StoreWriter,
    groups: HashMap<String, GroupId>,
    writes: HashMap<u64, Write>,
    /// Registrations being written, by name: a second request for the same credentials
    /// waits for the same write.
    registering: HashMap<String, u64>,
    /// Answers for the HTTP clients waiting on a ticket, once it completes.
    answers: Vec<(u64, Reply)>,
}

impl AccountBook {
    /// Opens the store (before the loop starts: a corrupt store stops the proxy here, with
    /// the record and offset named).
    pub(super) fn open(cfg: &Config, waker: Arc<Waker>) -> std::io::Result<(AccountBook, LoadReport)> {
        let (table, report, writer) = StoreWriter::open(&cfg.accounts.store, waker)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("accounts store: {e}")))?;
        let book =
            AccountBook { table, writer, groups: HashMap::new(), writes: HashMap::new(), registering: HashMap::new(), answers: Vec::new() };
        Ok((book, report))
    }

    /// The group of the account a miner names in its login: `NAME`, or `NAME.WORKER`.
    pub(super) fn group_for(&self, login: &str) -> Option<(GroupId, &str)> {
        let name = if self.groups.contains_key(login) { login } else { login.split('.').next()? };
        self.groups.get_key_value(name).map(|(n, g)| (*g, n.as_str()))
    }

    /// The names of every account with its group, for the API.
    pub(super) fn table(&self) -> &Accounts {
        &self.table
    }

    /// Miner activity on account `name`, kept in memory; written to the store once per
    /// persist interval (see [`accounts::touch_persist_secs`]), never per share.
    fn touch(&mut self, name: &str, now_unix: u64, expire_after_secs: u64) {
        if self.table.touch(name, now_unix, accounts::touch_persist_secs(expire_after_secs)) {
            let ticket = self.writer.submit(Op::Touch { name: name.to_string(), t: now_unix });
            self.writes.insert(ticket.0, Write::Touch);
        }
    }
}

/// The pool an account's group connects to: the account's pool with its credentials; the
/// algorithm from the registration, else the config's `pools-algo` table.
pub(super) fn account_pool(a: &Account, cfg: &Config) -> PoolConfig {
    let algo = a.algo.clone().or_else(|| cfg.pools_algo.get(&a.pool.to_ascii_lowercase()).cloned());
    PoolConfig {
        user: a.user.clone(),
        pass: a.password.clone(),
        algo,
        keepalive: true,
        group: format!("account:{}", a.name),
        ..PoolConfig::new(a.pool.clone())
    }
}

/// The `user` of the worker record (and of its `/metrics` series) for a miner of `group`
/// logged in as `login_user`: the account's name for an account login (`NAME.rig1` mines
/// for account `NAME`), else the login itself. Set at login; nothing is done per share.
pub(super) fn worker_user<'a>(groups: &'a crate::pool::Groups, group: GroupId, login_user: &'a str) -> &'a str {
    groups.account(group).unwrap_or(login_user)
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn reply(status: u16, body: Value) -> Reply {
    (status, "application/json", serde_json::to_vec_pretty(&body).unwrap_or_default())
}

/// An error in the accounts API's shape, `{"name": "", "error": why}`.
fn refusal(status: u16, why: &str) -> Reply {
    reply(status, json!({"name": "", "error": why}))
}

/// Whether `path` belongs to the accounts API: `/api/v1` or below it.
pub(super) fn is_accounts_path(path: &str) -> bool {
    path.strip_prefix("/api/v1").is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// An accounts API request the access rules refused (401 or 403), answered in that API's
/// shape so its clients parse one kind of error; the monitoring endpoints keep
/// xmrig-proxy's `{"status", "error"}`.
pub(super) fn denied(status: u16) -> Reply {
    match status {
        401 => refusal(401, "missing or wrong access token: send Authorization: Bearer TOKEN (the admin-token for writes when one is set)"),
        _ => refusal(status, "writes need the admin-token, or the access-token with \"restricted\": false"),
    }
}

impl Proxy {
    /// Opens the accounts store and makes a group for every account in it.
    pub(super) fn open_accounts(&mut self) -> std::io::Result<()> {
        if !self.cfg.accounts.enabled {
            return Ok(());
        }
        let (mut book, report) = AccountBook::open(&self.cfg, self.waker.clone())?;
        // The store may lack activity from before a crash; expiry allows for it.
        book.table.watch_from(unix_now());
        log::info!(
            "accounts store {}: {} accounts ({} records{})",
            self.cfg.accounts.store,
            report.accounts,
            report.records,
            if report.dropped_bytes > 0 {
                format!(", a torn last record of {} bytes dropped", report.dropped_bytes)
            } else {
                String::new()
            }
        );
        let accounts: Vec<Account> = book.table.iter().cloned().collect();
        for a in accounts {
            let Some(g) = self.groups.add_account(&a.name, account_pool(&a, &self.cfg), 0) else {
                return Err(std::io::Error::other("accounts store: more accounts than pool groups can hold"));
            };
            book.groups.insert(a.name.clone(), g);
        }
        self.accounts = Some(book);
        Ok(())
    }

    /// The `/api/v1` endpoints; `None` for other paths. The access token was checked.
    pub(super) fn accounts_api(&mut self, req: &Request, body: &[u8], may_write: bool, now: Instant) -> Option<Answer> {
        if !is_accounts_path(&req.path) {
            return None;
        }
        let path = &req.path["/api/v1".len()..];
        if self.accounts.is_none() {
            return Some(Answer::Now(refusal(404, "accounts are not enabled on this proxy (\"accounts\": {\"enabled\": true})")));
        }
        let write = matches!(req.method.as_str(), "POST" | "DELETE" | "PUT");
        if write && !may_write {
            return Some(Answer::Now(denied(403)));
        }
        Some(match (req.method.as_str(), path) {
            ("OPTIONS", _) => Answer::Now((204, "", Vec::new())),
            ("GET", "/users") => Answer::Now(reply(200, accounts::list_json(self.accounts.as_ref()?.table()))),
            ("POST", "/users") => self.register(body, now),
            ("DELETE", p) if p.starts_with("/users/") => self.unregister(&p["/users/".len()..]),
            ("GET", "/pools") => Answer::Now(reply(200, self.pools_table())),
            (_, "/users" | "/pools") => Answer::Now(refusal(405, "method not allowed here")),
            (_, p) if p.starts_with("/users/") => Answer::Now(refusal(405, "only DELETE is allowed on an account")),
            _ => Answer::Now(refusal(404, "no such endpoint")),
        })
    }

    fn register(&mut self, body: &[u8], _now: Instant) -> Answer {
        let reg = match parse_registration(body) {
            Ok(r) => r,
            Err(e) => return Answer::Now(reply(e.status, e.to_json())),
        };
        if self.groups.iter().count() >= crate::pool::Groups::MAX - 1 {
            return Answer::Now(refusal(503, "this proxy holds as many accounts as it can"));
        }
        let Some(book) = self.accounts.as_mut() else { return Answer::Now(refusal(404, "accounts are not enabled")) };
        let r = book.table.register(reg, unix_now());
        if r.created_new {
            let Some(account) = book.table.get(&r.name).cloned() else { return Answer::Now(refusal(500, "account vanished")) };
            let ticket = book.writer.submit(Op::Register { account });
            book.writes.insert(ticket.0, Write::Register(r.name.clone()));
            book.registering.insert(r.name, ticket.0);
            return Answer::Wait(ticket.0);
        }
        match book.registering.get(&r.name) {
            Some(&ticket) if !r.durable => Answer::Wait(ticket),
            _ => Answer::Now(reply(200, accounts::registered_json(&r.name))),
        }
    }

    fn unregister(&mut self, name: &str) -> Answer {
        let Some(book) = self.accounts.as_mut() else { return Answer::Now(refusal(404, "accounts are not enabled")) };
        if !book.groups.contains_key(name) {
            return Answer::Now(refusal(404, "no such account"));
        }
        let ticket = book.writer.submit(Op::Delete { name: name.to_string() });
        book.writes.insert(ticket.0, Write::Delete(name.to_string()));
        Answer::Wait(ticket.0)
    }

    /// The pools the proxy knows: the `pools-algo` table, the config's pools and the
    /// accounts' pools, with their algorithm and the hashes a difficulty-1 share stands for.
    fn pools_table(&self) -> Value {
        let mut rows: std::collections::BTreeMap<String, Option<String>> =
            self.cfg.pools_algo.iter().map(|(p, a)| (p.clone(), Some(a.clone()))).collect();
        for (_, g) in self.groups.with_pools() {
            for p in &g.pools {
                let known = rows.entry(p.url.to_ascii_lowercase()).or_insert(None);
                if known.is_none() {
                    known.clone_from(&p.algo);
                }
            }
        }
        let list: Vec<Value> = rows
            .into_iter()
            .map(|(pool, algo)| {
                let divider = algo.as_deref().map_or(1.0, crate::stratum::algo::divider);
                json!({"pool": pool, "algo": algo, "divider": divider})
            })
            .collect();
        Value::Array(list)
    }

    /// The store finished writes: make or drop account groups, and answer the clients.
    pub(super) fn accounts_done(&mut self, now: Instant) {
        let Some(book) = self.accounts.as_mut() else { return };
        let done = book.writer.poll_done();
        for d in done {
            let Some(book) = self.accounts.as_mut() else { return };
            let Some(write) = book.writes.remove(&d.ticket.0) else { continue };
            let answer = match (write, d.result) {
                (Write::Register(name), Ok(())) => {
                    book.registering.remove(&name);
                    book.table.mark_durable(&name);
                    let account = book.table.get(&name).cloned();
                    let created = account.and_then(|a| self.add_account_group(&a, now));
                    if created.is_some() {
                        log::info!("account {name} registered");
                        reply(201, accounts::registered_json(&name))
                    } else {
                        refusal(503, "this proxy holds as many accounts as it can")
                    }
                }
                (Write::Register(name), Err(e)) => {
                    book.registering.remove(&name);
                    book.table.delete(&name);
                    log::error!("account registration not saved: {e}");
                    refusal(503, "the account store could not save the registration; try again")
                }
                (Write::Delete(name), Ok(())) => {
                    book.table.delete(&name);
                    self.drop_account(&name, now);
                    reply(200, json!({"name": name, "error": "", "deleted": true}))
                }
                (Write::Delete(name), Err(e)) => {
                    log::error!("account {name} not deleted: {e}");
                    refusal(503, "the account store could not save the deletion; try again")
                }
                (Write::Touch, Err(e)) => {
                    log::warn!("account activity not saved: {e}");
                    continue;
                }
                (Write::Touch, Ok(())) => continue,
            };
            if let Some(book) = self.accounts.as_mut() {
                book.answers.push((d.ticket.0, answer));
            }
        }
        let answers = self.accounts.as_mut().map(|b| std::mem::take(&mut b.answers)).unwrap_or_default();
        for (ticket, answer) in answers {
            self.http_answer_waiting(ticket, &answer, now);
        }
    }

    fn add_account_group(&mut self, a: &Account, now: Instant) -> Option<GroupId> {
        let clock = self.clock(now);
        let pool = account_pool(a, &self.cfg);
        let g = self.groups.add_account(&a.name, pool, clock)?;
        self.accounts.as_mut()?.groups.insert(a.name.clone(), g);
        Some(g)
    }

    /// A deleted (or expired) account: its miners are closed, its upstreams closed, its
    /// group removed.
    fn drop_account(&mut self, name: &str, now: Instant) {
        let Some(group) = self.accounts.as_mut().and_then(|b| b.groups.remove(name)) else { return };
        let miners: Vec<MinerId> = self.miners.iter().filter(|(_, m)| m.group == group).map(|(k, _)| MinerId(k)).collect();
        log::info!("account {name} removed: closing its {} miners and its pool connections", miners.len());
        for id in miners {
            self.close_miner(id, "account deleted");
        }
        for uid in self.splitter.ids_in(group) {
            self.drop_upstream(uid, now);
        }
        self.groups.remove(group);
    }

    /// Routes a login: an account name goes to its account's group; anything else to the
    /// port's group when it has pools. `Err` when neither.
    pub(super) fn login_group(&mut self, id: MinerId, login: &str) -> Result<GroupId, crate::stratum::StratumError> {
        let port_group = self.miners[id.0].group;
        let expire_after = self.cfg.accounts.expire_after_secs;
        if let Some(book) = self.accounts.as_mut()
            && let Some((group, name)) = book.group_for(login)
        {
            let name = name.to_string();
            book.touch(&name, unix_now(), expire_after);
            return Ok(group);
        }
        if self.groups.get(port_group).is_some_and(|g| !g.pools.is_empty()) {
            return Ok(port_group);
        }
        Err(crate::stratum::StratumError::UnknownAccount)
    }

    /// Once a minute: activity of accounts with miners, and accounts idle past
    /// `expire-after` removed.
    pub(super) fn accounts_tick(&mut self, now: Instant) {
        if self.accounts.is_none() || !self.clock(now).is_multiple_of(ACCOUNTS_EVERY) {
            return;
        }
        let mut busy: Vec<GroupId> = self
            .miners
            .iter()
            .filter(|(_, m)| matches!(m.state, MinerState::Ready | MinerState::WaitReady { .. }))
            .map(|(_, m)| m.group)
            .collect();
        busy.sort();
        busy.dedup();
        let after = self.cfg.accounts.expire_after_secs;
        let Some(book) = self.accounts.as_mut() else { return };
        let t = unix_now();
        let active: Vec<String> = book.groups.iter().filter(|(_, g)| busy.binary_search(g).is_ok()).map(|(n, _)| n.clone()).collect();
        for name in active {
            book.touch(&name, t, after);
        }
        if after == 0 {
            return;
        }
        let deleting: Vec<&String> = book.writes.values().filter_map(|w| if let Write::Delete(n) = w { Some(n) } else { None }).collect();
        let expired: Vec<String> = book.table.expired(t, after).into_iter().filter(|n| !deleting.contains(&n)).collect();
        for name in expired {
            log::info!("account {name}: no activity for {after} s, removing it");
            let ticket = book.writer.submit(Op::Delete { name: name.clone() });
            book.writes.insert(ticket.0, Write::Delete(name));
        }
    }

    /// A logged-in miner of `group` left: if that is an account's, the account was active
    /// until now. Without this the once-a-minute check would see its last minute late, and
    /// a short `expire-after` would remove it up to a minute early.
    pub(super) fn account_miner_left(&mut self, group: GroupId) {
        let Some(name) = self.groups.account(group) else { return };
        let Some(book) = self.accounts.as_mut() else { return };
        book.touch(name, unix_now(), self.cfg.accounts.expire_after_secs);
    }

    /// Test hook: the store's next fsync fails, as a dying SD card's would.
    pub fn fail_next_store_sync(&self) {
        if let Some(book) = &self.accounts {
            book.writer.fail_next_sync();
        }
    }

    /// At stop: the activity kept in memory is written, and the writer finishes its queue.
    pub(super) fn close_accounts(&mut self) {
        let Some(mut book) = self.accounts.take() else { return };
        for (name, t) in book.table.take_unpersisted_touches() {
            book.writer.submit(Op::Touch { name, t });
        }
        book.writer.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accounts_api_is_api_v1_and_below_it() {
        for path in ["/api/v1", "/api/v1/", "/api/v1/users", "/api/v1/users/0123456789abcdef"] {
            assert!(is_accounts_path(path), "{path}");
        }
        for path in ["/api/v10", "/api/v1x/users", "/api/v2/users", "/1/summary", "/metrics", "/", "/api"] {
            assert!(!is_accounts_path(path), "{path}");
        }
    }

    #[test]
    fn refusals_by_the_access_rules_have_the_accounts_apis_shape() {
        for status in [401, 403] {
            let (got, kind, body) = denied(status);
            assert_eq!((got, kind), (status, "application/json"));
            let v: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["name"], "", "{v}");
            assert!(v.get("status").is_none(), "{v}");
        }
        let v: Value = serde_json::from_slice(&denied(401).2).unwrap();
        assert!(v["error"].as_str().unwrap().contains("Authorization: Bearer"), "{v}");
        let v: Value = serde_json::from_slice(&denied(403).2).unwrap();
        assert!(v["error"].as_str().unwrap().contains("admin-token"), "{v}");
    }
}
