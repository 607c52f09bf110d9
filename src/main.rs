//! The `glory-hole` command: parse arguments, load the config, start things.

use glory_hole::config::Config;
use std::path::PathBuf;
use std::process::ExitCode;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "\
usage: glory-hole [--config FILE]      run the server (embedded default without --config)
       glory-hole check-config FILE    validate FILE, report the bad key and line
                                       (and each unknown key, which is ignored)
       glory-hole print-default-config  print the embedded default as TOML
       glory-hole bundle keygen|create|verify|info ...   firmware update bundles
       glory-hole --version
";

fn main() -> ExitCode {
    glory_hole::allocator::tune();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["--version" | "-V"] => {
            println!("glory-hole {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        ["--help" | "-h"] => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        ["print-default-config"] => {
            print!("{}", Config::default().to_toml());
            ExitCode::SUCCESS
        }
        ["check-config", file] => match Config::read_file(&PathBuf::from(file)) {
            Ok((_, unknown)) => {
                for key in unknown {
                    eprintln!("{}", glory_hole::config::unknown_key(file, &key));
                }
                println!("{file}: ok");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        ["bundle", rest @ ..] => glory_hole::update::cli::run(rest),
        [] => run(None),
        ["--config", file] => run(Some(PathBuf::from(file))),
        _ => {
            eprint!(
                "glory-hole: unrecognised arguments: {}\n{USAGE}",
                args.join(" ")
            );
            ExitCode::from(2)
        }
    }
}

fn run(config_path: Option<PathBuf>) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    match glory_hole::app::run(config_path) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("glory-hole: {e:#}");
            ExitCode::FAILURE
        }
    }
}
