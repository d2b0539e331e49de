//! The CRDs committed under `crds/` must be exactly what the types generate.

use std::path::PathBuf;

use kube::CustomResourceExt;
use synapse_types::{Heisenbridge, MautrixSignal, Synapse, crd_yaml};

#[test]
fn committed_crds_match_the_types() {
    let crds_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../crds");
    for crd in [Synapse::crd(), Heisenbridge::crd(), MautrixSignal::crd()] {
        let name = crd
            .metadata
            .name
            .clone()
            .expect("a generated CRD has a name");
        let path = crds_dir.join(format!("{name}.yaml"));
        let committed = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}; run hack/gen-crds", path.display()));
        assert!(
            committed == crd_yaml(&crd).unwrap(),
            "crds/{name}.yaml differs from the types in crates/synapse-types: run hack/gen-crds \
             and commit the result"
        );
    }
}
