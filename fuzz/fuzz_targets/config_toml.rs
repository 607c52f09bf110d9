//! The config loader on arbitrary text: TOML, the schema, every value's
//! checks and the cross-field validation. A config it accepts must build
//! the data path's runtime and come back whole through the writer, as the
//! web UI saves it (nothing the user saved is lost).
#![no_main]

use glory_hole::config::Config;
use glory_hole::dns::pipeline::Runtime;
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(cfg) = Config::from_toml(text, "fuzz.toml") else {
        return;
    };
    let saved = cfg.to_toml();
    match Config::from_toml(&saved, "saved.toml") {
        Ok(back) => assert_eq!(back, cfg, "the saved config reads back different:\n{saved}"),
        Err(e) => panic!("the saved config does not load again: {e}\n{saved}"),
    }
    if let Err(e) = Runtime::new(Arc::new(cfg)) {
        panic!("a valid config does not build the runtime: {e}");
    }
});
