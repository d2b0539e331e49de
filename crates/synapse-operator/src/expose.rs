//! The exposure step: with `spec.expose`, the Synapse's HTTPRoute or Ingress, and its
//! cert-manager Certificate, applied; what the spec no longer asks for, deleted; and where the
//! exposure stands.

use std::sync::Arc;

use k8s_openapi::api::networking::v1::Ingress;
use operator_common::apply::{Applicable, Applier};
use operator_common::error::Error;
use operator_common::subject::{Lifetime, Subject};
use serde::Serialize;
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
        remove(applier, subject, &cached.route).await?;
        remove(applier, subject, &cached.ingress).await?;
        remove(applier, subject, &cached.certificate).await?;
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
    let route = objects.route(&cached.route).await?;
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
        let name = names::workload(&self.subject.name);
        self.subject.meta(name, component, Lifetime::Owned)
    }

    async fn route(&self, cached: &Option<Arc<HTTPRoute>>) -> Result<Option<Exposure>, Error> {
        let Some(gateway) = &self.expose.gateway else {
            return remove(self.applier, self.subject, cached)
                .await
                .map(|()| None);
        };
        let service = names::workload(&self.subject.name);
        let route = http_route::desired(
            self.meta("route"),
            gateway,
            self.public,
            &service,
            self.port,
        );
        let applied = self
            .applier
            .apply_if_served(&route, cached.as_deref())
            .await?;
        Ok(applied.err().map(|_| Exposure::Unserved {
            reason: "GatewayAPIMissing",
            crd: "httproutes.gateway.networking.k8s.io (the Gateway API)",
        }))
    }

    async fn ingress(&self, cached: &Option<Arc<Ingress>>) -> Result<(), Error> {
        let Some(spec) = &self.expose.ingress else {
            return remove(self.applier, self.subject, cached).await;
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
            return remove(self.applier, self.subject, cached)
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

/// Deletes the `cached` object of the Synapse, if there is one.
async fn remove<K: Applicable + Serialize>(
    applier: &Applier,
    subject: &Subject,
    cached: &Option<Arc<K>>,
) -> Result<(), Error> {
    if cached.is_none() {
        return Ok(());
    }
    let name = names::workload(&subject.name);
    applier.delete::<K>(&subject.namespace, &name).await
}
