//! `textback migrate`: applies the SQL migrations not yet applied.

use anyhow::Context;

use super::Failure;
use crate::config::Config;

pub fn run(config: Config) -> Result<(), Failure> {
    super::with_store(&config, |store| async move {
        let applied = store.migrate(None).await.context("migrate")?;
        if applied.is_empty() {
            println!("schema up to date");
        } else {
            println!("applied migrations {applied:?}");
        }
        Ok(())
    })
}
