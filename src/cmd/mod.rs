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

/// Runs an administrative command against PostgreSQL (`worker.postgres_url`) on a small runtime.
pub fn with_store<T, F, Fut>(config: &crate::config::Config, f: F) -> Result<T, Failure>
where
    F: FnOnce(textback_worker::store::postgres::PgStore) -> Fut,
    Fut: std::future::Future<Output = Result<T, Failure>>,
{
    use anyhow::Context;
    let store =
        textback_worker::store::postgres::PgStore::new(&config.worker.postgres_url, None, 1)
            .map_err(|e| Failure::Config(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    runtime.block_on(f(store))
}
