//! sendfloor: what this machine's kernel charges for the writes and reads any proxy must
//! make, with no proxy logic at all. It answers "how fast could a proxy be here?".
//!
//! One thread plays the proxy, another the miners' host (blocking in epoll when idle, as a
//! miner process does). For `--rounds` rounds the proxy thread writes one real job line (as
//! the proxy encodes a testpool job) to each of `--sockets` loopback connections, then reads
//! one share-sized line from each. The thread's own CPU clock is read around the writes and
//! around the reads, so the figures are CPU per call, including the receive path of the
//! peer that loopback runs in the sender's context.
//!
//! The projection uses the benchmark's workload (a job every 5 s, a share every 2 s): per
//! share a proxy must read the submit and write the answer, plus 0.4 job writes; per job it
//! writes to every miner. Pool-side writes, epoll and all user-space work come on top.

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use stratum_proxy::stratum::{Job, write::JobLine};

const TOOL: &str = "sendfloor";
/// Job writes per share in the benchmark's workload: a job every 5 s, a share every 2 s.
const JOBS_PER_SHARE: f64 = 0.4;
/// A submit as xmrig sends it, padded to its usual length.
const SHARE: &[u8] = br#"{"id":7,"jsonrpc":"2.0","method":"submit","params":{"id":"00000a2b","job_id":"12-1764150000000000","nonce":"4a0b0c01","result":"e1364b8782719d7683e2ccd3d8f724bc59dfa780a9e960e7c0e0046acdb40100","algo":"rx/0"}}
"#;
/// The pool's verdict as the proxy passes it on to the miner.
const ANSWER: &[u8] = b"{\"id\":7,\"jsonrpc\":\"2.0\",\"error\":null,\"result\":{\"status\":\"OK\"}}\n";
/// No round may take longer than this; the tool gives up instead of hanging.
const ROUND_LIMIT: Duration = Duration::from_secs(30);

fn die(msg: String) -> ! {
    eprintln!("{TOOL}: {msg}");
    std::process::exit(2);
}

/// This thread's CPU time in microseconds.
fn thread_cpu_us() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime only writes the struct we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}

/// The job line the proxy sends a miner for a job shaped like testpool's.
fn job_line() -> Vec<u8> {
    let v = serde_json::json!({
        "blob": "0e0ea8e3c8c906".to_string() + &"5a".repeat(69),
        "job_id": "12-1764150000000000", "target": "e4a63d00", "algo": "rx/0",
        "height": 112, "seed_hash": "5a".repeat(32),
    });
    let job = Job::from_value(&v, None).unwrap_or_else(|e| die(format!("job: {e}")));
    let mut line = JobLine::new(&job, "e4a63d00", 1000, true);
    line.patch(1);
    line.line
}

/// The miners' host: reads everything, counts bytes, and answers each job with one share
/// once `answer` says so (the share phase of a round), counting the rounds answered in
/// `answered_rounds`; stops once it has read `total` bytes.
fn miners_host(mut conns: Vec<TcpStream>, got: Arc<AtomicU64>, answer: Arc<AtomicUsize>, answered_rounds: Arc<AtomicUsize>, total: u64) {
    let mut poll = Poll::new().unwrap_or_else(|e| die(format!("poll: {e}")));
    for (i, c) in conns.iter_mut().enumerate() {
        if let Err(e) = poll.registry().register(c, Token(i), Interest::READABLE) {
            die(format!("register: {e}"));
        }
    }
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 * 1024];
    let mut answered = 0;
    while got.load(Ordering::SeqCst) < total {
        if let Err(e) = poll.poll(&mut events, Some(Duration::from_millis(50)))
            && e.kind() != ErrorKind::Interrupted
        {
            die(format!("poll: {e}"));
        }
        for ev in events.iter() {
            loop {
                match conns[ev.token().0].read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => {
                        got.fetch_add(n as u64, Ordering::SeqCst);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => die(format!("miner read: {e}")),
                }
            }
        }
        if answer.load(Ordering::SeqCst) > answered {
            for c in &mut conns {
                if let Err(e) = c.write_all(SHARE) {
                    die(format!("miner write: {e}"));
                }
            }
            answered += 1;
            answered_rounds.store(answered, Ordering::SeqCst);
        }
    }
}

