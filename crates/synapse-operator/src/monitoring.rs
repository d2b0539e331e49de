//! The monitoring step: with `spec.metrics.monitor`, the Synapse's ServiceMonitor or PodMonitor
//! applied; the monitor the spec no longer asks for, deleted; and where monitoring stands.

use std::sync::Arc;

use operator_common::apply::Applier;
use operator_common::error::Error;
use operator_common::subject::{Lifetime, Subject};
use synapse_types::Synapse;

use crate::build::HOMESERVER;
use crate::monitor::{self, Desired, PodMonitor, ServiceMonitor};
use crate::names;
use crate::resolve::ResolvedConfig;

/// Whether Prometheus is told to scrape the Synapse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Monitoring {
    /// No `spec.metrics.monitor`.
    Off,
    /// The monitor is applied.
    Monitored(&'static str),
    /// A monitor is asked for, but the homeserver.yaml turns metrics off.
    MetricsDisabled,
    /// The cluster does not serve the monitor's kind (the Prometheus Operator's CRDs are
    /// missing).
    Unserved(&'static str),
}

/// The monitors as cached.
#[derive(Clone, Debug, Default)]
pub struct Cached {
    pub service_monitor: Option<Arc<ServiceMonitor>>,
    pub pod_monitor: Option<Arc<PodMonitor>>,
}

/// Applies the monitor the spec asks for; deletes the cached ones it does not ask for.
pub async fn converge(
    applier: &Applier,
    synapse: &Synapse,
    subject: &Subject,
    config: &ResolvedConfig,
    cached: Cached,
) -> Result<Monitoring, Error> {
    let Some(spec) = &synapse.spec.metrics.monitor else {
        applier
            .delete_cached(cached.service_monitor.as_deref())
            .await?;
        applier.delete_cached(cached.pod_monitor.as_deref()).await?;
        return Ok(Monitoring::Off);
    };
    if config.metrics.is_none() {
        applier
            .delete_cached(cached.service_monitor.as_deref())
            .await?;
        applier.delete_cached(cached.pod_monitor.as_deref()).await?;
        return Ok(Monitoring::MetricsDisabled);
    }
    let name = names::workload(&subject.name);
    let meta = subject.meta(name.clone(), "monitor", Lifetime::Owned);
    let selector = subject.selector(HOMESERVER);
    let (kind, served) = match monitor::desired(meta, &name, spec, selector) {
        Desired::Service(desired) => {
            applier.delete_cached(cached.pod_monitor.as_deref()).await?;
            let existing = cached.service_monitor.as_deref();
            let applied = applier.apply_if_served(&desired, existing).await?;
            ("ServiceMonitor", applied.is_ok())
        }
        Desired::Pod(desired) => {
            applier
                .delete_cached(cached.service_monitor.as_deref())
                .await?;
            let existing = cached.pod_monitor.as_deref();
            let applied = applier.apply_if_served(&desired, existing).await?;
            ("PodMonitor", applied.is_ok())
        }
    };
    Ok(if served {
        Monitoring::Monitored(kind)
    } else {
        Monitoring::Unserved(kind)
    })
}
