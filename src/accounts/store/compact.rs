//! Compaction: the file rewritten with one put per live account, swapped in by rename.
//! The module doc of `store` explains why a crash at any step loses nothing.

use super::record::{self, FILE_HEADER, Rec};
use super::{COMPACT_SLACK, Store, StoreError, io_err, lock, tmp_path};
use crate::accounts::Account;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

impl Store {
    /// Compacts when the file holds more than twice the live data plus `COMPACT_SLACK`.
    pub fn compact_if_worthwhile(&mut self) -> Result<bool, StoreError> {
        if self.len <= 2 * (FILE_HEADER.len() as u64 + self.live_bytes) + COMPACT_SLACK {
            return Ok(false);
        }
        self.compact()?;
        Ok(true)
    }

    /// Rewrites the file with one put per live account (see the module doc).
    pub fn compact(&mut self) -> Result<(), StoreError> {
        self.repair().map_err(|e| io_err(&self.path, "recover from an earlier failed write", e))?;
        let before = self.len;
        let tmp = tmp_path(&self.path);
        let (file, len) = match self.write_compacted(&tmp) {
            Ok(done) => done,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        };
        // From here the new file is the store, even if the directory sync below fails:
        // the old descriptor points at a file that is no longer in the directory.
        self.file = file;
        self.len = len;
        self.tail_dirty = false;
        self.dir_dirty = true;
        self.repair().map_err(|e| io_err(&self.path, "sync the directory after compacting", e))?;
        log::info!("accounts file {}: compacted {before} -> {len} bytes ({} accounts)", self.path.display(), self.live.len());
        Ok(())
    }

    fn write_compacted(&self, tmp: &Path) -> Result<(File, u64), StoreError> {
        let mut live: Vec<&Account> = self.live.values().collect();
        live.sort_by(|a, b| a.name.cmp(&b.name));
        let mut buf = FILE_HEADER.to_vec();
        for account in live {
            record::encode(&[Rec::put(account)], &mut buf).map_err(|e| io_err(tmp, "encode a record", io::Error::other(e)))?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(tmp)
            .map_err(|e| io_err(tmp, "create the compacted file", e))?;
        // Locked before it takes the real name, so no other process can get in between.
        lock(&file).map_err(|e| io_err(tmp, "lock the compacted file", e))?;
        file.write_all(&buf).and_then(|()| file.sync_all()).map_err(|e| io_err(tmp, "write the compacted file", e))?;
        fs::rename(tmp, &self.path).map_err(|e| io_err(&self.path, "rename the compacted file into place", e))?;
        Ok((file, buf.len() as u64))
    }
}
