//! The store on its own thread, so the loop never waits for the disk (an SD card can take
//! 100 ms per fsync). The loop submits operations without blocking and gets a ticket;
//! the thread appends and fsyncs whatever is queued as one record, then sends a `Done`
//! per ticket and wakes the loop through its `mio::Waker`, as the resolver does.

use super::store::MAX_OPS_PER_RECORD;
use super::{Accounts, LoadReport, Op, Store, StoreError};
use mio::Waker;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::thread::JoinHandle;

/// Names one submitted operation; its `Done` carries the same ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ticket(pub u64);

/// The outcome of one submitted operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    pub ticket: Ticket,
    /// `Ok` once the operation is on disk; only then may it be acknowledged. `Err` says why
    /// not (the HTTP layer answers 503).
    pub result: Result<(), String>,
}

/// The loop's side of the writer thread.
pub struct StoreWriter {
    jobs: Option<Sender<(Ticket, Op)>>,
    done: Receiver<Done>,
    /// Failures noticed on this side (the thread is gone), handed out by `poll_done`.
    failed_here: Vec<Done>,
    /// Submitted, no `Done` handed out yet.
    outstanding: BTreeSet<Ticket>,
    next_ticket: u64,
    fail_next_sync: Arc<AtomicBool>,
    waker: Arc<Waker>,
    thread: Option<JoinHandle<()>>,
}

impl StoreWriter {
    /// Loads the accounts file (blocking; call it before the loop starts) and starts the
    /// writer thread on it. The table is what the loop serves from.
    pub fn open(path: impl AsRef<Path>, waker: Arc<Waker>) -> Result<(Accounts, LoadReport, StoreWriter), StoreError> {
        let (store, report) = Store::open(path)?;
        let accounts = store.accounts();
        let path = store.path().to_path_buf();
        let writer = StoreWriter::spawn(store, waker).map_err(|source| StoreError::Io {
            path,
            doing: "start the accounts writer thread",
            source,
        })?;
        Ok((accounts, report, writer))
    }

    /// Starts the writer thread on a store that is already open.
    pub fn spawn(mut store: Store, waker: Arc<Waker>) -> std::io::Result<StoreWriter> {
        let (job_tx, job_rx) = channel::<(Ticket, Op)>();
        let (done_tx, done_rx) = channel::<Done>();
        let fail_next_sync = Arc::new(AtomicBool::new(false));
        let fault = fail_next_sync.clone();
        let thread_waker = waker.clone();
        let thread = std::thread::Builder::new()
            .name("accounts-writer".into())
            .spawn(move || write_until_closed(&mut store, &job_rx, &done_tx, &fault, &thread_waker))?;
        Ok(StoreWriter {
            jobs: Some(job_tx),
            done: done_rx,
            failed_here: Vec::new(),
            outstanding: BTreeSet::new(),
            next_ticket: 0,
            fail_next_sync,
            waker,
            thread: Some(thread),
        })
    }

    /// Queues `op` for writing; never blocks. Its `Done` arrives through `poll_done`.
    pub fn submit(&mut self, op: Op) -> Ticket {
        self.next_ticket += 1;
        let ticket = Ticket(self.next_ticket);
        let sent = self.jobs.as_ref().is_some_and(|tx| tx.send((ticket, op)).is_ok());
        if sent {
            self.outstanding.insert(ticket);
        } else {
            self.failed_here.push(Done { ticket, result: Err(STOPPED.into()) });
            // The loop learns of it as it would of any completion.
            let _ = self.waker.wake();
        }
        ticket
    }

    /// The completions that have arrived, without waiting. If the thread has died, every
    /// operation still in flight completes here with an error, so no request waits forever.
    pub fn poll_done(&mut self) -> Vec<Done> {
        let mut out = std::mem::take(&mut self.failed_here);
        loop {
            match self.done.try_recv() {
                Ok(done) => {
                    self.outstanding.remove(&done.ticket);
                    out.push(done);
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    out.extend(
                        std::mem::take(&mut self.outstanding).into_iter().map(|ticket| Done { ticket, result: Err(STOPPED.into()) }),
                    );
                    break;
                }
            }
        }
        out
    }

    /// Operations submitted whose `Done` has not been handed out yet.
    pub fn in_flight(&self) -> usize {
        self.outstanding.len()
    }

    /// Test hook: the next record the thread writes fails as if `fsync` had reported an
    /// I/O error, so tests can see an error result instead of success. Not for production.
    pub fn fail_next_sync(&self) {
        self.fail_next_sync.store(true, Ordering::SeqCst);
    }

    /// Writes what is queued, then stops the thread. Dropping the writer does the same.
    pub fn close(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            log::error!("the accounts writer thread panicked");
        }
    }
}

impl std::fmt::Debug for StoreWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreWriter").field("in_flight", &self.outstanding.len()).finish()
    }
}

impl Drop for StoreWriter {
    fn drop(&mut self) {
        self.stop();
    }
}

