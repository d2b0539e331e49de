//! cert-manager's Certificate (`cert-manager.io/v1`), only the fields the operator writes, and
//! the certificate of an exposed Synapse. Hand-written: no maintained crate has cert-manager's
//! types for our kube. Pure.

use kube::CustomResource;
use kube::api::ObjectMeta;
use serde::{Deserialize, Serialize};
use synapse_types::expose::{Issuer, IssuerKind, Tls};

use crate::public::Public;

#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[kube(
    group = "cert-manager.io",
    version = "v1",
    kind = "Certificate",
    namespaced,
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct CertificateSpec {
    pub secret_name: String,
    #[serde(default)]
    pub dns_names: Vec<String>,
    pub issuer_ref: IssuerRef,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct IssuerRef {
    pub name: String,
    pub kind: String,
    pub group: String,
}

/// The Certificate `issuer` issues for the public hosts into the Secret of `tls`.
pub fn desired(meta: ObjectMeta, tls: &Tls, issuer: &Issuer, public: &Public) -> Certificate {
    let kind = match issuer.kind {
        IssuerKind::Issuer => "Issuer",
        IssuerKind::ClusterIssuer => "ClusterIssuer",
    };
    Certificate {
        metadata: meta,
        spec: CertificateSpec {
            secret_name: tls.secret_name.clone(),
            dns_names: public.hosts(),
            issuer_ref: IssuerRef {
                name: issuer.name.clone(),
                kind: kind.into(),
                group: "cert-manager.io".into(),
            },
        },
    }
}
