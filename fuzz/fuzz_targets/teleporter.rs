//! The Pi-hole Teleporter reader (zip with gravity.db, or tar.gz) on
//! arbitrary bytes, then the merge into a config, which must still be
//! valid: an import never turns a good config into one that will not save.
#![no_main]

use glory_hole::config::Config;
use glory_hole::web::teleporter;
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

/// Where gravity.db is unpacked for SQLite to read (removed after each).
fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("gh-fuzz-teleporter-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("scratch directory");
        d
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(imported) = teleporter::read(data, scratch()) else {
        return;
    };
    let mut cfg = Config::default();
    teleporter::merge(&mut cfg, &imported);
    if let Err(e) = cfg.validate() {
        panic!("an imported archive made the config invalid: {e}");
    }
});
