use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Value, json};
use synapse_types::{Heisenbridge, Synapse};

use super::*;
use crate::grant::Denial;
use crate::testing::{Exchange, api_status, scripted, store_of};

fn input(lookup: Lookup) -> ConfigMapInput {
    ConfigMapInput {
        namespace: "ns".into(),
        name: "cm".into(),
        lookup,
    }
}

#[test]
fn text_comes_from_data_then_utf8_binary_data_and_the_reference_defaults_to_its_namespace() {
    let data = ConfigMap {
        data: Some(BTreeMap::from([("a".into(), "text".into())])),
        binary_data: Some(BTreeMap::from([
            ("b".into(), ByteString(b"bytes".to_vec())),
            ("c".into(), ByteString(vec![0xff])),
        ])),
        ..ConfigMap::default()
    };
    let found = input(Lookup::Found(Box::new(data)));
    assert_eq!(found.text("a").as_deref(), Some("text"));
    assert_eq!(found.text("b").as_deref(), Some("bytes"));
    assert_eq!(found.text("c"), None, "not UTF-8");
    assert_eq!(found.file("a"), Ok("text".into()));
    assert_eq!(found.file("d"), Err(InputProblem::KeyMissing));
    assert_eq!(input(Lookup::NotFound).text("a"), None);
    assert_eq!(
        input(Lookup::NotFound).file("a"),
        Err(InputProblem::NotFound)
    );

    let reference = |namespace: Option<&str>| ConfigMapReference {
        name: "cm".into(),
        namespace: namespace.map(Into::into),
    };
    assert_eq!(referenced_namespace(&reference(None), "mine"), "mine");
    assert_eq!(referenced_namespace(&reference(Some("")), "mine"), "mine");
    assert_eq!(
        referenced_namespace(&reference(Some("other")), "mine"),
        "other"
    );
}

fn synapse(namespace: &str, name: &str, config_map: Option<(&str, Option<&str>)>) -> Synapse {
    let homeserver = match config_map {
        Some((cm, ns)) => json!({"configMap": {"name": cm, "namespace": ns}}),
        None => json!({"values": {"serverName": "x", "reportStats": false}}),
    };
    let mut synapse = Synapse::new(
        name,
        serde_json::from_value(json!({ "homeserver": homeserver })).unwrap(),
    );
    synapse.metadata.namespace = Some(namespace.into());
    synapse
}

fn names<K: Reconciled>(refs: Vec<ObjectRef<K>>) -> Vec<String> {
    let mut names: Vec<String> = refs
        .iter()
        .map(|r| format!("{}/{}", r.namespace.as_deref().unwrap_or(""), r.name))
        .collect();
    names.sort();
    names
}

#[test]
fn changes_map_to_the_objects_naming_the_config_map_or_crossing_into_its_namespace() {
    let synapses = store_of(vec![
        synapse("a", "own", Some(("cfg", None))),
        synapse("a", "own-explicit", Some(("cfg", Some("a")))),
        synapse("a", "other-name", Some(("cfg2", None))),
        synapse("a", "values", None),
        synapse("b", "same-name", Some(("cfg", None))),
        synapse("b", "crossing", Some(("cfg", Some("a")))),
        synapse("c", "crossing-other", Some(("cfg9", Some("a")))),
    ]);
    let cm = PartialObjectMeta::<ConfigMap> {
        types: None,
        metadata: ObjectMeta {
            name: Some("cfg".into()),
            namespace: Some("a".into()),
            ..ObjectMeta::default()
        },
        _phantom: Default::default(),
    };
    assert_eq!(
        names(referring_to(&synapses, &cm)),
        ["a/own", "a/own-explicit", "b/crossing"]
    );
    assert_eq!(
        names(referring_into(&synapses, "a")),
        ["b/crossing", "c/crossing-other"]
    );
    assert!(referring_into(&synapses, "b").is_empty());
}

