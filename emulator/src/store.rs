//! The card's state directory: one JSON document, replaced atomically (write a temporary
//! file, fsync it, rename it over the old one, fsync the directory), so a process killed at
//! any moment leaves either the old state or the new one, never a torn file.
//!
//! This is the one place in the crate that touches the file system; the card logic itself
//! only calls [`StateStore::load`] and [`StateStore::save`].

use serde::{de::DeserializeOwned, Serialize};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use thiserror::Error;

const STATE_FILE: &str = "state.json";
const TEMP_FILE: &str = "state.json.tmp";

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("state directory {dir}: {source}")]
    Io {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("state file {file} is not a valid card state ({source}); move it away to start from the card definition again")]
    Corrupt {
        file: PathBuf,
        source: serde_json::Error,
    },
}

/// A directory holding one card's persistent state.
#[derive(Debug, Clone)]
pub struct StateStore {
    dir: PathBuf,
}

impl StateStore {
    /// Uses `dir`, creating it if needed.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(|source| StoreError::Io {
            dir: dir.clone(),
            source,
        })?;
        Ok(Self { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn io(&self, source: std::io::Error) -> StoreError {
        StoreError::Io {
            dir: self.dir.clone(),
            source,
        }
    }

    /// The saved state, or `None` when nothing was saved yet.
    pub fn load<T: DeserializeOwned>(&self) -> Result<Option<T>, StoreError> {
        let file = self.dir.join(STATE_FILE);
        let bytes = match fs::read(&file) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io(e)),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| StoreError::Corrupt { file, source })
    }

    /// Replaces the saved state with `state`, atomically.
    pub fn save<T: Serialize>(&self, state: &T) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(state).map_err(|e| self.io(std::io::Error::other(e)))?;
        let temp = self.dir.join(TEMP_FILE);
        let mut file = File::create(&temp).map_err(|e| self.io(e))?;
        file.write_all(&bytes).map_err(|e| self.io(e))?;
        file.sync_all().map_err(|e| self.io(e))?;
        drop(file);
        fs::rename(&temp, self.dir.join(STATE_FILE)).map_err(|e| self.io(e))?;
        // The rename is durable only once the directory entry is.
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| self.io(e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_and_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        assert_eq!(store.load::<Vec<u8>>().unwrap(), None);
        store.save(&vec![1u8, 2, 3]).unwrap();
        assert_eq!(store.load::<Vec<u8>>().unwrap(), Some(vec![1, 2, 3]));
    }

    #[test]
    fn a_leftover_temp_file_does_not_change_the_loaded_state() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        store.save(&vec![7u8]).unwrap();
        // A process killed between create and rename leaves a partial temp file behind.
        fs::write(dir.path().join(TEMP_FILE), b"{\"trunc").unwrap();
        assert_eq!(store.load::<Vec<u8>>().unwrap(), Some(vec![7]));
    }

    #[test]
    fn a_corrupt_state_file_is_reported_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(STATE_FILE), b"not json").unwrap();
        let err = StateStore::open(dir.path())
            .unwrap()
            .load::<Vec<u8>>()
            .unwrap_err();
        assert!(err.to_string().contains("state.json"), "{err}");
    }
}
