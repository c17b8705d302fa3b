use super::*;
use std::os::unix::fs::PermissionsExt;

/// A file name under the temp dir, unique to this test and process; removed on drop.
pub(crate) struct TempPath(pub(crate) PathBuf);

impl TempPath {
    pub(crate) fn new(test: &str) -> TempPath {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        TempPath(std::env::temp_dir().join(format!("stratum-proxy-accounts-{test}-{}-{nanos}", std::process::id())))
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
        let _ = fs::remove_file(tmp_path(&self.0));
    }
}

pub(crate) fn account(i: u64) -> Account {
    Account {
        name: format!("{i:016x}"),
        pool: "pool.example.com:3333".into(),
        user: format!("wallet-{i}"),
        password: format!("pw\"{i}\\"),
        algo: if i.is_multiple_of(2) { Some("rx/0".into()) } else { None },
        created: 1_700_000_000 + i,
        last_active: 1_700_000_000 + i,
    }
}

fn put(i: u64) -> Op {
    Op::Register { account: account(i) }
}

fn del(i: u64) -> Op {
    Op::Delete { name: account(i).name }
}

fn open(p: &TempPath) -> (Store, LoadReport) {
    reopen(&p.0).unwrap()
}

/// `Store::open`, waiting out a lock held by the copy of a descriptor that a child
/// process forked by another test keeps until it execs (the crash test spawns some).
pub(crate) fn reopen(path: &Path) -> Result<(Store, LoadReport), StoreError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        match Store::open(path) {
            Err(StoreError::Locked { .. }) if std::time::Instant::now() < deadline => std::thread::yield_now(),
            other => return other,
        }
    }
}

/// The live accounts of a fresh load, sorted by name.
fn reload(p: &TempPath) -> Vec<Account> {
    let (store, _) = open(p);
    sorted(&store)
}

fn sorted(store: &Store) -> Vec<Account> {
    let mut v: Vec<Account> = store.live.values().cloned().collect();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    v
}

fn file_size(p: &TempPath) -> u64 {
    fs::metadata(&p.0).unwrap().len()
}

#[test]
fn a_new_file_is_private_and_holds_just_the_header() {
    let p = TempPath::new("new");
    let (store, report) = open(&p);
    assert_eq!(report, LoadReport { created: true, ..LoadReport::default() });
    assert_eq!((store.file_len(), file_size(&p)), (8, 8));
    assert_eq!(fs::read(&p.0).unwrap(), b"SPXACCT\x01");
    assert_eq!(fs::metadata(&p.0).unwrap().permissions().mode() & 0o777, 0o600);
    drop(store);
    let (_, report) = open(&p);
    assert!(!report.created && report.records == 0);
}

#[test]
fn registrations_deletes_and_touches_survive_a_restart() {
    let p = TempPath::new("restart");
    let (mut store, _) = open(&p);
    store.append(&[put(1)]).unwrap();
    store.append(&[put(2), put(3), del(1)]).unwrap();
    store.append(&[Op::Touch { name: account(2).name, t: 1_800_000_000 }]).unwrap();
    let expected = vec![Account { last_active: 1_800_000_000, ..account(2) }, account(3)];
    assert_eq!(sorted(&store), expected);
    drop(store);

    let (store, report) = open(&p);
    assert_eq!((report.records, report.accounts, report.dropped_bytes), (3, 2, 0));
    assert_eq!(sorted(&store), expected);
    let table = store.accounts();
    assert_eq!(table.len(), 2);
    assert!(table.is_durable(&account(3).name) && table.get(&account(1).name).is_none());
    assert_eq!(table.find("pool.example.com:3333", "wallet-2", "pw\"2\\").map(|a| a.name.as_str()), Some(account(2).name.as_str()));
}

#[test]
fn touches_that_change_nothing_are_not_written() {
    let p = TempPath::new("touch");
    let (mut store, _) = open(&p);
    store.append(&[put(1)]).unwrap();
    let len = store.file_len();
    let a = account(1);
    store.append(&[Op::Touch { name: a.name.clone(), t: a.last_active }, Op::Touch { name: "nobody".into(), t: u64::MAX }]).unwrap();
    assert_eq!(store.file_len(), len);
    // A touch in the same batch as the registration is kept.
    store.append(&[put(2), Op::Touch { name: account(2).name, t: 1_900_000_000 }]).unwrap();
    drop(store);
    assert_eq!(reload(&p)[1].last_active, 1_900_000_000);
}

/// Three records; returns the file's bytes and where the last record starts.
fn three_records(p: &TempPath) -> (Vec<u8>, usize) {
    let (mut store, _) = open(p);
    store.append(&[put(1)]).unwrap();
    store.append(&[put(2)]).unwrap();
    let last = store.file_len() as usize;
    store.append(&[put(3), put(4)]).unwrap();
    drop(store);
    (fs::read(&p.0).unwrap(), last)
}

