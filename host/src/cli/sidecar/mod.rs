//! `wasya sidecar`: a drop-in for Asya's sidecar container.
//!
//! It reads only Asya's sidecar environment ([`environment`]) and serves the one actor
//! of the pod through its runtime container's socket, on RabbitMQ, so a pod swaps the
//! sidecar image and nothing else. It records no outcomes (in Asya the end actors run
//! elsewhere, or in sidecars of their own with `ASYA_IS_END_ACTOR`), waits for the
//! runtime before consuming ([`ready`]), and serves `/metrics`, `/healthz`, `/readyz`
//! and the API on `ASYA_METRICS_ADDR` unless `ASYA_METRICS_ENABLED=false`.

pub mod environment;
pub mod ready;

pub use environment::{ASYA_VARIABLES, SidecarSettings, Treatment};

/// Runs the sidecar until a stop signal.
pub async fn run() -> anyhow::Result<()> {
    let settings = SidecarSettings::read(|name| std::env::var(name).ok())?;
    for (name, reason) in &settings.ignored {
        tracing::warn!(variable = name, "{name} is ignored: {reason}");
    }
    if let Some(namespace) = &settings.metrics_namespace {
        crate::metrics::set_namespace(namespace)?;
    }
    if settings.config.api.listen.is_none() {
        tracing::info!("metrics disabled (ASYA_METRICS_ENABLED=false): nothing listens");
    }
    ready::wait_for_runtime(&settings.ready).await?;
    super::up::run_config(settings.config).await
}
