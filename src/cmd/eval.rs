//! `textback eval --corpus DIR`: scores the assistant on a corpus of scripted conversations.
//! Prints one line per failing dialog, then `N passed, M failed`, `wrong bookings: K` and
//! `mean caller turns: X`; exits non-zero when any dialog fails.

use std::path::PathBuf;

use anyhow::Context;
use textback_worker::eval::{self, Corpus};
use textback_worker::store::memory::MemoryStore;
use textback_worker::store::postgres::PgStore;

use super::Failure;
use crate::config::Config;

/// Each dialog in its own schema; all of them dropped at the end.
async fn postgres(url: &str, corpus: &Corpus) -> Result<eval::Report, eval::EvalError> {
    let mut schemas = Vec::new();
    let report = eval::run(corpus, || {
        let schema = format!("eval_{}", uuid::Uuid::new_v4().simple());
        schemas.push(schema.clone());
        async move {
            let store = PgStore::new(url, Some(&schema), 4)?;
            store.migrate(Some(&schema)).await?;
            Ok(store)
        }
    })
    .await;
    if let Ok(admin) = PgStore::new(url, None, 1) {
        if let Ok(client) = admin.pool().get().await {
            for schema in &schemas {
                let _ = client
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                    .await;
            }
        }
    }
    report
}

#[derive(clap::Args)]
pub struct Args {
    /// A folder with businesses.json and dialogs.jsonl.
    #[arg(long)]
    corpus: PathBuf,
    /// Print every conversation, not only the failing ones.
    #[arg(long)]
    transcripts: bool,
    /// Where conversations are stored: memory (default) or postgres (worker.postgres_url; each
    /// dialog in a fresh schema, dropped afterwards).
    #[arg(long, value_enum, default_value = "memory")]
    store: StoreKind,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum StoreKind {
    Memory,
    Postgres,
}

pub fn run(config: Config, args: Args) -> Result<(), Failure> {
    let corpus =
        Corpus::load(&args.corpus).with_context(|| format!("corpus {}", args.corpus.display()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    let report = match args.store {
        StoreKind::Memory => {
            runtime.block_on(eval::run(&corpus, || async { Ok(MemoryStore::new()) }))
        }
        StoreKind::Postgres => runtime.block_on(postgres(&config.worker.postgres_url, &corpus)),
    }
    .context("eval")?;
    for r in &report.results {
        if args.transcripts || !r.passed() {
            println!(
                "--- {} ({})",
                r.id,
                if r.passed() { "pass" } else { "FAIL" }
            );
            for (said, replies) in &r.transcript {
                println!("  caller: {said}");
                for reply in replies {
                    println!("  textback: {reply}");
                }
            }
        }
    }
    for line in report.lines() {
        println!("{line}");
    }
    if report.failed() > 0 {
        return Err(Failure::Runtime(anyhow::anyhow!(
            "{} of {} dialogs failed",
            report.failed(),
            report.results.len()
        )));
    }
    Ok(())
}