#[test]
fn a_torn_last_record_is_cut_off_at_any_byte() {
    let p = TempPath::new("torn");
    let (bytes, last) = three_records(&p);
    for cut in last + 1..bytes.len() {
        fs::write(&p.0, &bytes[..cut]).unwrap();
        let (store, report) = open(&p);
        assert_eq!(sorted(&store), vec![account(1), account(2)], "cut at {cut}");
        assert_eq!((report.records, report.dropped_bytes), (2, (cut - last) as u64), "cut at {cut}");
        assert_eq!(file_size(&p), last as u64, "truncated before any append (cut at {cut})");
    }
    // And the store goes on from there.
    fs::write(&p.0, &bytes[..last + 5]).unwrap();
    let (mut store, _) = open(&p);
    store.append(&[put(5)]).unwrap();
    drop(store);
    assert_eq!(reload(&p), vec![account(1), account(2), account(5)]);
}

#[test]
fn a_last_record_with_a_bad_checksum_or_a_zero_tail_is_torn() {
    let p = TempPath::new("badsum");
    let (mut bytes, last) = three_records(&p);
    let n = bytes.len();
    bytes[n - 2] ^= 0x20;
    fs::write(&p.0, &bytes).unwrap();
    let (store, report) = open(&p);
    assert_eq!((report.records, report.dropped_bytes), (2, (n - last) as u64));
    assert_eq!(store.live.len(), 2);
    drop(store);

    let (mut bytes, _) = three_records(&TempPath::new("zeros-src"));
    bytes.extend([0u8; 300]);
    fs::write(&p.0, &bytes).unwrap();
    let (store, report) = open(&p);
    assert_eq!((report.records, report.dropped_bytes, store.live.len()), (3, 300, 4));
}

#[test]
fn damage_before_the_last_record_is_an_error_naming_record_and_offset() {
    let p = TempPath::new("corrupt");
    let (bytes, last) = three_records(&p);
    let second = {
        let Next::Record { end, .. } = record::next(&bytes, 8) else { panic!() };
        end
    };
    for (what, at, reason) in [("payload", last - 3, "a checksum mismatch"), ("mark", second, "where a record mark should be")] {
        let mut bad = bytes.clone();
        bad[at] ^= 0x40;
        fs::write(&p.0, &bad).unwrap();
        let err = reopen(&p.0).unwrap_err();
        match &err {
            StoreError::Corrupt { record, offset, reason: r, .. } => {
                assert_eq!((*record, *offset as usize), (2, second), "{what}");
                assert!(r.contains(reason), "{what}: {r}");
            }
            other => panic!("{what}: {other:?}"),
        }
        let msg = err.to_string();
        assert!(msg.contains(&format!("record 2 at byte {second} is damaged")) && msg.contains(&p.0.display().to_string()), "{msg}");
        assert!(msg.contains(&format!("truncating it to {second} bytes")), "{msg}");
        assert_eq!(fs::read(&p.0).unwrap(), bad, "{what}: the file is left alone");
    }
}

#[test]
fn a_record_that_checks_out_but_does_not_parse_is_an_error() {
    let p = TempPath::new("unparsable");
    let mut bytes = FILE_HEADER.to_vec();
    record::encode(&[Rec::put(&account(1))], &mut bytes).unwrap();
    let at = bytes.len();
    let payload = br#"[{"op":"rename","name":"x"}]"#;
    bytes.push(0xa5);
    bytes.extend((payload.len() as u32).to_le_bytes());
    bytes.extend(record::crc32(payload).to_le_bytes());
    bytes.extend(payload);
    fs::write(&p.0, &bytes).unwrap();
    let err = reopen(&p.0).unwrap_err();
    assert!(matches!(&err, StoreError::Corrupt { record: 2, offset, .. } if *offset as usize == at), "{err:?}");
}

#[test]
fn foreign_files_and_other_versions_are_refused() {
    let p = TempPath::new("foreign");
    fs::write(&p.0, b"{\"accounts\": []}\n").unwrap();
    assert!(matches!(reopen(&p.0), Err(StoreError::NotAccounts { .. })));
    fs::write(&p.0, b"{}").unwrap();
    assert!(matches!(reopen(&p.0), Err(StoreError::NotAccounts { .. })), "short and not a header prefix");
    fs::write(&p.0, b"SPXACCT\x02").unwrap();
    let err = reopen(&p.0).unwrap_err();
    assert!(matches!(err, StoreError::Version { found: 2, .. }));
    assert!(err.to_string().contains("format version 2; this build reads version 1"), "{err}");
    // Cut while being created: starts over.
    fs::write(&p.0, b"SPXA").unwrap();
    let (_, report) = open(&p);
    assert!(report.created);
    assert_eq!(fs::read(&p.0).unwrap(), FILE_HEADER);
}

