//! Worker records: naming, counting, forgetting, and what a record costs.

use super::*;

fn fields<'a>(user: &'a str, rig: Option<&'a str>) -> LoginFields<'a> {
    LoginFields { user, pass: "pw", agent: "XMRig/6", rig_id: rig, ip: "10.0.0.7".parse().unwrap(), custom_diff: 0 }
}

#[test]
fn each_mode_names_workers_from_its_field() {
    let f = fields("WALLET", Some("rig1"));
    let name = |mode| Workers::new(mode, false).name_for(&f);
    assert_eq!(name(WorkersMode::RigId).as_deref(), Some("rig1"));
    assert_eq!(name(WorkersMode::User).as_deref(), Some("WALLET"));
    assert_eq!(name(WorkersMode::Password).as_deref(), Some("pw"));
    assert_eq!(name(WorkersMode::Agent).as_deref(), Some("XMRig/6"));
    assert_eq!(name(WorkersMode::Ip).as_deref(), Some("10.0.0.7"));
    assert_eq!(name(WorkersMode::Disabled), None);
    let no_rig = fields("WALLET", None);
    assert_eq!(Workers::new(WorkersMode::RigId, false).name_for(&no_rig).as_deref(), Some("WALLET"), "rig-id falls back to user");
}

#[test]
fn custom_diff_stats_split_workers_by_difficulty() {
    let mut f = fields("WALLET", Some("rig1"));
    f.custom_diff = 5000;
    assert_eq!(Workers::new(WorkersMode::RigId, true).name_for(&f).as_deref(), Some("rig1+5000"));
    assert_eq!(Workers::new(WorkersMode::RigId, false).name_for(&f).as_deref(), Some("rig1"));
}

#[test]
fn reconnections_stay_one_record() {
    let mut w = Workers::new(WorkersMode::RigId, false);
    let ip = "10.0.0.7".parse().unwrap();
    for t in 0..1000 {
        let k = w.attach("rig1", "WALLET", ip, t).unwrap();
        w.on_accept(k, 100, 1, t);
        w.detach(k, t);
    }
    assert_eq!(w.len(), 1);
    let rec = w.iter().next().unwrap();
    assert_eq!((rec.connections, rec.accepted, rec.windows.total()), (0, 1000, 100_000));
}

#[test]
fn departed_workers_are_forgotten_after_a_day_and_connected_ones_never() {
    let mut w = Workers::new(WorkersMode::RigId, false);
    let ip = "10.0.0.7".parse().unwrap();
    let gone = w.attach("gone", "W", ip, 0).unwrap();
    w.detach(gone, 10);
    w.attach("here", "W", ip, 0).unwrap();
    for t in 11..10 + FORGET_AFTER {
        w.tick(t);
    }
    assert_eq!(w.len(), 2);
    // The sweep runs once a minute: the first one a day after the last activity.
    for t in 10 + FORGET_AFTER..10 + FORGET_AFTER + 60 {
        w.tick(t);
    }
    assert_eq!(w.iter().map(|r| &*r.name).collect::<Vec<_>>(), ["here"]);
    // The name can come back as a fresh record.
    assert!(w.attach("gone", "W", ip, 100_000).is_some());
    assert_eq!(w.len(), 2);
}

#[test]
fn rejections_and_invalid_shares_are_counted_apart() {
    let mut w = Workers::new(WorkersMode::User, false);
    let k = w.attach("W", "W", "10.0.0.7".parse().unwrap(), 0).unwrap();
    w.on_reject(k, 10, false);
    w.on_reject(k, 10, true);
    w.on_reject(k, 10, true);
    let r = w.iter().next().unwrap();
    assert_eq!((r.rejected, r.invalid, r.sent, r.sent_diff), (1, 2, 3, 30));
}

