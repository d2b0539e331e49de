//! The build step of a Heisenbridge: its Service, and its Deployment once its Synapse publishes
//! the client URL the bridge connects to. Pure; metadata from [`Subject::meta`].

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use operator_common::subject::{Lifetime, Subject};
use synapse_types::Heisenbridge;
use synapse_types::contract::registration_content_hash;

use crate::names;
use crate::workload::{
    BridgeWorkload, DEFAULT_IMAGE, heisenbridge_deployment, heisenbridge_service,
};

/// `app.kubernetes.io/component` of the bridge's pod, Deployment and Service.
const COMPONENT: &str = "bridge";

/// The objects applied for a Heisenbridge, besides its registration Secret.
#[derive(Clone, Debug, PartialEq)]
pub struct Children {
    pub service: Service,
    /// `None` until the Synapse's client URL is known.
    pub deployment: Option<Deployment>,
}

/// The Service, and the Deployment running `registration` against `client_url`.
pub fn children(
    bridge: &Heisenbridge,
    subject: &Subject,
    registration: &str,
    client_url: Option<&str>,
) -> Children {
    let meta = || subject.meta(names::workload(&subject.name), COMPONENT, Lifetime::Owned);
    let selector = subject.selector(COMPONENT);
    let deployment = client_url.map(|homeserver_url| {
        let workload = BridgeWorkload {
            image: bridge
                .spec
                .image
                .clone()
                .unwrap_or_else(|| DEFAULT_IMAGE.to_owned()),
            homeserver_url: homeserver_url.to_owned(),
            owner: bridge.spec.owner.clone(),
            verbose_level: bridge.spec.verbose_level,
            registration_secret: names::registration_secret(&subject.name),
            registration_hash: registration_content_hash(registration.as_bytes()),
        };
        heisenbridge_deployment(meta(), selector.clone(), &workload)
    });
    Children {
        service: heisenbridge_service(meta(), selector),
        deployment,
    }
}
