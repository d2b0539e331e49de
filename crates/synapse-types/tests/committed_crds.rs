//! The CRDs committed under `crds/`, and their copies in the operators' Helm charts, must be
//! exactly what the types generate.

use std::path::{Path, PathBuf};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use synapse_types::{Heisenbridge, MautrixSignal, Synapse, crd_yaml};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The CRD of each operator's kind, by the operator whose chart ships it.
fn crds() -> [(&'static str, CustomResourceDefinition); 3] {
    [
        ("synapse-operator", Synapse::crd()),
        ("heisenbridge-operator", Heisenbridge::crd()),
        ("signal-operator", MautrixSignal::crd()),
    ]
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}; run hack/gen-crds", path.display()))
}

fn name_of(crd: &CustomResourceDefinition) -> String {
    crd.metadata
        .name
        .clone()
        .expect("a generated CRD has a name")
}

/// The chart template of a CRD: the committed document with the keep policy, installed only
/// when `crds.install` is set. hack/gen-crds writes the same.
fn chart_template(crd_yaml: &str) -> String {
    let annotated = crd_yaml.replacen(
        "\nmetadata:\n",
        "\nmetadata:\n  annotations:\n    helm.sh/resource-policy: keep\n",
        1,
    );
    format!("{{{{- if .Values.crds.install }}}}\n{annotated}{{{{- end }}}}\n")
}

#[test]
fn committed_crds_match_the_types() {
    for (_, crd) in crds() {
        let name = name_of(&crd);
        let path = repo_root().join(format!("crds/{name}.yaml"));
        assert!(
            read(&path) == crd_yaml(&crd).unwrap(),
            "crds/{name}.yaml differs from the types in crates/synapse-types: run hack/gen-crds \
             and commit the result"
        );
    }
}

#[test]
fn chart_crds_match_the_types() {
    for (operator, crd) in crds() {
        let name = name_of(&crd);
        let relative = format!("charts/{operator}/templates/crds/{name}.yaml");
        let expected = chart_template(&crd_yaml(&crd).unwrap());
        assert!(
            expected.contains("helm.sh/resource-policy: keep"),
            "the CRD document has a metadata section to annotate"
        );
        assert!(
            read(&repo_root().join(&relative)) == expected,
            "{relative} differs from the types in crates/synapse-types: run hack/gen-crds and \
             commit the result"
        );
    }
}

#[test]
fn each_chart_ships_only_its_own_crds() {
    for (operator, crd) in crds() {
        let dir = repo_root().join(format!("charts/{operator}/templates/crds"));
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
            .map(|entry| entry.expect("a directory entry").file_name())
            .map(|name| name.to_string_lossy().into_owned())
            .collect();
        files.sort();
        assert_eq!(
            files,
            [format!("{}.yaml", name_of(&crd))],
            "{}",
            dir.display()
        );
    }
}
