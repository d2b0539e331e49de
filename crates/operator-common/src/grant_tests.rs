use super::*;

fn reference() -> CrossReference {
    CrossReference {
        kind: "Synapse".into(),
        from: "team-a".into(),
        field: "spec.homeserver.configMap",
        namespace: "team-b".into(),
        name: "shared".into(),
    }
}

fn grant(from: (&str, &str, &str), to: (&str, &str, Option<&str>)) -> ReferenceGrant {
    ReferenceGrant::new(
        "g",
        ReferenceGrantSpec {
            from: vec![ReferenceGrantFrom {
                group: from.0.into(),
                kind: from.1.into(),
                namespace: from.2.into(),
            }],
            to: vec![ReferenceGrantTo {
                group: to.0.into(),
                kind: to.1.into(),
                name: to.2.map(Into::into),
            }],
        },
    )
}

const OURS: (&str, &str, &str) = ("synapse.opdev.io", "Synapse", "team-a");

#[test]
fn a_grant_names_our_kind_and_namespace_and_the_config_map_or_all_of_them() {
    let allowed = |grant| allows(&[grant], &reference());
    assert!(allowed(grant(OURS, ("", "ConfigMap", Some("shared")))));
    assert!(allowed(grant(OURS, ("", "ConfigMap", None))));
    assert!(allowed(grant(OURS, ("", "ConfigMap", Some("")))));

    assert!(!allowed(grant(OURS, ("", "ConfigMap", Some("other")))));
    assert!(!allowed(grant(OURS, ("", "Secret", None))));
    assert!(!allowed(grant(OURS, ("apps", "ConfigMap", None))));
    let other_namespace = ("synapse.opdev.io", "Synapse", "team-c");
    assert!(!allowed(grant(other_namespace, ("", "ConfigMap", None))));
    let other_kind = ("synapse.opdev.io", "Heisenbridge", "team-a");
    assert!(!allowed(grant(other_kind, ("", "ConfigMap", None))));
    let other_group = ("gateway.networking.k8s.io", "Synapse", "team-a");
    assert!(!allowed(grant(other_group, ("", "ConfigMap", None))));
    assert!(!allows(&[], &reference()));
}

#[test]
fn a_refusal_names_the_namespace_and_how_to_grant_it() {
    let refusal = |denial| {
        NotGranted {
            reference: Box::new(reference()),
            denial,
        }
        .to_string()
    };
    let no_grant = refusal(Denial::NoGrant);
    for part in [
        "spec.homeserver.configMap names ConfigMap team-b/shared",
        "nothing is read from namespace team-b",
        "ReferenceGrant (gateway.networking.k8s.io/v1beta1) in namespace team-b",
        "{group: synapse.opdev.io, kind: Synapse, namespace: team-a}",
        "{group: \"\", kind: ConfigMap, name: shared}",
        "copy the ConfigMap into namespace team-a",
    ] {
        assert!(no_grant.contains(part), "{part:?} not in {no_grant}");
    }
    assert!(refusal(Denial::NoGrantApi).contains("install the Gateway API CRDs"));
    let outside = refusal(Denial::OutsideWatchedNamespace {
        watched: "team-a".into(),
    });
    assert!(
        outside.contains("installed for namespace team-a only"),
        "{outside}"
    );
    assert!(!outside.contains("ReferenceGrant"), "{outside}");
}
