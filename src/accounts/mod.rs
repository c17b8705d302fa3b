//! User accounts: pool credentials registered through the REST API, each under a short
//! random name that miners use as their login, so the proxy mines to that account's pool.
//!
//! The parts, none of which touches a socket or the event loop:
//!
//! - [`parse_registration`] (`registration.rs`): the `POST /users` body, checked.
//! - [`Accounts`] (here): the in-memory table the loop reads, by name and by credentials.
//! - [`Store`] (`store/`; the bytes of the file in `store/record.rs`): the append-only
//!   file that makes an acknowledged registration survive a restart or a `kill -9`.
//! - [`StoreWriter`] (`writer.rs`): owns the store on its own thread so the loop never
//!   waits for an fsync; completions come back through a channel and a `mio::Waker`.
//!
//! How the loop is meant to use them. At startup, before the loop:
//! `let (accounts, report, writer) = StoreWriter::open(path, waker)?` (the report says
//! how much was loaded, for the log). Then, when the waker fires, `writer.poll_done()`
//! gives the completions, and:
//!
//! 1. Registration: `parse_registration(body)` (answer `RegError::status` on error), then
//!    `accounts.register(reg, now)`. If `created_new`, submit
//!    `Op::Register { account: accounts.get(&name).cloned() }` and keep the HTTP request
//!    waiting on the ticket; if not `durable`, an earlier request for the same credentials
//!    is still being written: wait for that one. When `Done` arrives: `Ok` ->
//!    `accounts.mark_durable(&name)` and answer 201 with [`registered_json`]; `Err` ->
//!    `accounts.delete(&name)` and answer 503 (never 201: the record may not be on disk).
//!    If `durable` already, answer at once.
//! 2. Miner login: `accounts.get(login)`; on activity (a login, each minute while the
//!    account has miners, a miner leaving) `if accounts.touch(name, now, every)
//!    { writer.submit(Op::Touch { .. }) }`, which asks once per [`touch_persist_secs`]
//!    per account (a minute to an hour), never per share.
//! 3. Deletion and expiry: `accounts.delete(name)` then `Op::Delete`; `accounts.expired`
//!    lists candidates for an `expire-after` setting, never counting idleness from before
//!    `accounts.watch_from(start)` by more than the store can have missed.
//! 4. Shutdown: submit the touches from [`Accounts::take_unpersisted_touches`], then drop
//!    the writer, which finishes what is queued.

mod registration;
mod store;
mod writer;

pub use registration::{MAX_ALGO_LEN, MAX_CREDENTIAL_LEN, MAX_POOL_LEN, RegError, Registration, parse_registration};
pub use store::{LoadReport, Op, Store, StoreError};
pub use writer::{Done, StoreWriter, Ticket};

use serde_json::{Value, json};
use std::collections::HashMap;
use std::fmt;
use std::io::Read;

/// The longest interval between written touches of an account with miners (the only
/// interval in versions before [`touch_persist_secs`]).
pub const TOUCH_PERSIST_MAX_SECS: u64 = 3600;

/// The shortest interval between written touches of one account.
pub const TOUCH_PERSIST_MIN_SECS: u64 = 60;

/// How much activity a crash can lose: everything after the last written touch, which is at
/// most one persist interval (an hour at most, in this version and older ones) plus the
/// minute between the loop's activity checks plus a write in flight. Twice the hour bounds
/// it with room to spare.
pub const UNSAVED_ACTIVITY_MAX_SECS: u64 = 2 * TOUCH_PERSIST_MAX_SECS;

/// How often a busy account's activity is written, for an `expire-after` of
/// `expire_after_secs` (0 = off): a quarter of it, between a minute and an hour. So what a
/// crash loses is a small part of the window, while a farm's touches stay one small write
/// per account per interval, never one per share.
pub fn touch_persist_secs(expire_after_secs: u64) -> u64 {
    if expire_after_secs == 0 {
        return TOUCH_PERSIST_MAX_SECS;
    }
    (expire_after_secs / 4).clamp(TOUCH_PERSIST_MIN_SECS, TOUCH_PERSIST_MAX_SECS)
}

