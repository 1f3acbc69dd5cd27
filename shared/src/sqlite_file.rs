//! The SQLite database file a server opened, watched while it serves. Deleting or replacing the
//! file under a running server does not stop its open connections: they go on writing into the
//! unlinked file, so acknowledged writes vanish at the next start, and a connection opened
//! afterwards meets a new file beside the old shared-memory index and may crash the process
//! (SIGBUS). So every database operation on SQLite is checked before and after it runs, and
//! answers 503 once the file is gone; a write is acknowledged only if its file was still there
//! after it committed. Connections the pool opens later never create the file (see the stores).

use std::fs::File;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{ApiError, ErrorKind};

/// A handle on the database file as opened at start-up. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SqliteFile(Arc<Watched>);

#[derive(Debug)]
struct Watched {
    path: PathBuf,
    /// Held open: its link count says whether it was unlinked.
    file: File,
    dev: u64,
    ino: u64,
}

impl SqliteFile {
    /// Watches the file at `path`, which must exist (open it after the migrations).
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = File::open(path)?;
        let meta = file.metadata()?;
        Ok(Self(Arc::new(Watched {
            path: path.to_owned(),
            file,
            dev: meta.dev(),
            ino: meta.ino(),
        })))
    }

    /// Why the file is no longer the one the server opened, if it is not.
    fn problem(&self) -> Option<&'static str> {
        let w = &self.0;
        match w.file.metadata() {
            Ok(meta) if meta.nlink() == 0 => return Some("was deleted"),
            Ok(_) => {}
            Err(_) => return Some("cannot be read"),
        }
        match std::fs::metadata(&w.path) {
            Ok(meta) if (meta.dev(), meta.ino()) == (w.dev, w.ino) => None,
            Ok(_) => Some("was replaced by another file"),
            Err(_) => Some("is missing"),
        }
    }

    /// `Ok` while the file is the one opened at start-up; otherwise the 503 every database
    /// route answers from then on (the cause is logged).
    pub fn check(&self) -> Result<(), ApiError> {
        match self.problem() {
            None => Ok(()),
            Some(why) => {
                tracing::error!(
                    "the SQLite database file {} {why} while the server runs; restart the server",
                    self.0.path.display()
                );
                Err(ApiError::of(ErrorKind::Unavailable))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_deletion_and_replacement() {
        let dir = tempfile::tempdir().expect("a folder");
        let path = dir.path().join("todo.db");
        std::fs::write(&path, b"x").unwrap();
        let watched = SqliteFile::open(&path).unwrap();
        assert!(watched.check().is_ok());
        std::fs::remove_file(&path).unwrap();
        assert_eq!(watched.problem(), Some("was deleted"));
        assert_eq!(watched.check().unwrap_err().status(), 503);

        std::fs::write(&path, b"x").unwrap();
        let watched = SqliteFile::open(&path).unwrap();
        let other = dir.path().join("other.db");
        std::fs::write(&other, b"y").unwrap();
        std::fs::rename(&other, &path).unwrap();
        assert_eq!(watched.problem(), Some("was deleted"));
        assert!(SqliteFile::open(&dir.path().join("none.db")).is_err());
    }
}