#[test]
fn a_record_keeps_its_last_address_and_user() {
    let mut w = Workers::new(WorkersMode::RigId, false);
    let k = w.attach("rig1", "WALLET", "10.0.0.7".parse().unwrap(), 0).unwrap();
    w.attach("rig2", "WALLET", "10.0.0.8".parse().unwrap(), 0).unwrap();
    assert_eq!(w.shared.len(), 1, "one copy of a shared user");
    w.attach("rig1", "OTHER", "2001:db8::1".parse().unwrap(), 5).unwrap();
    let r = w.iter().next().unwrap();
    assert_eq!((r.last_ip(), w.user(r)), ("2001:db8::1".parse().unwrap(), "OTHER"));
    assert_eq!(w.shared.len(), 2);
    w.attach("rig1", "WALLET", "10.0.0.9".parse().unwrap(), 6).unwrap();
    let r = w.get_mut(k).unwrap();
    assert_eq!(r.last_ip(), "10.0.0.9".parse::<IpAddr>().unwrap());
    assert_eq!(w.shared.len(), 1, "OTHER went with its last holder");
    let long = "x".repeat(300);
    let k = w.attach("rig3", &long, "10.0.0.9".parse().unwrap(), 7).unwrap();
    assert_eq!(w.user(w.records.get(k).unwrap()).len(), MAX_USER_CHARS);
}

#[test]
fn pool_urls_are_kept_once_and_go_with_their_last_record() {
    let mut w = Workers::new(WorkersMode::RigId, false);
    let ip = "10.0.0.7".parse().unwrap();
    let (a, b) = (w.attach("rigA", "W", ip, 0).unwrap(), w.attach("rigB", "W", ip, 0).unwrap());
    assert_eq!(w.pool(w.records.get(a).unwrap()), "", "no pool before the first job");
    w.set_pool(a, "pool-a:3333");
    w.set_pool(b, "pool-a:3333");
    w.set_pool(b, "pool-a:3333");
    assert_eq!(w.shared.len(), 2, "the user and one copy of the URL");
    w.set_pool(b, "pool-b:3333");
    assert_eq!((w.pool(&w.records[a]), w.pool(&w.records[b])), ("pool-a:3333", "pool-b:3333"));
    assert_eq!(w.shared.len(), 3);
    w.set_pool(a, "pool-b:3333");
    assert_eq!(w.shared.len(), 2, "pool-a went with its last holder");
    // Departed records give their strings back when they are forgotten.
    w.detach(a, 0);
    w.detach(b, 0);
    w.tick(86_400);
    assert_eq!((w.len(), w.shared.len()), (0, 0));
}

#[test]
fn a_record_is_144_bytes_and_a_short_name_needs_no_more() {
    // 144 bytes on 64-bit targets and on armv7 too (no pointer is left in the record;
    // its u64 fields keep it 8-byte aligned on both).
    let expected = 144;
    assert_eq!(std::mem::size_of::<Worker>(), expected);
    let mut w = Workers::new(WorkersMode::RigId, false);
    let ip = "10.0.0.7".parse().unwrap();
    for i in 0..10_000 {
        w.attach(&format!("sim-{i}"), "WALLET", ip, 0).unwrap();
    }
    // In the slab a record takes no more than its size (the free-list link fits in it).
    let stride = |a: usize, b: usize| &w.records[b] as *const Worker as usize - &w.records[a] as *const Worker as usize;
    assert_eq!(stride(0, 1), expected);
    // The index: 4 bytes a slot, at most three quarters full.
    assert_eq!(w.by_name.capacity(), 16_384);
    assert_eq!(w.shared.len(), 1);
}

