//! `textback`: one binary, one subcommand per role. `main` only parses arguments, loads the config and
//! hands over to the subcommand; everything else lives in the libraries.

mod cmd;
mod config;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Missed-call text-back: the caller gets a text within seconds and an assistant books the appointment.
#[derive(Parser)]
#[command(name = "textback", version)]
struct Cli {
    /// Config file (TOML); overrides the defaults in config.default.toml. TEXTBACK_* variables override both.
    #[arg(long, short, global = true, env = "TEXTBACK_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve carrier webhooks and publish them to Kafka.
    Gateway,
    /// Consume events from Kafka: text callers back, hold the conversations, book, send.
    Worker,
    /// Apply the PostgreSQL migrations.
    Migrate,
    /// Manage business profiles.
    Business {
        #[command(subcommand)]
        command: cmd::business::Command,
    },
    /// Everything in one process with nothing installed: a missed call and a conversation that books.
    Demo(cmd::demo::Args),
    /// Run a corpus of scripted conversations through the assistant and print the score.
    Eval(cmd::eval::Args),
    /// Print the effective configuration (secrets masked) and exit.
    Config,
}

/// Exit status for a configuration the program refuses (sysexits' EX_CONFIG family: EX_USAGE).
const EXIT_CONFIG: u8 = 64;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo and eval print for a person: only warnings unless asked.
    let quiet = matches!(cli.command, Command::Demo(_) | Command::Eval(_));
    let default_filter = if quiet { "warn" } else { "info" };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TEXTBACK_LOG")
                .unwrap_or_else(|_| default_filter.into()),
        )
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let config = match config::Config::load(cli.config.as_deref(), std::env::vars()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("textback: configuration error: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let result = match cli.command {
        Command::Gateway => cmd::gateway::run(config),
        Command::Worker => cmd::worker::run(config),
        Command::Migrate => cmd::migrate::run(config),
        Command::Business { command } => cmd::business::run(config, command),
        Command::Eval(args) => cmd::eval::run(config, args),
        Command::Demo(args) => cmd::demo::run(args),
        Command::Config => {
            println!("{config:#?}");
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(cmd::Failure::Config(message)) => {
            eprintln!("textback: configuration error: {message}");
            ExitCode::from(EXIT_CONFIG)
        }
        Err(cmd::Failure::Runtime(e)) => {
            eprintln!("textback: {e:#}");
            ExitCode::FAILURE
        }
    }
}
