//! Fuzzing of the checks of a user's Heisenbridge registration (docs/development.md, Fuzzing):
//! any file gives a registration or the rules it breaks, never a panic, and a registration it
//! gives passes the same checks again unchanged, as Synapse reads it.

use operator_common::fuzzing;
use proptest::prelude::*;

use super::*;

const URL: &str = "http://irc-heisenbridge.matrix.svc:9898";

/// Keys and values of a registration file.
const VOCABULARY: &[&str] = &[
    "id",
    "url",
    "as_token",
    "hs_token",
    "sender_localpart",
    "rate_limited",
    "namespaces",
    "users",
    "aliases",
    "rooms",
    "regex",
    "exclusive",
    "protocols",
    "heisenbridge",
    "irc",
    "'@irc_.*'",
    "'@heisenbridge:.*'",
    "'@irc/.+'",
    "true",
    "false",
    "'(?<=a)b'",
    "'\\1'",
    "de.sorunome.msc2409.push_ephemeral",
    "receive_ephemeral",
];

/// What holds for every file: the rules it breaks, or a registration that Synapse reads as
/// written (only characters PyYAML accepts, Synapse's rules kept) and that checks the same
/// again: the operator reads back what it wrote at every reconciliation.
fn check(text: &str) {
    let Ok(written) = user_registration(text, URL) else {
        return;
    };
    assert!(written.chars().all(yaml11::printable), "{written:?}");
    serde_json::from_str::<serde_json::Value>(&written).expect("the file is JSON");
    let doc = registration_file::parse(written.as_bytes()).expect("the file reads");
    registration_file::check(&doc).expect("the file keeps Synapse's rules");
    assert_eq!(doc.get("url"), Some(&Value::Str(URL.to_owned())));
    assert_eq!(user_registration(&written, URL), Ok(written.clone()));
}

/// A registration with each field an odd value or a usual one, the users namespaces included.
fn registration_shaped() -> impl Strategy<Value = String> {
    let usual =
        |usual: &'static str| prop_oneof![8 => Just(usual.to_owned()), 1 => fuzzing::value()];
    let regex = prop_oneof![
        2 => Just("'@irc_.*'".to_owned()),
        1 => "'@[a-z_./*+?:()\\[\\]|^$-]{1,16}'",
        1 => fuzzing::value(),
    ];
    // The bot's own namespace, which Heisenbridge does not count among the puppets'.
    let bot_regex = prop_oneof![8 => Just("'@ircbot:.*'".to_owned()), 1 => regex.clone()];
    (
        (usual("irc"), usual("aaa"), usual("bbb"), usual("ircbot"), usual("http://x")),
        (regex.clone(), usual("true"), bot_regex, usual("yes"), usual("no")),
    )
        .prop_map(|((id, a, h, localpart, url), (r1, e1, r2, e2, rate))| {
            format!(
                "id: {id}\nurl: {url}\nas_token: {a}\nhs_token: {h}\nsender_localpart: {localpart}\n\
                 rate_limited: {rate}\nnamespaces:\n  users:\n    - regex: {r1}\n      exclusive: {e1}\n\
                 \x20   - regex: {r2}\n      exclusive: {e2}\n  aliases: []\n  rooms: []\n"
            )
        })
}

operator_common::fuzz_text_properties!(check, VOCABULARY, "registration");

proptest! {
    #![proptest_config(fuzzing::config(1))]

    /// The tokens of an earlier file: any bytes give tokens or none.
    #[test]
    fn tokens_of_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Some(tokens) = tokens_of(&bytes) {
            prop_assert!(!tokens.as_token.is_empty() && !tokens.hs_token.is_empty());
        }
    }
}

proptest! {
    // Half the cases: a quarter of these files pass the checks, and each then compiles its
    // regexes and is checked a second time.
    #![proptest_config(fuzzing::config(2))]

    /// Files of a registration's shape with odd values: most mutated seeds break a rule early.
    #[test]
    fn registration_shaped_files_are_checked(text in registration_shaped()) {
        check(&text);
    }
}