/// Resident bytes per record, allocator included: 100k rigs named like minersim's, each
/// with a pool URL and a share. Reads /proc, so it is run alone and by hand:
/// `cargo test --release --lib rss_per_record -- --ignored --nocapture --test-threads 1`.
#[test]
#[ignore]
fn rss_per_record() {
    let rss = || {
        let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let kb = s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok());
        kb.unwrap_or(0) * 1024
    };
    let ip = "10.0.0.7".parse().unwrap();
    let before = rss();
    let mut w = Workers::new(WorkersMode::RigId, false);
    for i in 0..100_000 {
        let k = w.attach(&format!("sim-{i}"), "minersim", ip, 0).unwrap();
        w.set_pool(k, "127.0.0.1:34567");
        w.on_accept(k, 1000, 5, 1);
    }
    let per = (rss() - before) / 100_000;
    eprintln!("{per} B per worker record");
    assert!(per < 300, "{per} B per worker record");
}

#[test]
fn a_week_of_departing_rigs_leaves_the_same_memory() {
    let mut w = Workers::new(WorkersMode::RigId, false);
    let ip = "10.0.0.7".parse().unwrap();
    let day = 86_400;
    let mut peak = None;
    for d in 0..7u32 {
        // Each day 3,000 rigs come, mine for an hour and leave; 100 stay all week.
        let keys: Vec<usize> = (0..3000).map(|i| w.attach(&format!("d{d}-{i}"), &format!("user{}", i % 7), ip, d * day).unwrap()).collect();
        for i in (0..100).filter(|_| d == 0) {
            w.attach(&format!("stay{i}"), "W", ip, 0).unwrap();
        }
        for t in (d * day..(d + 1) * day).step_by(1) {
            if t < d * day + 3600 && t % 30 == 0 {
                for &k in &keys {
                    w.on_accept(k, 1000, u64::from(t) * 1000, t);
                }
            }
            if t == d * day + 3600 {
                keys.iter().for_each(|&k| w.detach(k, t));
            }
            w.tick(t);
        }
        let size = (w.len(), w.records.capacity(), w.by_name.capacity(), w.shared.len());
        if d >= 1 {
            // From the second day on, yesterday's rigs are gone by the end of the day.
            assert_eq!(size.0, 3100, "day {d}");
            assert_eq!(*peak.get_or_insert(size), size, "day {d}");
        }
    }
}

#[test]
fn a_snapshot_carries_every_record_to_a_new_process_but_not_across_a_mode_change() {
    let mut old = Workers::new(WorkersMode::RigId, false);
    let ip = "10.0.0.7".parse().unwrap();
    let (a, b) = (old.attach("rigA", "W", ip, 0).unwrap(), old.attach("rigB", "OTHER", ip, 0).unwrap());
    old.set_pool(a, "pool:3333");
    for t in 0..900 {
        old.on_accept(a, 1000, 5, t);
    }
    old.on_reject(a, 1000, true);
    old.flag(b, FLAG_QUARANTINED);
    old.detach(b, 100);
    let snap = old.snapshot();
    // Through the handover's JSON, as the new process reads it.
    let snap: WorkersSnapshot = serde_json::from_str(&serde_json::to_string(&snap).unwrap()).unwrap();

    let mut new = Workers::new(WorkersMode::RigId, false);
    assert_eq!(new.restore(snap.clone()), 2);
    let (ka, kb) = (new.find("rigA").unwrap(), new.find("rigB").unwrap());
    let r = &new.records[ka];
    assert_eq!((r.sent, r.accepted, r.rejected, r.invalid, r.connections), (901, 900, 0, 1, 0));
    assert_eq!(new.records[ka].windows.rates(900), old.records[a].windows.rates(900));
    assert_eq!((new.pool(&new.records[ka]), new.user(&new.records[kb])), ("pool:3333", "OTHER"));
    assert_eq!(new.flags(kb), FLAG_QUARANTINED);
    // The miner comes back through the handover: the same record, connected again.
    assert_eq!(new.attach("rigA", "W", ip, 901), Some(ka));
    assert_eq!(new.records[ka].connections, 1);
    // Records named by another field are not taken over.
    assert_eq!(Workers::new(WorkersMode::User, false).restore(snap.clone()), 0);
    assert_eq!(Workers::new(WorkersMode::RigId, true).restore(snap), 0);
}