/// One registered account.
#[derive(Clone, PartialEq, Eq)]
pub struct Account {
    /// 16 lowercase hex characters; the miner's login.
    pub name: String,
    /// `host:port`.
    pub pool: String,
    /// The pool login.
    pub user: String,
    /// The pool password; never logged (`Debug` prints `********`).
    pub password: String,
    /// The algorithm to announce to miners, if the user named one.
    pub algo: Option<String>,
    /// Unix seconds.
    pub created: u64,
    /// Unix seconds of the last miner activity (the registration until then).
    pub last_active: u64,
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("name", &self.name)
            .field("pool", &self.pool)
            .field("user", &self.user)
            .field("password", &"********")
            .field("algo", &self.algo)
            .field("created", &self.created)
            .field("last_active", &self.last_active)
            .finish()
    }
}

/// What [`Accounts::register`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    pub name: String,
    /// A new account: submit `Op::Register` and answer once it is written.
    pub created_new: bool,
    /// The account is on disk, so the answer may go out now. False for a new account, and
    /// for credentials whose first registration is still being written.
    pub durable: bool,
}

/// The credential triple that identifies an account for idempotent registration.
type Credentials = (String, String, String);

struct Entry {
    account: Account,
    durable: bool,
    /// The `last_active` the store was last asked to write.
    persisted_active: u64,
}

/// The in-memory table of accounts, read by the loop.
#[derive(Default)]
pub struct Accounts {
    by_name: HashMap<String, Entry>,
    by_credentials: HashMap<Credentials, String>,
    /// Unix seconds since when this process has seen all activity (0: always). Activity
    /// before it may be missing from the store after a crash; see [`Accounts::expired`].
    watched_since: u64,
    /// State for names when `/dev/urandom` cannot be read; 0 until first needed.
    fallback: u64,
}

impl fmt::Debug for Accounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Accounts").field("len", &self.by_name.len()).finish()
    }
}

impl Accounts {
    /// An empty table.
    pub fn new() -> Accounts {
        Accounts::default()
    }

    /// Registers `reg`, or finds the account already registered with the same pool, user
    /// and password (then `created_new` is false). A new account gets a fresh random name
    /// and is not durable until [`Accounts::mark_durable`]. Nothing is written to disk here.
    pub fn register(&mut self, reg: Registration, now_unix: u64) -> Registered {
        let key = (reg.pool, reg.user, reg.password);
        if let Some(name) = self.by_credentials.get(&key) {
            let durable = self.by_name.get(name).is_some_and(|e| e.durable);
            return Registered { name: name.clone(), created_new: false, durable };
        }
        let name = self.fresh_name();
        let (pool, user, password) = key;
        let account = Account { name: name.clone(), pool, user, password, algo: reg.algo, created: now_unix, last_active: now_unix };
        self.insert(account, false);
        Registered { name, created_new: true, durable: false }
    }

    /// Marks a registered account as written to disk; false if there is no such account.
    pub fn mark_durable(&mut self, name: &str) -> bool {
        self.by_name.get_mut(name).map(|e| e.durable = true).is_some()
    }

    /// Whether `name` is known and on disk.
    pub fn is_durable(&self, name: &str) -> bool {
        self.by_name.get(name).is_some_and(|e| e.durable)
    }

    /// The account a miner logging in as `name` mines to (durable or not).
    pub fn get(&self, name: &str) -> Option<&Account> {
        self.by_name.get(name).map(|e| &e.account)
    }

    /// The account registered with exactly these credentials.
    pub fn find(&self, pool: &str, user: &str, password: &str) -> Option<&Account> {
        let key = (pool.to_string(), user.to_string(), password.to_string());
        self.by_credentials.get(&key).and_then(|name| self.get(name))
    }

    /// Removes an account; false if there was none.
    pub fn delete(&mut self, name: &str) -> bool {
        let Some(entry) = self.by_name.remove(name) else { return false };
        let a = entry.account;
        let key = (a.pool, a.user, a.password);
        if self.by_credentials.get(&key).is_some_and(|n| n == name) {
            self.by_credentials.remove(&key);
        }
        true
    }

    /// Records miner activity. Returns true when the store should be told (submit
    /// `Op::Touch { name, t: now_unix }`): the last persisted activity is `persist_every`
    /// seconds old (see [`touch_persist_secs`]).
    pub fn touch(&mut self, name: &str, now_unix: u64, persist_every: u64) -> bool {
        let Some(e) = self.by_name.get_mut(name) else { return false };
        e.account.last_active = e.account.last_active.max(now_unix);
        if e.durable && now_unix >= e.persisted_active.saturating_add(persist_every) {
            e.persisted_active = now_unix;
            return true;
        }
        false
    }

