//! `textback eval --corpus DIR`: scores the assistant on a corpus of scripted conversations.
//! Prints one line per failing dialog, then `N passed, M failed`, `wrong bookings: K` and
//! `mean caller turns: X`; exits non-zero when any dialog fails.

use std::path::PathBuf;

use anyhow::Context;
use textback_worker::eval::{self, Corpus};
use textback_worker::store::memory::MemoryStore;

use super::Failure;

#[derive(clap::Args)]
pub struct Args {
    /// A folder with businesses.json and dialogs.jsonl.
    #[arg(long)]
    corpus: PathBuf,
    /// Print every conversation, not only the failing ones.
    #[arg(long)]
    transcripts: bool,
}

pub fn run(args: Args) -> Result<(), Failure> {
    let corpus =
        Corpus::load(&args.corpus).with_context(|| format!("corpus {}", args.corpus.display()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    let report = runtime
        .block_on(eval::run(&corpus, MemoryStore::new))
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
