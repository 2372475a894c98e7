//! `textback business`: business profiles (import, in the corpus's businesses.json format, insert or
//! update by id) and giving handed-off conversations back to the assistant.

use std::path::PathBuf;

use anyhow::Context;
use textback_schemas::PhoneNumber;
use textback_worker::profile::load_file;
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
    match command {
        Command::Import { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            // A bad profile is refused before anything is written.
            let businesses =
                load_file(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            super::with_store(&config, |store| async move {
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
        Command::Resume { business, caller } => {
            let caller =
                PhoneNumber::parse(&caller).map_err(|e| anyhow::anyhow!("{caller}: {e}"))?;
            super::with_store(&config, |store| async move {
                if store.resume(&business, &caller).await.context("resume")? {
                    println!("the assistant is back on for {}", caller.redacted());
                    Ok(())
                } else {
                    Err(
                        anyhow::anyhow!("no handed-off conversation for that caller at {business}")
                            .into(),
                    )
                }
            })
        }
    }
}
