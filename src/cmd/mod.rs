//! One module per subcommand. Each takes the loaded config and runs until done or signalled.

pub mod business;
pub mod demo;
pub mod eval;
pub mod gateway;
pub mod migrate;
pub mod worker;

/// How a subcommand failed: a configuration the program refuses (exit 64), or anything else.
pub enum Failure {
    Config(String),
    Runtime(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Runtime(e)
    }
}

/// Resolves on the first SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
}