    /// The activity not yet sent to the store, as `(name, t)`, now counted as sent; for a
    /// clean shutdown.
    pub fn take_unpersisted_touches(&mut self) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        for (name, e) in &mut self.by_name {
            if e.durable && e.account.last_active > e.persisted_active {
                e.persisted_active = e.account.last_active;
                out.push((name.clone(), e.account.last_active));
            }
        }
        out.sort();
        out
    }

    /// From now on this process sees every miner's activity: called once the table is
    /// loaded from the store, before miners are served.
    pub fn watch_from(&mut self, now_unix: u64) {
        self.watched_since = now_unix;
    }

    /// Durable accounts idle for at least `after_secs`, sorted by name. `after_secs == 0`
    /// means expiry is off: none.
    ///
    /// Idleness counts from the last activity (the registration if never used), but from
    /// no earlier than [`Accounts::watch_from`]'s moment while that is within
    /// [`UNSAVED_ACTIVITY_MAX_SECS`] of the stored activity: after a crash the store may
    /// miss the activity since its last written touch, and an account cannot be judged
    /// idle for longer than we have been watching it. The bound keeps restarts more
    /// frequent than `after_secs` from postponing expiry forever.
    pub fn expired(&self, now_unix: u64, after_secs: u64) -> Vec<String> {
        if after_secs == 0 {
            return Vec::new();
        }
        let mut out: Vec<String> = self
            .by_name
            .values()
            .filter(|e| e.durable && now_unix.saturating_sub(self.idle_since(&e.account)) >= after_secs)
            .map(|e| e.account.name.clone())
            .collect();
        out.sort();
        out
    }

    /// The moment an account's idleness is counted from (see [`Accounts::expired`]).
    fn idle_since(&self, a: &Account) -> u64 {
        let known = a.last_active.max(a.created);
        known.max(self.watched_since.min(known.saturating_add(UNSAVED_ACTIVITY_MAX_SECS)))
    }

    /// Every account, durable or not, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Account> {
        self.by_name.values().map(|e| &e.account)
    }

    /// How many accounts, durable or not.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// No accounts at all.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// Adds an account read from the store: durable, its activity already persisted.
    pub(crate) fn insert_loaded(&mut self, account: Account) {
        self.insert(account, true);
    }

    fn insert(&mut self, account: Account, durable: bool) {
        let key = (account.pool.clone(), account.user.clone(), account.password.clone());
        self.by_credentials.insert(key, account.name.clone());
        let persisted_active = account.last_active;
        self.by_name.insert(account.name.clone(), Entry { account, durable, persisted_active });
    }

    /// 64 random bits as 16 hex digits, unused so far. The name says nothing about the
    /// credentials: knowing a user's wallet must not let anyone mine on their account's name.
    fn fresh_name(&mut self) -> String {
        loop {
            let name = format!("{:016x}", self.random_u64());
            if !self.by_name.contains_key(&name) {
                return name;
            }
        }
    }

    fn random_u64(&mut self) -> u64 {
        let mut buf = [0u8; 8];
        if std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf)).is_ok() {
            return u64::from_le_bytes(buf);
        }
        if self.fallback == 0 {
            log::warn!("accounts: /dev/urandom is unreadable; names come from the clock and pid and are easier to guess");
            let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1);
            self.fallback = (nanos ^ u64::from(std::process::id()).rotate_left(32)) | 1;
        }
        // splitmix64
        self.fallback = self.fallback.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.fallback;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// One account for the API, without the password.
pub fn account_json(a: &Account) -> Value {
    json!({ "name": a.name, "pool": a.pool, "user": a.user, "algo": a.algo, "created": a.created, "last_active": a.last_active })
}

/// The durable accounts for the API, oldest first, without passwords.
pub fn list_json(accounts: &Accounts) -> Value {
    let mut list: Vec<&Account> = accounts.by_name.values().filter(|e| e.durable).map(|e| &e.account).collect();
    list.sort_by(|a, b| (a.created, &a.name).cmp(&(b.created, &b.name)));
    Value::Array(list.into_iter().map(account_json).collect())
}

