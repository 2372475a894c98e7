//! `textback migrate`: applies the SQL migrations not yet applied.

use anyhow::Context;
use textback_worker::store::postgres::PgStore;

use super::Failure;
use crate::config::Config;

pub fn run(config: Config) -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    runtime.block_on(async {
        let store = PgStore::new(&config.worker.postgres_url, None, 1)
            .map_err(|e| Failure::Config(e.to_string()))?;
        let applied = store.migrate(None).await.context("migrate")?;
        if applied.is_empty() {
            println!("schema up to date");
        } else {
            println!("applied migrations {applied:?}");
        }
        Ok(())
    })
}
