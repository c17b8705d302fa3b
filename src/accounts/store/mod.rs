//! The accounts file: an append-only log of operations, replayed at startup.
//!
//! # Layout
//!
//! ```text
//! offset 0   "SPXACCT" + format version byte (1)                     8 bytes
//! then       records, back to back:
//!              0xA5                  record mark                      1 byte
//!              payload length        u32 little-endian                4 bytes
//!              CRC-32 of payload     u32 little-endian (IEEE, zlib)   4 bytes
//!              payload               JSON array of operations         length bytes
//! ```
//!
//! An operation is `{"op":"put", "name", "pool", "user", "password", "algo", "created",
//! "last_active"}` (the whole account), `{"op":"del","name":..}` or
//! `{"op":"touch","name":..,"t":..}`. Replaying them in order gives the live accounts.
//! One record holds one batch of operations (the writer thread groups what is queued),
//! so a batch shares one checksum and one fsync and lands all or nothing.
//!
//! # Why an acknowledged operation survives a crash
//!
//! - An append writes its record at the end of the good data and returns only after
//!   `fdatasync` succeeded, which makes the bytes and the new file size durable. The
//!   caller acknowledges only after that, so every acknowledged record is on disk.
//! - Appends run one at a time and nothing is ever written before the end of the good
//!   data, so at any moment at most one record is unfinished, and it is the last one. A
//!   crash can leave any part of it (or zeros, where a file system grew the file before
//!   the data arrived), but only after every complete record.
//! - Loading stops at the first record that is cut short or fails its checksum and runs
//!   to the end of the file: that is the unacknowledged append. It is dropped with a
//!   warning and the file is truncated there before anything else is appended, so a half
//!   record never ends up in the middle. Damage *followed by more data* cannot come from
//!   an interrupted append; it is reported as an error naming the record and offset, and
//!   the file is left alone rather than silently losing what follows.
//! - A failed write or fsync truncates the file back to the end of the good data. If even
//!   that fails, appends are refused until it succeeds: a later, shorter record written
//!   over the remains would otherwise leave garbage in the middle.
//! - Compaction writes every live account to `NAME.tmp`, fsyncs it, renames it over the
//!   file (atomic) and fsyncs the directory. A crash before the rename leaves the old file
//!   and a stale `NAME.tmp` (deleted at the next load); after it, the new file. Both hold
//!   every acknowledged account. Appends go to the new file only once the directory fsync
//!   has succeeded, so the rename cannot be lost under acknowledged data.
//! - A new file gets its header, an fsync and a directory fsync before any record. A file
//!   cut inside the header (a crash while creating it) holds no records and starts over.
//! - One process at a time: the file is locked (`flock`); a second proxy on the same file
//!   gets an error instead of interleaving appends.
//!
//! Secrets: the file holds pool passwords, so it is created with mode 0600 and a warning
//! is logged when it is readable by others.

mod compact;
mod error;
mod record;

pub use error::StoreError;

use super::{Account, Accounts};
use error::io_err;
use record::{FILE_HEADER, FILE_MAGIC_LEN, FORMAT_VERSION, Next, Rec};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// Compaction runs when the file is larger than twice the live data plus this.
pub(crate) const COMPACT_SLACK: u64 = 64 * 1024;
/// Operations per record; the writer batches no more than this.
pub(crate) const MAX_OPS_PER_RECORD: usize = 64;

/// A change to the accounts, as submitted for writing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// A new account (or the same name with new values).
    Register {
        account: Account,
    },
    Delete {
        name: String,
    },
    /// Miner activity at unix second `t`; ignored for unknown names or older times.
    Touch {
        name: String,
        t: u64,
    },
}

/// What loading found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Complete records replayed.
    pub records: u64,
    /// Live accounts after replay.
    pub accounts: usize,
    /// Bytes of an interrupted last append that were cut off (0: the file ended cleanly).
    pub dropped_bytes: u64,
    /// The file was rewritten because it was mostly dead records.
    pub compacted: bool,
    /// There was no file (or only part of a header): a new one was made.
    pub created: bool,
}

/// The open accounts file and the live accounts it holds. Blocking: use it from the
/// writer thread (or before the loop starts).
pub struct Store {
    path: PathBuf,
    file: File,
    /// End of the last complete record: where the next append goes.
    len: u64,
    live: HashMap<String, Account>,
    /// What the live accounts would take after compaction (records only).
    live_bytes: u64,
    /// A failed append may have left bytes after `len`.
    tail_dirty: bool,
    /// A rename into place is not yet known to be durable.
    dir_dirty: bool,
    fail_next_sync: bool,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("path", &self.path).field("len", &self.len).field("accounts", &self.live.len()).finish()
    }
}