#[test]
fn a_second_process_cannot_open_the_same_file() {
    let p = TempPath::new("lock");
    let (_store, _) = open(&p);
    let err = Store::open(&p.0).unwrap_err();
    assert!(matches!(err, StoreError::Locked { .. }), "{err:?}");
}

#[test]
fn a_failed_fsync_is_an_error_and_leaves_no_trace() {
    let p = TempPath::new("failsync");
    let (mut store, _) = open(&p);
    store.append(&[put(1)]).unwrap();
    let len = store.file_len();
    store.fail_next_sync();
    let err = store.append(&[put(2)]).unwrap_err();
    assert!(err.to_string().contains("injected fsync failure"), "{err}");
    assert_eq!((store.file_len(), file_size(&p)), (len, len), "the record is cut off again");
    assert_eq!(sorted(&store), vec![account(1)], "and not applied");
    store.append(&[put(3)]).unwrap();
    drop(store);
    assert_eq!(reload(&p), vec![account(1), account(3)]);
}

/// Many registrations and deletions: a big file with few live accounts.
fn churn(store: &mut Store, keep: &[u64]) {
    let mut ops: Vec<Op> = keep.iter().map(|&i| put(i)).collect();
    for i in 1000..1600 {
        ops.extend([put(i), del(i)]);
    }
    store.append(&ops).unwrap();
    for &i in keep {
        store.append(&[Op::Touch { name: account(i).name, t: 2_000_000_000 + i }]).unwrap();
    }
}

#[test]
fn compaction_keeps_the_live_data_and_shrinks_the_file() {
    let p = TempPath::new("compact");
    let (mut store, _) = open(&p);
    churn(&mut store, &[1, 2, 3]);
    let big = store.file_len();
    assert!(big > COMPACT_SLACK, "{big}");
    let live = sorted(&store);
    assert_eq!(live.iter().map(|a| a.last_active).collect::<Vec<_>>(), vec![2_000_000_001, 2_000_000_002, 2_000_000_003]);

    assert!(store.compact_if_worthwhile().unwrap());
    let small = store.file_len();
    assert!(small < 1000, "{big} -> {small}");
    assert_eq!(file_size(&p), small);
    assert!(!tmp_path(&p.0).exists());
    assert_eq!(fs::metadata(&p.0).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(!store.compact_if_worthwhile().unwrap(), "nothing more to gain");
    // Appends go to the new file.
    store.append(&[put(4)]).unwrap();
    drop(store);
    let (store, report) = open(&p);
    assert_eq!(report.records, 4, "one put per live account, then the append");
    let mut expected = live;
    expected.push(account(4));
    assert_eq!(sorted(&store), expected, "current last_active values kept");
}

#[test]
fn a_bloated_file_is_compacted_at_load() {
    let p = TempPath::new("compact-load");
    let (mut store, _) = open(&p);
    churn(&mut store, &[7]);
    let big = store.file_len();
    drop(store);
    // A leftover from a compaction that was interrupted is removed.
    fs::write(tmp_path(&p.0), b"half a compaction").unwrap();
    let (store, report) = open(&p);
    assert!(report.compacted && store.file_len() < big);
    assert!(!tmp_path(&p.0).exists());
    assert_eq!(sorted(&store), vec![Account { last_active: 2_000_000_007, ..account(7) }]);
}

/// 1,000 registrations as the loop makes them: one record each.
fn thousand_registrations(p: &TempPath) {
    let mut bytes = FILE_HEADER.to_vec();
    for i in 0..1000 {
        record::encode(&[Rec::put(&account(i))], &mut bytes).unwrap();
    }
    fs::write(&p.0, bytes).unwrap();
}

#[test]
fn a_thousand_registrations_load() {
    let p = TempPath::new("thousand");
    thousand_registrations(&p);
    let (store, report) = open(&p);
    assert_eq!((report.records, report.accounts, report.compacted), (1000, 1000, false));
    let table = store.accounts();
    assert!((0..1000).all(|i| table.get(&account(i).name) == Some(&account(i))));
}

/// The load time for the report: `cargo test --release --lib load_time -- --ignored --nocapture`.
#[test]
#[ignore]
fn load_time_of_a_thousand_registrations() {
    let p = TempPath::new("load-time");
    thousand_registrations(&p);
    let mut best = std::time::Duration::MAX;
    for _ in 0..20 {
        let started = std::time::Instant::now();
        let (store, _) = open(&p);
        let table = store.accounts();
        best = best.min(started.elapsed());
        assert_eq!(table.len(), 1000);
    }
    println!("1,000 registrations ({} bytes): open + replay + table in {best:?} (best of 20)", file_size(&p));
}
