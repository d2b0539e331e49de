use super::*;

const IRC: &str = "id: heisenbridge\nurl: http://irc-heisenbridge.ns.svc:9898\nas_token: aaa\nhs_token: bbb\nsender_localpart: heisenbridge\nrate_limited: false\nnamespaces:\n  users:\n    - regex: '@irc_.*'\n      exclusive: true\n  aliases: []\n  rooms: []\n";

fn violations(text: &str) -> String {
    match parse(text.as_bytes()) {
        Err(violation) => violation.to_string(),
        Ok(doc) => check(&doc)
            .map(|_| String::new())
            .unwrap_or_else(|v| v.to_string()),
    }
}

#[test]
fn a_valid_registration_gives_what_the_cross_checks_need() {
    let registration = check(&parse(IRC.as_bytes()).unwrap()).unwrap();
    assert_eq!(registration.id, "heisenbridge");
    assert_eq!(registration.as_token, "aaa");
    assert_eq!(registration.sender_localpart, "heisenbridge");
    assert_eq!(
        registration.exclusive().collect::<Vec<_>>(),
        [("users", "@irc_.*")]
    );
    // url: null is allowed; `exclusive: yes` is a real YAML 1.1 boolean.
    let loose = IRC
        .replace("url: http://irc-heisenbridge.ns.svc:9898", "url: null")
        .replace("exclusive: true", "exclusive: yes");
    assert_eq!(violations(&loose), "");
}

#[test]
fn each_of_synapses_load_rules_is_named() {
    let cases = [
        (
            IRC.replace("id: heisenbridge\n", ""),
            "`id` must be a string",
        ),
        (
            IRC.replace("as_token: aaa", "as_token: 123"),
            "`as_token` must be a string",
        ),
        (
            IRC.replace("sender_localpart: heisenbridge\n", ""),
            "`sender_localpart` is missing",
        ),
        (
            IRC.replace("url: http://irc-heisenbridge.ns.svc:9898\n", ""),
            "`url` must be a string",
        ),
        (
            IRC.replace("heisenbridge\nrate", "heisen bridge\nrate"),
            "URL encoding",
        ),
        (
            IRC.replace("exclusive: true", "exclusive: 'yes'"),
            "`namespaces.users[0]` must be a mapping",
        ),
        (IRC.replace("'@irc_.*'", "'@irc_(.*'"), "does not compile"),
        (
            IRC.replace("  aliases: []\n", "  aliases: {}\n"),
            "`namespaces.aliases` must be a list",
        ),
        (
            IRC.split("namespaces").next().unwrap().to_owned(),
            "`namespaces` must be a mapping",
        ),
        (
            format!("{IRC}protocols: [1]\n"),
            "`protocols` must be a list of strings",
        ),
        ("[oops".to_owned(), "not valid YAML"),
        ("- a\n".to_owned(), "a list instead of a mapping"),
        (String::new(), "nothing instead of a mapping"),
    ];
    for (text, needle) in cases {
        let found = violations(&text);
        assert!(found.contains(needle), "{needle}: {found}");
    }
    assert_eq!(
        parse(&[0xff, 0xfe]).unwrap_err().to_string(),
        "it is not UTF-8 text"
    );
}

#[test]
fn every_broken_rule_is_listed() {
    let text = IRC
        .replace("as_token: aaa", "as_token: [1]")
        .replace("hs_token: bbb", "hs_token: 2")
        .replace("  aliases: []\n", "  aliases: x\n");
    let found = violations(&text);
    for needle in ["`as_token`", "`hs_token`", "`namespaces.aliases`"] {
        assert!(found.contains(needle), "{needle}: {found}");
    }
    assert_eq!(found.matches("; ").count(), 2, "{found}");
}
