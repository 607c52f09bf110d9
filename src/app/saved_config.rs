//! The running config and the file it is saved to, behind the one lock every
//! config edit takes.
//!
//! An edit is: take the lock ([`SavedConfig::begin`]), clone the running
//! config, change it, check it, save it (temp file, fsync, rename), swap it
//! in. `App::edit` runs those steps with the engine, filter and query log
//! swapped in between; [`SavedConfig`] on its own is also a web
//! [`Backend`]: the configuration part alone, for a server without the other
//! parts (and for the web tests).
//! Not for: the config's schema or validation (see `config`).

use crate::atomic_file::save_atomic;
use crate::config::Config;
use crate::web::Backend;
use arc_swap::ArcSwap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

pub struct SavedConfig {
    current: ArcSwap<Config>,
    save_to: PathBuf,
    /// Held for a whole edit (read, change, save, swap), so two edits at
    /// once cannot lose each other's change. Never taken by DNS workers.
    edits: Mutex<()>,
}

/// One config edit in progress: holds the edit lock until dropped.
pub struct Edit<'a> {
    saved: &'a SavedConfig,
    _one: MutexGuard<'a, ()>,
}

impl SavedConfig {
    pub fn new(config: impl Into<Arc<Config>>, save_to: PathBuf) -> SavedConfig {
        SavedConfig {
            current: ArcSwap::new(config.into()),
            save_to,
            edits: Mutex::new(()),
        }
    }

    pub fn current(&self) -> Arc<Config> {
        self.current.load_full()
    }

    pub fn save_path(&self) -> &Path {
        &self.save_to
    }

    /// Waits for the edit before this one to finish.
    pub fn begin(&self) -> Edit<'_> {
        Edit {
            saved: self,
            _one: self.edits.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }
}

impl Edit<'_> {
    /// The running config, with `change` applied and validated.
    pub fn changed(
        &self,
        change: impl FnOnce(&mut Config) -> Result<(), String>,
    ) -> Result<Arc<Config>, String> {
        let mut new = (*self.saved.current()).clone();
        change(&mut new)?;
        new.validate()?;
        Ok(Arc::new(new))
    }

    /// Writes `new` to the config file atomically, keeping the keys of
    /// the file this build does not know (a newer build's settings).
    pub fn save(&self, new: &Config) -> Result<(), String> {
        let path = &self.saved.save_to;
        let old = std::fs::read_to_string(path).ok();
        let (text, dropped) = new.to_toml_over(old.as_deref());
        for key in dropped {
            tracing::warn!("{}: unknown key '{key}' not kept", path.display());
        }
        save_atomic(path, text.as_bytes()).map_err(|e| format!("saving {}: {e}", path.display()))
    }

    /// Makes `new` the running config.
    pub fn swap_in(self, new: Arc<Config>) {
        self.saved.current.store(new);
    }
}

impl Backend for SavedConfig {
    fn config(&self) -> Arc<Config> {
        self.current()
    }

    fn edit(
        &self,
        change: &mut dyn FnMut(&mut Config) -> Result<(), String>,
    ) -> Result<(), String> {
        let edit = self.begin();
        let new = edit.changed(change)?;
        edit.save(&new)?;
        edit.swap_in(new);
        Ok(())
    }

    fn data_dir(&self) -> PathBuf {
        self.current().data_dir.clone()
    }
}
