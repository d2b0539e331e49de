//! The Ingress (`networking.k8s.io/v1`) of a Synapse exposed through an ingress controller.
//! Pure.

use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, IngressTLS, ServiceBackendPort,
};
use kube::api::ObjectMeta;
use synapse_types::expose::{Ingress as IngressSpecOfSynapse, Tls};

use crate::http_route::PUBLIC_PATHS;
use crate::public::Public;

/// The Ingress of the public hosts to the Synapse Service `service` on `port`, served with the
/// certificate of `tls` when there is one.
pub fn desired(
    mut meta: ObjectMeta,
    ingress: &IngressSpecOfSynapse,
    tls: Option<&Tls>,
    public: &Public,
    service: &str,
    port: u16,
) -> Ingress {
    if !ingress.annotations.is_empty() {
        meta.annotations = Some(ingress.annotations.clone());
    }
    let backend = IngressBackend {
        service: Some(IngressServiceBackend {
            name: service.to_owned(),
            port: Some(ServiceBackendPort {
                number: Some(port.into()),
                ..ServiceBackendPort::default()
            }),
        }),
        ..IngressBackend::default()
    };
    let paths: Vec<HTTPIngressPath> = PUBLIC_PATHS
        .iter()
        .map(|path| HTTPIngressPath {
            path: Some((*path).into()),
            path_type: "Prefix".into(),
            backend: backend.clone(),
        })
        .collect();
    let rules = public
        .hosts()
        .into_iter()
        .map(|host| IngressRule {
            host: Some(host),
            http: Some(HTTPIngressRuleValue {
                paths: paths.clone(),
            }),
        })
        .collect();
    Ingress {
        metadata: meta,
        spec: Some(IngressSpec {
            ingress_class_name: ingress.class_name.clone(),
            rules: Some(rules),
            tls: tls.map(|tls| {
                vec![IngressTLS {
                    hosts: Some(public.hosts()),
                    secret_name: Some(tls.secret_name.clone()),
                }]
            }),
            ..IngressSpec::default()
        }),
        status: None,
    }
}
