use std::collections::HashSet;
use std::sync::Mutex;

use kube::api::DynamicObject;
use kube::runtime::watcher::Event;
use serde_json::json;
use synapse_types::Synapse;

use super::*;
use crate::testing::{Exchange, scripted};

fn synapse(name: &str, homeserver: serde_json::Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "synapse.opdev.io/v1alpha1",
        "kind": "Synapse",
        "metadata": {"name": name, "namespace": "ns", "uid": name, "resourceVersion": "1"},
        "spec": {"homeserver": homeserver},
    }))
    .unwrap()
}

#[tokio::test]
async fn an_object_that_cannot_be_read_is_reported_once_and_left_out() {
    let (client, api) = scripted();
    let events = Events::new(client, "synapse-operator");
    let reported = Mutex::new(HashSet::new());
    let good = synapse(
        "good",
        json!({"values": {"serverName": "x.org", "reportStats": false}}),
    );
    let bad = synapse("bad", json!("not a mapping"));
    let script = vec![
        Exchange::post("/apis/events.k8s.io/v1/namespaces/ns/events").body(|event| {
            assert_eq!(event["reason"], REASON_UNREADABLE);
            assert_eq!(event["type"], "Warning");
            assert_eq!(event["regarding"]["name"], "bad");
            let note = event["note"].as_str().unwrap();
            assert!(
                note.contains("spec.homeserver"),
                "the note names the field: {note}"
            );
        }),
    ];
    api.play(script, async {
        let read = read_event::<Synapse>(Event::InitApply(good), &events, &reported);
        assert!(
            matches!(read, Some(Event::InitApply(s)) if s.metadata.name.as_deref() == Some("good"))
        );
        assert!(read_event::<Synapse>(Event::Apply(bad.clone()), &events, &reported).is_none());
        // The same version again is not reported again.
        assert!(read_event::<Synapse>(Event::Apply(bad), &events, &reported).is_none());
        assert!(matches!(
            read_event::<Synapse>(Event::InitDone, &events, &reported),
            Some(Event::InitDone)
        ));
        // Let the spawned report reach the API.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    })
    .await;
}
