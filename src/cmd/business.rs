//! `textback business import FILE`: loads business profiles (the corpus's businesses.json format),
//! inserting new ones and updating existing ones by id.

use std::path::PathBuf;

use anyhow::Context;
use textback_worker::profile::load_file;
use textback_worker::store::postgres::PgStore;
use textback_worker::store::Store;

use super::Failure;
use crate::config::Config;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Insert or update the businesses in FILE ({"businesses": [...]}).
    Import { file: PathBuf },
    /// Give a handed-off conversation back to the assistant (owners can also text
    /// "RESUME +1..." to the business number).
    Resume {
        /// The business id.
        business: String,
        /// The caller's number, E.164.
        caller: String,
    },
}

pub fn run(config: Config, command: Command) -> Result<(), Failure> {
    let file = match command {
        Command::Import { file } => file,
        Command::Resume { business, caller } => return resume(&config, &business, &caller),
    };
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    // A bad profile is refused before anything is written.
    let businesses = load_file(&text)
        .map_err(|e| Failure::Runtime(anyhow::anyhow!("{}: {e}", file.display())))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    runtime.block_on(async {
        let store = PgStore::new(&config.worker.postgres_url, None, 1)
            .map_err(|e| Failure::Config(e.to_string()))?;
        store.migrate(None).await.context("migrate")?;
        for b in &businesses {
            store
                .upsert_business(b)
                .await
                .with_context(|| format!("business {}", b.id))?;
        }
        println!("imported {} businesses", businesses.len());
        Ok(())
    })
}

fn resume(config: &Config, business: &str, caller: &str) -> Result<(), Failure> {
    let caller = textback_schemas::PhoneNumber::parse(caller)
        .map_err(|e| Failure::Runtime(anyhow::anyhow!("{caller}: {e}")))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    runtime.block_on(async {
        let store = PgStore::new(&config.worker.postgres_url, None, 1)
            .map_err(|e| Failure::Config(e.to_string()))?;
        if store.resume(business, &caller).await.context("resume")? {
            println!("the assistant is back on for {}", caller.redacted());
            Ok(())
        } else {
            Err(Failure::Runtime(anyhow::anyhow!(
                "no handed-off conversation for that caller at {business}"
            )))
        }
    })
}
