//! `stand-in-upstream --listen ADDR [--zone FILE]`: the internet's DNS for
//! the benchmarks (benches/*.sh) and the firmware image test
//! (image/boot-test.py). With a zone file: its names, NXDOMAIN for the
//! rest; without: every name gets the standard answer
//! (`testing::upstream::Behaviour::standard`).
//!
//! Not for: anything shipped. An example, so it is built with the
//! dev-dependencies (`testing` on) against the same library build as the
//! tests, benches and other examples: `cargo build [--release] --example
//! stand-in-upstream`, no library compiled for it alone.

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: stand-in-upstream --listen ADDR [--zone FILE]\n";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (addr, zone) = match args.as_slice() {
        ["--listen", addr] => (*addr, None),
        ["--listen", addr, "--zone", file] => (*addr, Some(PathBuf::from(file))),
        _ => {
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let Ok(addr) = addr.parse() else {
        eprintln!("stand-in-upstream: '{addr}' is not an address like 127.0.0.1:5300");
        return ExitCode::from(2);
    };
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    match rt.block_on(glory_hole::testing::zone::run_standalone(
        addr,
        zone.as_deref(),
    )) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stand-in-upstream: {e}");
            ExitCode::FAILURE
        }
    }
}