/// The answer to a successful registration, in the seed proxy's shape:
/// `{"name": name, "error": ""}`.
pub fn registered_json(name: &str) -> Value {
    json!({ "name": name, "error": "" })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn reg(pool: &str, user: &str, password: &str) -> Registration {
        Registration { pool: pool.into(), user: user.into(), password: password.into(), algo: None }
    }

    fn durable(accounts: &mut Accounts, r: Registration, now: u64) -> String {
        let got = accounts.register(r, now);
        assert!(accounts.mark_durable(&got.name));
        got.name
    }

    fn is_name(s: &str) -> bool {
        s.len() == 16 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    }

    #[test]
    fn register_then_look_up_by_name_and_credentials() {
        let mut t = Accounts::new();
        let r = t.register(Registration { algo: Some("rx/0".into()), ..reg("p:1", "u", "pw") }, 100);
        assert!(r.created_new && !r.durable && is_name(&r.name), "{r:?}");
        let a = t.get(&r.name).unwrap();
        assert_eq!((a.pool.as_str(), a.user.as_str(), a.password.as_str(), a.algo.as_deref()), ("p:1", "u", "pw", Some("rx/0")));
        assert_eq!((a.created, a.last_active), (100, 100));
        assert_eq!(t.find("p:1", "u", "pw").map(|a| a.name.clone()), Some(r.name.clone()));
        assert!(t.find("p:1", "u", "other").is_none());
        assert_eq!(t.len(), 1);
        assert!(t.get("0000000000000000").is_none());
    }

    #[test]
    fn registering_the_same_credentials_again_gives_the_same_name() {
        let mut t = Accounts::new();
        let first = t.register(reg("p:1", "u", "pw"), 100);
        let again = t.register(reg("p:1", "u", "pw"), 200);
        assert_eq!(again, Registered { name: first.name.clone(), created_new: false, durable: false }, "still being written");
        t.mark_durable(&first.name);
        let third = t.register(Registration { algo: Some("cn/r".into()), ..reg("p:1", "u", "pw") }, 300);
        assert_eq!(third, Registered { name: first.name.clone(), created_new: false, durable: true });
        assert_eq!(t.get(&first.name).unwrap().created, 100);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn different_credentials_get_different_hex_names() {
        let mut t = Accounts::new();
        let mut names = std::collections::HashSet::new();
        for i in 0..200 {
            let r = t.register(reg("p:1", &format!("u{i}"), "pw"), 1);
            assert!(r.created_new && is_name(&r.name), "{}", r.name);
            names.insert(r.name);
        }
        // Any field differing makes another account.
        names.insert(t.register(reg("p:2", "u0", "pw"), 1).name);
        names.insert(t.register(reg("p:1", "u0", "pw2"), 1).name);
        assert_eq!(names.len(), 202);
        assert_eq!(t.len(), 202);
    }

    #[test]
    fn delete_forgets_name_and_credentials() {
        let mut t = Accounts::new();
        let name = durable(&mut t, reg("p:1", "u", "pw"), 1);
        assert!(t.delete(&name));
        assert!(!t.delete(&name), "already gone");
        assert!(t.get(&name).is_none() && t.find("p:1", "u", "pw").is_none() && t.is_empty());
        let again = t.register(reg("p:1", "u", "pw"), 2);
        assert!(again.created_new && again.name != name, "a new registration after a delete is a new account");
    }

    #[test]
    fn touches_update_activity_and_ask_to_persist_once_per_interval() {
        const H: u64 = TOUCH_PERSIST_MAX_SECS;
        let mut t = Accounts::new();
        let r = t.register(reg("p:1", "u", "pw"), 1000);
        assert!(!t.touch(&r.name, 1000 + H, H), "not on disk yet: nothing to persist");
        t.mark_durable(&r.name);
        assert!(t.touch(&r.name, 1000 + H, H), "an interval after registration");
        assert!(!t.touch(&r.name, 1000 + H + 10, H), "again within the interval");
        assert_eq!(t.get(&r.name).unwrap().last_active, 1000 + H + 10);
        assert!(!t.touch(&r.name, 5, H), "time going back neither persists nor rewinds");
        assert_eq!(t.get(&r.name).unwrap().last_active, 1000 + H + 10);
        assert!(t.touch(&r.name, 1000 + 2 * H, H));
        assert!(!t.touch("nobody", 1, H));

        assert!(!t.touch(&r.name, 1000 + 2 * H + 7, H));
        assert_eq!(t.take_unpersisted_touches(), vec![(r.name.clone(), 1000 + 2 * H + 7)]);
        assert!(t.take_unpersisted_touches().is_empty(), "taken once");
        // A shorter interval asks sooner.
        assert!(!t.touch(&r.name, 1000 + 2 * H + 66, 60));
        assert!(t.touch(&r.name, 1000 + 2 * H + 67, 60));
    }

    #[test]
    fn touches_are_persisted_a_quarter_of_expire_after_apart_within_a_minute_and_an_hour() {
        assert_eq!(touch_persist_secs(0), 3600, "expiry off: hourly, for the API's last_active");
        assert_eq!(touch_persist_secs(120), 60);
        assert_eq!(touch_persist_secs(1), 60);
        assert_eq!(touch_persist_secs(1200), 300);
        assert_eq!(touch_persist_secs(86_400), 3600);
        assert_eq!(touch_persist_secs(u64::MAX), 3600);
    }

    #[test]
    fn expiry_counts_from_the_last_activity() {
        let mut t = Accounts::new();
        let idle = durable(&mut t, reg("p:1", "idle", "pw"), 1000);
        let busy = durable(&mut t, reg("p:1", "busy", "pw"), 1000);
        let pending = t.register(reg("p:1", "pending", "pw"), 1000).name;
        t.touch(&busy, 5000, 60);
        assert!(t.expired(1099, 100).is_empty());
        assert_eq!(t.expired(1100, 100), vec![idle.clone()], "pending registrations never expire");
        let mut both = vec![idle.clone(), busy.clone()];
        both.sort();
        assert_eq!(t.expired(5100, 100), both);
        assert!(t.expired(u64::MAX, 0).is_empty(), "0 = expiry off");
        assert!(t.get(&pending).is_some());
    }

    /// The tester's crash: `expire-after` 120, registered at 1000, mined until 1240 with
    /// only the registration on disk, `kill -9` at 1240, restarted at 1241. It must live
    /// until 120 s after 1241 at least.
    #[test]
    fn after_a_restart_idleness_counts_from_no_earlier_than_the_start() {
        let mut t = Accounts::new();
        let name = durable(&mut t, reg("p:1", "u", "pw"), 1000);
        // What the store gives back: the account as registered, never touched.
        t.watch_from(1241);
        assert!(t.expired(1241 + 63, 120).is_empty(), "63 s after the restart is not 120 s of idleness");
        assert!(t.expired(1241 + 119, 120).is_empty());
        assert_eq!(t.expired(1241 + 120, 120), vec![name.clone()], "120 s of watching with no activity");
        // Activity after the start counts as usual.
        t.touch(&name, 1300, 60);
        assert!(t.expired(1419, 120).is_empty());
        assert_eq!(t.expired(1420, 120), vec![name.clone()]);
    }

    #[test]
    fn a_restart_postpones_expiry_only_by_what_a_crash_can_have_lost() {
        let mut t = Accounts::new();
        let long_idle = durable(&mut t, reg("p:1", "a", "pw"), 1000);
        let recent = durable(&mut t, reg("p:1", "b", "pw"), 1000);
        // Restarted a day later: `long_idle`'s last written activity is far older than
        // anything a crash can have lost, so its idleness still counts from then (plus the
        // bound), not from the restart. Restarts more often than `expire-after` do not keep
        // an abandoned account alive forever.
        let start = 1000 + 86_400;
        t.touch(&recent, start - 600, 3600);
        t.watch_from(start);
        let week = 7 * 86_400;
        assert_eq!(t.expired(1000 + UNSAVED_ACTIVITY_MAX_SECS + week, week), vec![long_idle.clone()]);
        assert!(t.expired(1000 + UNSAVED_ACTIVITY_MAX_SECS + week - 1, week).is_empty());
        // `recent` was last seen within the bound of the start: counted from the start.
        assert!(t.expired(start + 119, 120).contains(&long_idle));
        assert!(!t.expired(start + 119, 120).contains(&recent));
        assert!(t.expired(start + 120, 120).contains(&recent));
    }

    #[test]
    fn the_list_shows_durable_accounts_without_passwords() {
        let mut t = Accounts::new();
        let b = durable(&mut t, Registration { algo: Some("rx/0".into()), ..reg("p:1", "u2", "hunter2") }, 20);
        let a = durable(&mut t, reg("p:1", "u1", "hunter2"), 10);
        t.register(reg("p:1", "u3", "hunter2"), 5);
        let list = list_json(&t);
        assert_eq!(
            list,
            json!([
                {"name": a, "pool": "p:1", "user": "u1", "algo": null, "created": 10, "last_active": 10},
                {"name": b, "pool": "p:1", "user": "u2", "algo": "rx/0", "created": 20, "last_active": 20},
            ])
        );
        assert!(!list.to_string().contains("hunter2"));
        assert!(!format!("{:?}", t.get(&a).unwrap()).contains("hunter2"));
        assert!(format!("{:?}", t.get(&a).unwrap()).contains("********"));
        assert_eq!(registered_json(&a), json!({"name": a, "error": ""}));
    }
}