fn bridge_naming(namespace: Option<&str>) -> Heisenbridge {
    let mut bridge = Heisenbridge::new(
        "irc",
        serde_json::from_value(json!({
            "synapse": {"name": "hs"},
            "configMap": {"name": "cfg", "namespace": namespace},
        }))
        .unwrap(),
    );
    bridge.metadata.namespace = Some("a".into());
    bridge
}

fn config_map_body() -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": "cfg", "namespace": "b"}, "data": {"k": "v"}})
}

fn grants(items: Value) -> Value {
    json!({"apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "ReferenceGrantList",
           "metadata": {}, "items": items})
}

fn grant_for(kind: &str, from: &str, name: Option<&str>) -> Value {
    json!({"apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "ReferenceGrant",
           "metadata": {"name": "g", "namespace": "b"},
           "spec": {"from": [{"group": "synapse.opdev.io", "kind": kind, "namespace": from}],
                    "to": [{"group": "", "kind": "ConfigMap", "name": name}]}})
}

const GRANTS_OF_B: &str = "/apis/gateway.networking.k8s.io/v1beta1/namespaces/b/referencegrants";
const CONFIG_MAP_IN_B: &str = "/api/v1/namespaces/b/configmaps/cfg";

async fn read(watched: Option<&str>, bridge: &Heisenbridge, script: Vec<Exchange>) -> Lookup {
    let (client, api) = scripted();
    let reader = ConfigMapReader::new(client, watched.map(Into::into));
    let input = api
        .play(script, reader.read(bridge, "a"))
        .await
        .expect("no API error")
        .expect("the bridge names a ConfigMap");
    assert_eq!(
        (input.namespace.as_str(), input.name.as_str()),
        ("b", "cfg")
    );
    input.lookup
}

fn denial(lookup: Lookup) -> Denial {
    match lookup {
        Lookup::NotGranted(denied) => denied.denial,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn another_namespace_is_read_only_with_its_grant() {
    let bridge = bridge_naming(Some("b"));
    let list = |items| Exchange::get(GRANTS_OF_B).reply(200, grants(items));

    let granted = read(
        None,
        &bridge,
        vec![
            list(json!([grant_for("Heisenbridge", "a", Some("cfg"))])),
            Exchange::get(CONFIG_MAP_IN_B).reply(200, config_map_body()),
        ],
    )
    .await;
    assert!(matches!(granted, Lookup::Found(_)), "{granted:?}");

    // Grants for another kind, namespace or name are no grant: nothing is read.
    let others = json!([
        grant_for("Synapse", "a", Some("cfg")),
        grant_for("Heisenbridge", "c", Some("cfg")),
        grant_for("Heisenbridge", "a", Some("other")),
    ]);
    let refused = read(None, &bridge, vec![list(others)]).await;
    assert_eq!(denial(refused), Denial::NoGrant);

    let no_api = Exchange::get(GRANTS_OF_B).reply(404, api_status(404, "NotFound", "not found"));
    assert_eq!(
        denial(read(None, &bridge, vec![no_api]).await),
        Denial::NoGrantApi
    );

    // Installed for one namespace: not even the grants are read.
    assert_eq!(
        denial(read(Some("a"), &bridge, vec![]).await),
        Denial::OutsideWatchedNamespace {
            watched: "a".into()
        }
    );
}

#[tokio::test]
async fn the_own_namespace_needs_no_grant() {
    for bridge in [bridge_naming(None), bridge_naming(Some("a"))] {
        let (client, api) = scripted();
        let reader = ConfigMapReader::new(client, Some("a".into()));
        let script = vec![
            Exchange::get("/api/v1/namespaces/a/configmaps/cfg")
                .reply(404, api_status(404, "NotFound", "not found")),
        ];
        let input = api.play(script, reader.read(&bridge, "a")).await.unwrap();
        assert_eq!(input.unwrap().lookup, Lookup::NotFound);
    }
    let mut without = bridge_naming(None);
    without.spec.config_map = None;
    let (client, api) = scripted();
    let reader = ConfigMapReader::new(client, None);
    let input = api.play(vec![], reader.read(&without, "a")).await.unwrap();
    assert_eq!(input, None);
}
