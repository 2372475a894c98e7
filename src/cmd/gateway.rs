//! `textback gateway`: the webhook server.

use anyhow::Context;
use textback_gateway::{Gateway, StartError};

use super::Failure;
use crate::config::Config;

pub fn run(config: Config) -> Result<(), Failure> {
    let gateway = Gateway::new(config.gateway.clone()).map_err(|e| match e {
        StartError::Settings(message) => Failure::Config(message),
        other => Failure::Runtime(other.into()),
    })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(config.gateway.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.gateway.listen))?;
        gateway
            .serve(listener, super::shutdown_signal())
            .await
            .context("gateway")?;
        tracing::info!("gateway stopped");
        Ok(())
    })
}
