//! The exposure step: with `spec.expose`, the Synapse's HTTPRoute or Ingress, and its
//! cert-manager Certificate, applied; what the spec no longer asks for, deleted; and where the
//! exposure stands.

use std::sync::Arc;

use k8s_openapi::api::networking::v1::Ingress;
use operator_common::apply::Applier;
use operator_common::error::Error;
use operator_common::subject::{Lifetime, Subject};
use synapse_types::Synapse;
use synapse_types::expose::Expose;

use crate::certificate::{self, Certificate};
use crate::http_route::{self, HTTPRoute};
use crate::public::Public;
use crate::resolve::ResolvedConfig;
use crate::{ingress, names};

/// Where the Synapse's public face stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exposure {
    /// No `spec.expose`: reachable inside the cluster only.
    Off,
    /// The route (or Ingress) and the certificate asked for are applied.
    Routed(Public),
    /// The cluster does not serve a kind the spec needs (its CRDs are not installed).
    Unserved {
        reason: &'static str,
        crd: &'static str,
    },
}

/// The exposure objects as cached.
#[derive(Clone, Debug, Default)]
pub struct Cached {
    pub route: Option<Arc<HTTPRoute>>,
    pub federation_route: Option<Arc<HTTPRoute>>,
    pub ingress: Option<Arc<Ingress>>,
    pub certificate: Option<Arc<Certificate>>,
}

/// Applies what `config` and the spec ask for; deletes the cached objects they no longer ask
/// for.
pub async fn converge(
    applier: &Applier,
    synapse: &Synapse,
    subject: &Subject,
    config: &ResolvedConfig,
    cached: Cached,
) -> Result<Exposure, Error> {
    let expose = synapse.spec.expose.as_ref();
    let (Some(public), Some(expose)) = (&config.public, expose) else {
        applier.delete_cached(cached.route.as_deref()).await?;
        applier
            .delete_cached(cached.federation_route.as_deref())
            .await?;
        applier.delete_cached(cached.ingress.as_deref()).await?;
        applier.delete_cached(cached.certificate.as_deref()).await?;
        return Ok(Exposure::Off);
    };
    let objects = Objects {
        applier,
        subject,
        public,
        expose,
        port: config.facts.client_port,
    };
    // Each object independently: a missing cert-manager does not hold up the route.
    let certificate = objects.certificate(&cached.certificate).await?;
    let route = objects
        .route(&cached.route, &cached.federation_route)
        .await?;
    objects.ingress(&cached.ingress).await?;
    Ok(route
        .or(certificate)
        .unwrap_or_else(|| Exposure::Routed(public.clone())))
}

/// What one reconciliation exposes.
struct Objects<'a> {
    applier: &'a Applier,
    subject: &'a Subject,
    public: &'a Public,
    expose: &'a Expose,
    port: u16,
}

impl Objects<'_> {
    fn meta(&self, component: &'static str) -> kube::api::ObjectMeta {
        self.meta_named(names::workload(&self.subject.name), component)
    }

    fn meta_named(&self, name: String, component: &'static str) -> kube::api::ObjectMeta {
        self.subject.meta(name, component, Lifetime::Owned)
    }

    /// The route, and with a dedicated federation port the federation route.
    async fn route(
        &self,
        cached: &Option<Arc<HTTPRoute>>,
        cached_federation: &Option<Arc<HTTPRoute>>,
    ) -> Result<Option<Exposure>, Error> {
        let dedicated = !self.public.serves_server_well_known();
        let Some(gateway) = &self.expose.gateway else {
            self.applier.delete_cached(cached.as_deref()).await?;
            self.applier
                .delete_cached(cached_federation.as_deref())
                .await?;
            return Ok(None);
        };
        let service = names::workload(&self.subject.name);
        let (public, port) = (self.public, self.port);
        let route = http_route::desired(self.meta("route"), gateway, public, &service, port);
        let mut applied = self
            .applier
            .apply_if_served(&route, cached.as_deref())
            .await?;
        if dedicated && applied.is_ok() {
            let meta = self.meta_named(names::federation_route(&self.subject.name), "route");
            let route = http_route::federation_route(meta, gateway, public, &service, port);
            let existing = cached_federation.as_deref();
            applied = self.applier.apply_if_served(&route, existing).await?;
        } else if !dedicated {
            self.applier
                .delete_cached(cached_federation.as_deref())
                .await?;
        }
        Ok(applied.err().map(|_| Exposure::Unserved {
            reason: "GatewayAPIMissing",
            crd: "httproutes.gateway.networking.k8s.io (the Gateway API)",
        }))
    }

    async fn ingress(&self, cached: &Option<Arc<Ingress>>) -> Result<(), Error> {
        let Some(spec) = &self.expose.ingress else {
            return self.applier.delete_cached(cached.as_deref()).await;
        };
        let service = names::workload(&self.subject.name);
        let tls = self.expose.tls.as_ref();
        let ingress = ingress::desired(
            self.meta("ingress"),
            spec,
            tls,
            self.public,
            &service,
            self.port,
        );
        self.applier
            .apply(&ingress, cached.as_deref())
            .await
            .map(drop)
    }

    async fn certificate(
        &self,
        cached: &Option<Arc<Certificate>>,
    ) -> Result<Option<Exposure>, Error> {
        let tls = self.expose.tls.as_ref();
        let Some((tls, issuer)) = tls.and_then(|tls| Some((tls, tls.issuer.as_ref()?))) else {
            return self
                .applier
                .delete_cached(cached.as_deref())
                .await
                .map(|()| None);
        };
        let desired = certificate::desired(self.meta("certificate"), tls, issuer, self.public);
        let applied = self
            .applier
            .apply_if_served(&desired, cached.as_deref())
            .await?;
        Ok(applied.err().map(|_| Exposure::Unserved {
            reason: "CertManagerMissing",
            crd: "certificates.cert-manager.io (cert-manager)",
        }))
    }
}
