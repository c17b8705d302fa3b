//! Why the accounts file cannot be opened or written.

use super::record::FORMAT_VERSION;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Why the store cannot be opened or written.
#[derive(Debug)]
pub enum StoreError {
    Io {
        path: PathBuf,
        doing: &'static str,
        source: io::Error,
    },
    /// The file does not start with the accounts header.
    NotAccounts {
        path: PathBuf,
    },
    /// Written by a format this build does not read.
    Version {
        path: PathBuf,
        found: u8,
    },
    /// Damage that an interrupted append cannot explain. `record` counts from 1.
    Corrupt {
        path: PathBuf,
        record: u64,
        offset: u64,
        reason: String,
    },
    /// Another process has the file open.
    Locked {
        path: PathBuf,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { path, doing, source } => write!(f, "accounts file {}: cannot {doing}: {source}", path.display()),
            Self::NotAccounts { path } => write!(f, "{} is not an accounts file (it does not start with \"SPXACCT\")", path.display()),
            Self::Version { path, found } => {
                write!(f, "accounts file {} has format version {found}; this build reads version {FORMAT_VERSION}", path.display())
            }
            Self::Corrupt { path, record, offset, reason } => write!(
                f,
                "accounts file {}: record {record} at byte {offset} is damaged ({reason}); an interrupted write cannot \
                 leave that, so nothing was changed. Keep a copy of the file; truncating it to {offset} bytes drops this \
                 record and all later ones",
                path.display()
            ),
            Self::Locked { path } => write!(f, "accounts file {} is in use by another process", path.display()),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

pub(super) fn io_err(path: &Path, doing: &'static str, source: io::Error) -> StoreError {
    StoreError::Io { path: path.to_path_buf(), doing, source }
}
