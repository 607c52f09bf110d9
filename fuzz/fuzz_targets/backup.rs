//! The backup reader (the System page's restore) on arbitrary text. A
//! backup it accepts must come back the same through the writer.
#![no_main]

use glory_hole::web::backup;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok((cfg, creds)) = backup::read(text) else {
        return;
    };
    let Some(creds) = creds else { return };
    let again = backup::write(&cfg, &creds, 1);
    match backup::read(&again) {
        Ok((c, k)) => assert!(c == cfg && k == Some(creds), "backup round trip changed it"),
        Err(e) => panic!("a backup we wrote does not read: {e}\n{again}"),
    }
});
