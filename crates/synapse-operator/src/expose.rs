//! The exposure step: with `spec.expose`, the Synapse's HTTPRoute applied (once the spec no
//! longer asks for it, deleted), and where the exposure stands.

use std::sync::Arc;

use operator_common::apply::Applier;
use operator_common::error::Error;
use operator_common::subject::{Lifetime, Subject};
use synapse_types::Synapse;

use crate::http_route::{self, HTTPRoute};
use crate::names;
use crate::public::Public;
use crate::resolve::ResolvedConfig;

/// Where the Synapse's public face stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exposure {
    /// No `spec.expose`: reachable inside the cluster only.
    Off,
    /// The route is applied.
    Routed(Public),
    /// The cluster serves no HTTPRoutes: the Gateway API CRDs are not installed.
    GatewayApiMissing(Public),
}

/// Applies the route `config` asks for, or deletes the `cached` one it no longer asks for.
pub async fn converge(
    applier: &Applier,
    synapse: &Synapse,
    subject: &Subject,
    config: &ResolvedConfig,
    cached: Option<Arc<HTTPRoute>>,
) -> Result<Exposure, Error> {
    let name = names::workload(&subject.name);
    let (Some(public), Some(expose)) = (&config.public, &synapse.spec.expose) else {
        if cached.is_some() {
            applier
                .delete::<HTTPRoute>(&subject.namespace, &name)
                .await?;
        }
        return Ok(Exposure::Off);
    };
    let route = http_route::desired(
        subject.meta(name.clone(), "route", Lifetime::Owned),
        expose,
        &public.server_name,
        &name,
        config.facts.client_port,
    );
    Ok(
        match applier.apply_if_served(&route, cached.as_deref()).await? {
            Ok(_) => Exposure::Routed(public.clone()),
            Err(_) => Exposure::GatewayApiMissing(public.clone()),
        },
    )
}