impl Store {
    /// Opens (or creates) the file at `path` and replays it. A torn last record is cut off
    /// with a warning; other damage, a foreign file or an unknown version is an error.
    pub fn open(path: impl AsRef<Path>) -> Result<(Store, LoadReport), StoreError> {
        let path = path.as_ref().to_path_buf();
        let mut report = LoadReport::default();
        let mut file = match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                report.created = true;
                let f = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .map_err(|e| io_err(&path, "create the file", e))?;
                sync_dir(&path).map_err(|e| io_err(&path, "sync its directory", e))?;
                f
            }
            Err(e) => return Err(io_err(&path, "open the file", e)),
        };
        lock(&file).map_err(|e| match e.kind() {
            io::ErrorKind::WouldBlock => StoreError::Locked { path: path.clone() },
            _ => io_err(&path, "lock the file", e),
        })?;
        // Only now: before the lock, the tmp file could be another process's compaction.
        let tmp = tmp_path(&path);
        match fs::remove_file(&tmp) {
            Ok(()) => log::info!("accounts file {}: removed {} left by an interrupted compaction", path.display(), tmp.display()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => log::warn!("accounts file {}: cannot remove {}: {e}", path.display(), tmp.display()),
        }
        if let Ok(meta) = file.metadata()
            && meta.mode() & 0o077 != 0
        {
            log::warn!(
                "accounts file {} holds pool passwords and is readable by others (mode {:o}); chmod 600 it",
                path.display(),
                meta.mode() & 0o777
            );
        }
        let mut buf = Vec::new();
        file.read_to_end(&mut buf).map_err(|e| io_err(&path, "read the file", e))?;

        let mut store =
            Store { path, file, len: 0, live: HashMap::new(), live_bytes: 0, tail_dirty: false, dir_dirty: false, fail_next_sync: false };
        if buf.len() < FILE_HEADER.len() {
            if !FILE_HEADER.starts_with(&buf) {
                return Err(StoreError::NotAccounts { path: store.path });
            }
            // Empty, or cut while being created: no record can have been acknowledged.
            report.created = true;
            store.write_header()?;
            return Ok((store, report));
        }
        if buf[..FILE_MAGIC_LEN] != FILE_HEADER[..FILE_MAGIC_LEN] {
            return Err(StoreError::NotAccounts { path: store.path });
        }
        if buf[FILE_MAGIC_LEN] != FORMAT_VERSION {
            return Err(StoreError::Version { path: store.path, found: buf[FILE_MAGIC_LEN] });
        }

        let mut at = FILE_HEADER.len();
        loop {
            let number = report.records + 1;
            match record::next(&buf, at) {
                Next::Record { payload, end } => {
                    let recs = record::decode(payload).map_err(|reason| store.corrupt(number, at, reason))?;
                    for rec in recs {
                        store.apply(rec);
                    }
                    report.records = number;
                    at = end;
                }
                Next::End => break,
                Next::Torn(what) => {
                    let dropped = buf.len() - at;
                    log::warn!(
                        "accounts file {}: dropping an interrupted append at the end (record {number} at byte {at}: {what}; \
                         {dropped} bytes); it was never acknowledged",
                        store.path.display()
                    );
                    store.len = at as u64;
                    store.tail_dirty = true;
                    store.repair().map_err(|e| io_err(&store.path, "cut off the interrupted append", e))?;
                    report.dropped_bytes = dropped as u64;
                    break;
                }
                Next::Corrupt(reason) => return Err(store.corrupt(number, at, reason)),
            }
        }
        store.len = at as u64;
        report.accounts = store.live.len();
        match store.compact_if_worthwhile() {
            Ok(done) => report.compacted = done,
            Err(e) => log::warn!("{e}; carrying on with the uncompacted file"),
        }
        Ok((store, report))
    }

    /// A table of the live accounts for the loop.
    pub fn accounts(&self) -> Accounts {
        let mut t = Accounts::new();
        for a in self.live.values() {
            t.insert_loaded(a.clone());
        }
        t
    }

    /// Writes `ops` and waits for the disk. Returns only once they are durable; on error
    /// none of them counts (the file is cut back, best effort) and none may be acknowledged.
    /// Touches of unknown accounts or of older times are left out; nothing to write is Ok.
    pub fn append(&mut self, ops: &[Op]) -> Result<(), StoreError> {
        let mut registered = HashSet::new();
        let mut recs = Vec::with_capacity(ops.len());
        for op in ops {
            match op {
                Op::Register { account } => {
                    registered.insert(account.name.as_str());
                    recs.push(Rec::put(account));
                }
                Op::Delete { name } => recs.push(Rec::Del { name: name.clone() }),
                Op::Touch { name, t } => {
                    let newer = self.live.get(name).is_some_and(|a| *t > a.last_active);
                    if newer || registered.contains(name.as_str()) {
                        recs.push(Rec::Touch { name: name.clone(), t: *t });
                    }
                }
            }
        }
        for chunk in recs.chunks(MAX_OPS_PER_RECORD) {
            self.append_record(chunk)?;
        }
        Ok(())
    }

    fn append_record(&mut self, recs: &[Rec]) -> Result<(), StoreError> {
        self.repair().map_err(|e| io_err(&self.path, "recover from an earlier failed write", e))?;
        let mut buf = Vec::new();
        record::encode(recs, &mut buf).map_err(|e| io_err(&self.path, "encode a record", io::Error::other(e)))?;
        let written = self.file.write_all_at(&buf, self.len).and_then(|()| {
            if std::mem::take(&mut self.fail_next_sync) {
                return Err(io::Error::other("injected fsync failure (test hook)"));
            }
            self.file.sync_data()
        });
        if let Err(e) = written {
            self.tail_dirty = true;
            if let Err(cut) = self.repair() {
                log::error!("accounts file {}: cannot cut back a failed append: {cut}; appends wait until it can", self.path.display());
            }
            return Err(io_err(&self.path, "write a record", e));
        }
        self.len += buf.len() as u64;
        for rec in recs {
            self.apply(rec.clone());
        }
        Ok(())
    }

    /// Size of the file's good data in bytes.
    pub fn file_len(&self) -> u64 {
        self.len
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Test hook: the next append writes its record, then fails as if `fsync` had reported
    /// an I/O error, and cuts the record off again.
    pub fn fail_next_sync(&mut self) {
        self.fail_next_sync = true;
    }

    /// Finishes what a failure left undone: cuts the file back to `len`, syncs the
    /// directory after a rename. Appends wait for this.
    fn repair(&mut self) -> io::Result<()> {
        if self.tail_dirty {
            self.file.set_len(self.len)?;
            self.file.sync_data()?;
            self.tail_dirty = false;
        }
        if self.dir_dirty {
            sync_dir(&self.path)?;
            self.dir_dirty = false;
        }
        Ok(())
    }

    fn write_header(&mut self) -> Result<(), StoreError> {
        self.file
            .set_len(0)
            .and_then(|()| self.file.write_all_at(&FILE_HEADER, 0))
            .and_then(|()| self.file.sync_data())
            .map_err(|e| io_err(&self.path, "write the file header", e))?;
        self.len = FILE_HEADER.len() as u64;
        Ok(())
    }

    fn apply(&mut self, rec: Rec) {
        match rec {
            Rec::Put { name, pool, user, password, algo, created, last_active } => {
                let account = Account { name: name.clone(), pool, user, password, algo, created, last_active };
                self.live_bytes += record::put_len(&account);
                if let Some(old) = self.live.insert(name, account) {
                    self.live_bytes = self.live_bytes.saturating_sub(record::put_len(&old));
                }
            }
            Rec::Del { name } => {
                if let Some(old) = self.live.remove(&name) {
                    self.live_bytes = self.live_bytes.saturating_sub(record::put_len(&old));
                }
            }
            Rec::Touch { name, t } => {
                if let Some(a) = self.live.get_mut(&name)
                    && t > a.last_active
                {
                    let old = record::put_len(a);
                    a.last_active = t;
                    self.live_bytes = (self.live_bytes + record::put_len(a)).saturating_sub(old);
                }
            }
        }
    }

    fn corrupt(&self, record: u64, offset: usize, reason: String) -> StoreError {
        StoreError::Corrupt { path: self.path.clone(), record, offset: offset as u64, reason }
    }
}

/// `NAME.tmp` next to the file.
fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

/// Makes a create or rename in the file's directory durable.
fn sync_dir(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

/// An exclusive advisory lock, released when the descriptor closes (also on `kill -9`).
fn lock(file: &File) -> io::Result<()> {
    // SAFETY: flock only reads the descriptor number, which `file` keeps open.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests;