/// Waits until `cond` holds, or gives up after ROUND_LIMIT.
fn wait_for(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + ROUND_LIMIT;
    while !cond() {
        if Instant::now() > deadline {
            die(format!("timed out waiting for {what}"));
        }
        std::thread::yield_now();
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut opts = getopts::Options::new();
    opts.optopt("", "sockets", "loopback connections (default 2000)", "N");
    opts.optopt("", "rounds", "job rounds (default 20)", "N");
    opts.optopt("", "miners", "project the floor for this many miners (default 10000)", "N");
    opts.optflag("h", "help", "this help");
    let m = opts.parse(&args[1..]).unwrap_or_else(|e| die(e.to_string()));
    if m.opt_present("h") {
        print!("{}", opts.usage("Usage: sendfloor [options]"));
        return;
    }
    let num = |name: &str, default: usize| -> usize {
        match m.opt_str(name) {
            None => default,
            Some(s) => s.parse().ok().filter(|&n| n > 0).unwrap_or_else(|| die(format!("--{name}: not a positive number: {s}"))),
        }
    };
    let (sockets, rounds, miners) = (num("sockets", 2000), num("rounds", 20), num("miners", 10_000));
    if let Err(e) = stratum_proxy::net::raise_nofile_limit() {
        eprintln!("{TOOL}: cannot raise the open-file limit: {e}");
    }

    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| die(format!("bind: {e}")));
    let addr = listener.local_addr().unwrap_or_else(|e| die(format!("local_addr: {e}")));
    let mut proxy_side = Vec::with_capacity(sockets);
    let mut miner_side = Vec::with_capacity(sockets);
    for _ in 0..sockets {
        let c = std::net::TcpStream::connect(addr).unwrap_or_else(|e| die(format!("connect {addr}: {e} (raise ulimit -n?)")));
        let (s, _) = listener.accept().unwrap_or_else(|e| die(format!("accept: {e}")));
        for sock in [&c, &s] {
            sock.set_nodelay(true).unwrap_or_else(|e| die(format!("nodelay: {e}")));
            sock.set_nonblocking(true).unwrap_or_else(|e| die(format!("nonblocking: {e}")));
        }
        miner_side.push(TcpStream::from_std(c));
        proxy_side.push(TcpStream::from_std(s));
    }

    let line = job_line();
    let got = Arc::new(AtomicU64::new(0));
    let answer = Arc::new(AtomicUsize::new(0));
    let answered = Arc::new(AtomicUsize::new(0));
    let host = {
        let (got, answer, answered) = (got.clone(), answer.clone(), answered.clone());
        let total = (rounds * sockets * (line.len() + ANSWER.len())) as u64;
        std::thread::spawn(move || miners_host(miner_side, got, answer, answered, total))
    };

    let (mut write_us, mut read_us, mut answer_us) = (0u64, 0u64, 0u64);
    let mut buf = vec![0u8; 4096];
    for round in 1..=rounds {
        let t = thread_cpu_us();
        for s in &mut proxy_side {
            if let Err(e) = s.write_all(&line) {
                die(format!("job write: {e}"));
            }
        }
        write_us += thread_cpu_us() - t;
        let want = (round * sockets * line.len() + (round - 1) * sockets * ANSWER.len()) as u64;
        wait_for("the miners to read the jobs", || got.load(Ordering::SeqCst) >= want);

        // Every share is in our receive queues before the first read, so the reads timed
        // return data, as in a proxy woken by readiness.
        answer.store(round, Ordering::SeqCst);
        wait_for("the miners to send their shares", || answered.load(Ordering::SeqCst) >= round);
        for s in &mut proxy_side {
            let mut have = 0;
            let deadline = Instant::now() + ROUND_LIMIT;
            while have < SHARE.len() {
                let t = thread_cpu_us();
                let r = s.read(&mut buf[have..]);
                read_us += thread_cpu_us() - t;
                match r {
                    Ok(0) => die("miner closed".into()),
                    Ok(n) => have += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => std::thread::yield_now(),
                    Err(e) => die(format!("share read: {e}")),
                }
            }
            let t = thread_cpu_us();
            let r = s.write_all(ANSWER);
            answer_us += thread_cpu_us() - t;
            if let Err(e) = r {
                die(format!("answer write: {e}"));
            }
        }
        let want = (round * sockets * (line.len() + ANSWER.len())) as u64;
        wait_for("the miners to read the answers", || got.load(Ordering::SeqCst) >= want);
    }
    drop(proxy_side);
    let _ = host.join();

    let calls = (sockets * rounds) as f64;
    let (w, r, a) = (write_us as f64 / calls, read_us as f64 / calls, answer_us as f64 / calls);
    let per_share = r + a + JOBS_PER_SHARE * w;
    let fanout_ms = w * miners as f64 / 1000.0;
    println!(
        "{{\"sockets\":{sockets},\"rounds\":{rounds},\"job_bytes\":{},\"job_write_us\":{w:.2},\"share_read_us\":{r:.2},\
         \"answer_write_us\":{a:.2},\"floor_cpu_ms_per_1k_shares\":{per_share:.1},\"floor_fanout_ms\":{fanout_ms:.1},\"miners\":{miners}}}",
        line.len()
    );
    eprintln!(
        "{TOOL}: {sockets} loopback connections x {rounds} rounds, CPU per call: {}-byte job write {w:.2} us, \
         share read {r:.2} us, answer write {a:.2} us.\n{TOOL}: floor for any proxy here: {per_share:.1} ms of CPU \
         per 1,000 shares (read + answer + {JOBS_PER_SHARE} job writes each, no pool traffic), and {fanout_ms:.1} ms \
         to write one job to {miners} miners from one thread.",
        line.len()
    );
}
