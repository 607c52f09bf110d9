//! Wiring: builds the engine, listeners, query log and web UI from a config,
//! and applies config changes as atomic swaps.

use crate::config::Config;
use anyhow::Context;
use std::path::PathBuf;

/// Where the running config came from and where changes are saved: the
/// `--config` file, or `<data_dir>/config.toml` when running on the
/// embedded default (loaded from there on the next start).
pub fn resolve_config(config_path: Option<PathBuf>) -> anyhow::Result<(Config, PathBuf)> {
    match config_path {
        Some(p) => Ok((Config::load(&p)?, p)),
        None => {
            let default = Config::default();
            let saved = default.data_dir.join("config.toml");
            if saved.exists() {
                Ok((Config::load(&saved)?, saved))
            } else {
                Ok((default, saved))
            }
        }
    }
}

pub fn run(config_path: Option<PathBuf>) -> anyhow::Result<()> {
    let (config, _save_to) = resolve_config(config_path)?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data_dir {}", config.data_dir.display()))?;
    Ok(())
}
