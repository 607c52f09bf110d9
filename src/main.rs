//! The `glory-hole` command: parse arguments, load the config, start things.

use glory_hole::config::Config;
use std::path::PathBuf;
use std::process::ExitCode;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "\
usage: glory-hole [--config FILE] [--user NAME]
                                       run the server (embedded default without --config);
                                       started as root, become NAME first (the board image)
       glory-hole check-config FILE    validate FILE, report the bad key and line
                                       (and each unknown key, which is ignored)
       glory-hole print-default-config  print the embedded default as TOML
       glory-hole bundle keygen|create|verify|info ...   firmware update bundles
       glory-hole sql [--db PATH] [--format table|csv|json] \"SELECT ...\"   ask the query log
       glory-hole log export [--db PATH] [--format csv|jsonl] [filters]   export the query log
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
        ["sql", rest @ ..] => glory_hole::querylog::cli::sql(rest),
        ["log", "export", rest @ ..] => glory_hole::querylog::cli::log_export(rest),
        [] => run(None),
        ["--config", file] => run(Some(PathBuf::from(file))),
        ["--user", user] => as_user(user, None),
        ["--config", file, "--user", user] => as_user(user, Some(PathBuf::from(file))),
        _ => {
            eprint!(
                "glory-hole: unrecognised arguments: {}\n{USAGE}",
                args.join(" ")
            );
            ExitCode::from(2)
        }
    }
}

/// Leaves root before anything else starts (one thread so far).
fn as_user(user: &str, config_path: Option<PathBuf>) -> ExitCode {
    match glory_hole::appliance::privileges::become_user(user) {
        Ok(()) => run(config_path),
        Err(e) => {
            eprintln!("glory-hole: {e}");
            ExitCode::FAILURE
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