const STOPPED: &str = "the accounts writer thread has stopped";

/// Wakes the loop when the thread ends, however it ends, so `poll_done` sees it.
struct WakeOnExit<'a>(&'a Waker);

impl Drop for WakeOnExit<'_> {
    fn drop(&mut self) {
        let _ = self.0.wake();
    }
}

/// The thread: one record and one fsync per batch of whatever has queued up.
fn write_until_closed(store: &mut Store, jobs: &Receiver<(Ticket, Op)>, done: &Sender<Done>, fault: &AtomicBool, waker: &Waker) {
    let _wake = WakeOnExit(waker);
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_OPS_PER_RECORD {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        let (tickets, ops): (Vec<Ticket>, Vec<Op>) = batch.into_iter().unzip();
        if fault.swap(false, Ordering::SeqCst) {
            store.fail_next_sync();
        }
        let result = store.append(&ops).map_err(|e| e.to_string());
        if let Err(e) = &result {
            log::error!("{e}");
        }
        for ticket in tickets {
            if done.send(Done { ticket, result: result.clone() }).is_err() {
                return;
            }
        }
        let _ = waker.wake();
        // After this batch's answers; the next batch waits for it, which is rare (the file
        // must have doubled) and costs one write of the live accounts.
        if result.is_ok()
            && let Err(e) = store.compact_if_worthwhile()
        {
            log::warn!("compaction failed: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::store::tests::{TempPath, account, reopen};
    use crate::accounts::{Account, Registration};
    use mio::{Events, Poll, Token};
    use std::collections::{HashMap, HashSet};
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    const WAKE: Token = Token(7);

    fn poll_and_waker() -> (Poll, Arc<Waker>) {
        let poll = Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), WAKE).unwrap());
        (poll, waker)
    }

    /// Waits as the loop does, for the waker and then `poll_done`, until `n` completions.
    fn wait_for(poll: &mut Poll, w: &mut StoreWriter, n: usize) -> Vec<Done> {
        let mut events = Events::with_capacity(8);
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while got.len() < n {
            assert!(Instant::now() < deadline, "only {} of {n} completions", got.len());
            poll.poll(&mut events, Some(Duration::from_millis(200))).unwrap();
            let woken = events.iter().any(|e| e.token() == WAKE);
            let done = w.poll_done();
            assert!(done.is_empty() || woken, "completions come with a wake-up");
            got.extend(done);
        }
        got
    }

    fn register(i: u64) -> Op {
        Op::Register { account: account(i) }
    }

    #[test]
    fn completions_carry_their_tickets_and_wake_the_loop() {
        let p = TempPath::new("writer");
        let (mut poll, waker) = poll_and_waker();
        let (accounts, report, mut w) = StoreWriter::open(&p.0, waker).unwrap();
        assert!(accounts.is_empty() && report.created);
        assert!(w.poll_done().is_empty());
        let tickets: Vec<Ticket> = (1..=5).map(|i| w.submit(register(i))).collect();
        let t6 = w.submit(Op::Delete { name: account(1).name });
        let done = wait_for(&mut poll, &mut w, 6);
        let mut got: Vec<Ticket> = done.iter().map(|d| d.ticket).collect();
        got.sort();
        let mut want = tickets.clone();
        want.push(t6);
        assert_eq!(got, want);
        assert!(done.iter().all(|d| d.result.is_ok()), "{done:?}");
        w.close();
        let (store, _) = reopen(&p.0).unwrap();
        let t = store.accounts();
        assert_eq!(t.len(), 4);
        assert!(t.get(&account(1).name).is_none() && t.get(&account(5).name).is_some());
    }

    #[test]
    fn an_injected_fsync_failure_is_an_error_not_success() {
        let p = TempPath::new("writer-fail");
        let (mut poll, waker) = poll_and_waker();
        let (_, _, mut w) = StoreWriter::open(&p.0, waker).unwrap();
        w.fail_next_sync();
        let failed = w.submit(register(1));
        let done = wait_for(&mut poll, &mut w, 1);
        assert_eq!(done[0].ticket, failed);
        assert!(matches!(&done[0].result, Err(e) if e.contains("injected fsync failure")), "{done:?}");
        let ok = w.submit(register(2));
        assert_eq!(wait_for(&mut poll, &mut w, 1), vec![Done { ticket: ok, result: Ok(()) }]);
        drop(w);
        let (store, _) = reopen(&p.0).unwrap();
        let names: Vec<String> = store.accounts().iter().map(|a| a.name.clone()).collect();
        assert_eq!(names, vec![account(2).name], "the failed registration is not on disk");
    }

    #[test]
    fn dropping_the_writer_finishes_what_is_queued() {
        let p = TempPath::new("writer-drop");
        let (_poll, waker) = poll_and_waker();
        let (_, _, mut w) = StoreWriter::open(&p.0, waker).unwrap();
        for i in 0..100 {
            w.submit(register(i));
        }
        drop(w);
        let (_, report) = reopen(&p.0).unwrap();
        assert_eq!(report.accounts, 100);
        assert!(report.records < 100, "queued operations share records: {}", report.records);
    }

    const CHILD_ENV: &str = "STRATUM_PROXY_ACCOUNTS_CRASH_CHILD";

    /// The child of `acknowledged_operations_survive_kill_9`: registers and deletes through
    /// the writer until killed, printing `ADD name` / `DEL name` once each is acknowledged
    /// (and `DELETING name` before a deletion is submitted).
    #[test]
    #[ignore]
    fn crash_child() {
        let Some(path) = std::env::var_os(CHILD_ENV) else { return };
        let (mut poll, waker) = poll_and_waker();
        let (mut accounts, _, mut w) = StoreWriter::open(&path, waker).unwrap();
        let mut out = std::io::stdout().lock();
        let pid = std::process::id();
        let mut i = 0u64;
        let mut added_last_round: Vec<String> = Vec::new();
        loop {
            // A few registrations, and the deletion of most of the last round's, queued
            // together so the writer batches them; the deletions make compaction happen.
            let mut waiting: HashMap<Ticket, (&str, String)> = HashMap::new();
            for _ in 0..1 + i % 3 {
                i += 1;
                let reg =
                    Registration { pool: "pool.example.com:3333".into(), user: format!("{pid}-{i}"), password: "pw".into(), algo: None };
                let name = accounts.register(reg, i).name;
                let account: Account = accounts.get(&name).cloned().unwrap();
                waiting.insert(w.submit(Op::Register { account }), ("ADD", name));
            }
            let keep = usize::from(i.is_multiple_of(4));
            for name in added_last_round.drain(..).skip(keep) {
                // Said before the deletion is submitted: from here either outcome is right.
                writeln!(out, "DELETING {name}").unwrap();
                accounts.delete(&name);
                waiting.insert(w.submit(Op::Delete { name: name.clone() }), ("DEL", name));
            }
            for done in wait_for(&mut poll, &mut w, waiting.len()) {
                let (what, name) = waiting.remove(&done.ticket).unwrap();
                done.result.unwrap();
                if what == "ADD" {
                    accounts.mark_durable(&name);
                    added_last_round.push(name.clone());
                }
                writeln!(out, "{what} {name}").unwrap();
            }
        }
    }

    #[test]
    fn acknowledged_operations_survive_kill_9() {
        let p = TempPath::new("crash");
        let test_name = format!("{}::crash_child", module_path!().split_once("::").unwrap().1);
        let mut rng = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() as u64 | 1;
        let mut random = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let mut present: HashSet<String> = HashSet::new();
        let mut deleted: HashSet<String> = HashSet::new();
        let started = Instant::now();
        for round in 0..12 {
            let mut child = Command::new(std::env::current_exe().unwrap())
                .args([test_name.as_str(), "--exact", "--ignored", "--nocapture", "--test-threads=1"])
                .env(CHILD_ENV, &p.0)
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let (tx, rx) = std::sync::mpsc::channel::<String>();
            let stdout = child.stdout.take().unwrap();
            let reader = std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { return };
                    if tx.send(line).is_err() {
                        return;
                    }
                }
            });
            // Kill after a random number of acknowledgements, a random moment later.
            let acks_before_kill = 20 + random(400);
            let deadline = Instant::now() + Duration::from_secs(3);
            let mut lines = Vec::new();
            while (lines.len() as u64) < acks_before_kill && Instant::now() < deadline {
                if let Ok(line) = rx.recv_timeout(Duration::from_millis(50)) {
                    lines.push(line);
                }
            }
            std::thread::sleep(Duration::from_micros(random(3000)));
            child.kill().unwrap();
            child.wait().unwrap();
            reader.join().unwrap();
            lines.extend(rx.try_iter());
            let acked = lines.iter().filter(|l| l.starts_with("ADD ") || l.starts_with("DEL ")).count();
            assert!(acked > 0, "round {round}: the child acknowledged nothing: {lines:?}");
            for line in &lines {
                if let Some(name) = line.strip_prefix("ADD ") {
                    present.insert(name.to_string());
                } else if let Some(name) = line.strip_prefix("DELETING ") {
                    present.remove(name);
                } else if let Some(name) = line.strip_prefix("DEL ") {
                    present.remove(name);
                    deleted.insert(name.to_string());
                }
            }
            let (store, report) = reopen(&p.0).unwrap();
            let t = store.accounts();
            let lost: Vec<&String> = present.iter().filter(|n| t.get(n).is_none()).collect();
            let back: Vec<&String> = deleted.iter().filter(|n| t.get(n).is_some()).collect();
            assert!(lost.is_empty() && back.is_empty(), "round {round}: lost {lost:?}, deletions undone {back:?} ({report:?})");
        }
        assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
    }
}
