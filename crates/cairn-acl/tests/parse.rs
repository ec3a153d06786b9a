//! Parsing rule text: every resource kind in both syntaxes, and errors that say where.

use cairn_acl::AccessLevel::{Deny, List, Read, Write};
use cairn_acl::{Rule, RuleError, Rules, ScalarKind, SegmentKind, MAX_RULES, MAX_RULES_BYTES};

fn rule(kind: SegmentKind, name: &str, prefix: bool, access: cairn_acl::AccessLevel) -> Rule {
    Rule {
        kind,
        name: name.to_string(),
        prefix,
        access,
        intentions: None,
    }
}

const HCL_ALL: &str = r#"
# every kind Consul's rule language has
key "a/b" { policy = "read" }
key_prefix "" { policy = "deny" }
key_prefix "app/" { policy = "list" }
service "web" {
  policy = "write"
  intentions = "read"
}
service_prefix "" { policy = "read" }
node "n1" { policy = "write" }
node_prefix "" { policy = "read" }
session "n1" { policy = "write" }
session_prefix "" { policy = "read" }
agent "n1" { policy = "read" }
agent_prefix "" { policy = "deny" }
event "deploy" { policy = "write" }
event_prefix "" { policy = "read" }
query "q" { policy = "write" }
query_prefix "" { policy = "read" }
operator = "read"
acl = "write"
keyring = "deny"
mesh = "write"
peering = "read"
"#;

const JSON_ALL: &str = r#"{
  "key": {"a/b": {"policy": "read"}},
  "key_prefix": {"": {"policy": "deny"}, "app/": {"policy": "list"}},
  "service": {"web": {"policy": "write", "intentions": "read"}},
  "service_prefix": {"": {"policy": "read"}},
  "node": {"n1": {"policy": "write"}},
  "node_prefix": {"": {"policy": "read"}},
  "session": {"n1": {"policy": "write"}},
  "session_prefix": {"": {"policy": "read"}},
  "agent": {"n1": {"policy": "read"}},
  "agent_prefix": {"": {"policy": "deny"}},
  "event": {"deploy": {"policy": "write"}},
  "event_prefix": {"": {"policy": "read"}},
  "query": {"q": {"policy": "write"}},
  "query_prefix": {"": {"policy": "read"}},
  "operator": "read",
  "acl": "write",
  "keyring": "deny",
  "mesh": "write",
  "peering": "read"
}"#;

fn expected_all() -> Vec<Rule> {
    use SegmentKind::*;
    let mut web = rule(Service, "web", false, Write);
    web.intentions = Some(Read);
    vec![
        rule(Key, "a/b", false, Read),
        rule(Key, "", true, Deny),
        rule(Key, "app/", true, List),
        web,
        rule(Service, "", true, Read),
        rule(Node, "n1", false, Write),
        rule(Node, "", true, Read),
        rule(Session, "n1", false, Write),
        rule(Session, "", true, Read),
        rule(Agent, "n1", false, Read),
        rule(Agent, "", true, Deny),
        rule(Event, "deploy", false, Write),
        rule(Event, "", true, Read),
        rule(Query, "q", false, Write),
        rule(Query, "", true, Read),
    ]
}

fn sorted(mut rules: Vec<Rule>) -> Vec<Rule> {
    rules.sort_by(|a, b| (a.kind, a.prefix, &a.name).cmp(&(b.kind, b.prefix, &b.name)));
    rules
}

fn check_scalars(rules: &Rules) {
    assert_eq!(rules.scalar(ScalarKind::Operator), Some(Read));
    assert_eq!(rules.scalar(ScalarKind::Acl), Some(Write));
    assert_eq!(rules.scalar(ScalarKind::Keyring), Some(Deny));
    assert_eq!(rules.scalar(ScalarKind::Mesh), Some(Write));
    assert_eq!(rules.scalar(ScalarKind::Peering), Some(Read));
}

#[test]
fn hcl_every_kind() {
    let rules = Rules::parse(HCL_ALL).expect("parses");
    assert_eq!(rules.rules(), expected_all().as_slice());
    check_scalars(&rules);
    assert_eq!(rules.len(), 20);
}

#[test]
fn json_every_kind_matches_hcl() {
    let json = Rules::parse(JSON_ALL).expect("parses");
    check_scalars(&json);
    assert_eq!(sorted(json.rules().to_vec()), sorted(expected_all()));
}

#[test]
fn json_list_form_is_accepted() {
    let rules = Rules::parse(
        r#"{"key_prefix": [{"a/": {"policy": "write"}}, {"b/": [{"policy": "read"}]}]}"#,
    )
    .expect("parses");
    assert_eq!(
        rules.rules(),
        &[
            rule(SegmentKind::Key, "a/", true, Write),
            rule(SegmentKind::Key, "b/", true, Read)
        ]
    );
}

#[test]
fn hcl1_one_line_blocks_are_accepted() {
    let rules = Rules::parse(
        "service_prefix \"\" { policy = \"write\" intentions = \"write\" }\n\
         key \"a b\" { policy = \"read\", }\n\
         node \"x\" {policy=\"deny\"}",
    )
    .expect("parses");
    let mut svc = rule(SegmentKind::Service, "", true, Write);
    svc.intentions = Some(Write);
    assert_eq!(
        rules.rules(),
        &[
            svc,
            rule(SegmentKind::Key, "a b", false, Read),
            rule(SegmentKind::Node, "x", false, Deny)
        ]
    );
}

#[test]
fn hcl1_rewrite_never_turns_comments_into_rules() {
    // Without the comment guard, the quote in the comment would end a "string" and the rest
    // of the comment would become `operator = "write"` on its own line.
    for text in [
        "# see \"docs\" operator = \"write\"\nkey \"a\" { policy = \"read\" intentions = \"x\" }",
        "// \"x\" operator = \"write\"\nkey \"a\" { policy = \"read\" intentions = \"x\" }",
        "/* \"x\" operator = \"write\" */ key \"a\" { policy = \"read\" intentions = \"x\" }",
    ] {
        match Rules::parse(text) {
            Err(RuleError::Hcl(_)) => {}
            other => panic!("{text:?}: expected the syntax error as written, got {other:?}"),
        }
    }
    // Comments are fine in text that needs no rewrite.
    let rules = Rules::parse("# \"quoted\" acl = \"write\"\noperator = \"read\"").unwrap();
    assert_eq!(rules.scalar(ScalarKind::Acl), None);
    assert_eq!(rules.scalar(ScalarKind::Operator), Some(Read));
}

#[test]
fn empty_text_is_no_rules() {
    for text in ["", "  \n# only a comment\n", "{}"] {
        assert!(Rules::parse(text).expect("parses").is_empty(), "{text:?}");
    }
}

#[test]
fn duplicate_rules_in_one_text_are_kept_and_scalars_merge_deny_first() {
    let rules = Rules::parse(
        r#"
key "a" { policy = "write" }
key "a" { policy = "read" }
"#,
    )
    .expect("parses");
    assert_eq!(rules.rules().len(), 2);
    let json = Rules::parse(r#"{"operator": "write"}"#).expect("parses");
    assert_eq!(json.scalar(ScalarKind::Operator), Some(Write));
}

/// (rule text, where the error must point, what it must say).
const BAD: &[(&str, &str, &str)] = &[
    // unknown resource
    (
        r#"keys "a" { policy = "read" }"#,
        "keys",
        "unknown resource",
    ),
    (
        r#"{"keys": {"a": {"policy": "read"}}}"#,
        "keys",
        "unknown resource",
    ),
    (
        r#"namespace "x" { policy = "read" }"#,
        "namespace",
        "expected one of key, key_prefix",
    ),
    // bad access level
    (
        r#"key "a" { policy = "reed" }"#,
        "key \"a\".policy",
        "invalid access level \"reed\"",
    ),
    (
        r#"{"key": {"a": {"policy": "reed"}}}"#,
        "key \"a\".policy",
        "invalid access level",
    ),
    (
        r#"service "a" { policy = "list" }"#,
        "service \"a\".policy",
        "\"read\", \"write\" or \"deny\"",
    ),
    (
        r#"node_prefix "" { policy = "list" }"#,
        "node_prefix \"\".policy",
        "invalid access level \"list\"",
    ),
    (
        r#"operator = "list""#,
        "operator",
        "invalid access level \"list\"",
    ),
    (
        r#"{"acl": "admin"}"#,
        "acl",
        "invalid access level \"admin\"",
    ),
    (
        r#"service "a" { policy = "read"  intentions = "list" }"#,
        "service \"a\".intentions",
        "invalid access level",
    ),
    (
        r#"key "a" { policy = 3 }"#,
        "key \"a\".policy",
        "found a number",
    ),
    (
        r#"{"key": {"a": {"policy": true}}}"#,
        "key \"a\".policy",
        "found a boolean",
    ),
    (
        r#"key "a" { policy = "${x}" }"#,
        "key \"a\".policy",
        "interpolation",
    ),
    // wrong nesting / shape
    (
        "key \"a\" {\n  policy = \"read\"\n  inner {\n    policy = \"read\"\n  }\n}",
        "key \"a\".inner",
        "nested block",
    ),
    (
        r#"key { policy = "read" }"#,
        "key",
        "exactly one name label",
    ),
    (
        r#"key "a" "b" { policy = "read" }"#,
        "key",
        "exactly one name label",
    ),
    (r#"key = "read""#, "key", "expected a block"),
    (
        r#"operator { policy = "read" }"#,
        "operator",
        "found a block",
    ),
    (r#"key "a" { }"#, "key \"a\"", "missing \"policy\""),
    (
        r#"key "a" { intentions = "read" }"#,
        "key \"a\".intentions",
        "unknown field \"intentions\"",
    ),
    (
        r#"service "a" { policy = "read" color = "red" }"#,
        "service \"a\".color",
        "unknown field",
    ),
    (r#"{"key": "read"}"#, "key", "expected an object"),
    (
        r#"{"key": {"a": "read"}}"#,
        "key \"a\"",
        "expected an object",
    ),
    (r#"{"key": [1]}"#, "key", "found a number"),
    (r#"{"key": {"a": {}}}"#, "key \"a\"", "missing \"policy\""),
    (
        r#"{"operator": {"policy": "read"}}"#,
        "operator",
        "found an object",
    ),
];

#[test]
fn bad_rules_name_where() {
    for (text, path, message) in BAD {
        match Rules::parse(text) {
            Err(RuleError::Invalid {
                path: p,
                message: m,
            }) => {
                assert_eq!(&p, path, "path for {text:?} (message {m:?})");
                assert!(
                    m.contains(message),
                    "message for {text:?}: {m:?} lacks {message:?}"
                );
            }
            other => panic!("{text:?}: expected an Invalid error, got {other:?}"),
        }
    }
}

#[test]
fn json_top_level_must_be_an_object() {
    let err = Rules::parse("{").unwrap_err();
    assert!(matches!(err, RuleError::Json { line: 1, .. }), "{err:?}");
}

#[test]
fn hcl_syntax_error_has_line_and_column() {
    let err = Rules::parse("key \"a\" {\n  policy = \"read\"\n  policy = \n}\n").unwrap_err();
    let RuleError::Hcl(message) = &err else {
        panic!("expected an HCL syntax error, got {err:?}");
    };
    assert!(message.starts_with("line 3, column 3: "), "{message}");
    assert!(!message.contains('\n'), "one line: {message}");
}

#[test]
fn json_syntax_error_has_line_and_column() {
    let err = Rules::parse("{\n  \"key\": {\"a\": {\"policy\": \"read\",}}\n}").unwrap_err();
    match err {
        RuleError::Json { line, column, .. } => {
            assert_eq!(line, 2);
            assert!(column > 20, "column {column}");
        }
        other => panic!("expected a JSON syntax error, got {other:?}"),
    }
    let text = err_text("{\"key\": ");
    assert!(
        text.starts_with("invalid JSON rules at line 1, column 8: "),
        "{text}"
    );
    assert!(
        !text.contains(" at line 1 column"),
        "position said once: {text}"
    );
}

fn err_text(text: &str) -> String {
    Rules::parse(text).unwrap_err().to_string()
}

#[test]
fn over_size_is_rejected_before_parsing() {
    let mut text = String::from("key_prefix \"\" { policy = \"read\" }\n");
    while text.len() <= MAX_RULES_BYTES {
        text.push_str("# padding padding padding padding padding padding padding\n");
    }
    match Rules::parse(&text) {
        Err(RuleError::TooLarge { size, limit }) => {
            assert_eq!(size, text.len());
            assert_eq!(limit, MAX_RULES_BYTES);
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

#[test]
fn too_many_rules_names_the_first_one_over() {
    let text: String = (0..=MAX_RULES)
        .map(|i| format!("key \"k{i}\" {{ policy = \"read\" }}\n"))
        .collect();
    assert!(
        text.len() <= MAX_RULES_BYTES,
        "test text must fit the size limit"
    );
    match Rules::parse(&text) {
        Err(RuleError::TooManyRules { limit, path }) => {
            assert_eq!(limit, MAX_RULES);
            assert_eq!(path, format!("key \"k{MAX_RULES}\""));
        }
        other => panic!("expected TooManyRules, got {other:?}"),
    }
    let json = format!(
        "{{\"key\": {{{}}}}}",
        (0..=MAX_RULES)
            .map(|i| format!("\"k{i}\": {{\"policy\": \"read\"}}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    assert!(matches!(
        Rules::parse(&json),
        Err(RuleError::TooManyRules { .. })
    ));
}

#[test]
fn deep_nesting_is_rejected_with_position() {
    for text in [
        format!("key \"a\" {{ policy = {}", "[".repeat(10_000)),
        format!("{{\"key\": {}", "[".repeat(10_000)),
        format!("x = \"${{{}\"", "(".repeat(10_000)),
    ] {
        match Rules::parse(&text) {
            Err(RuleError::TooDeep {
                line: 1, column, ..
            }) => assert!(column > 1),
            other => panic!("expected TooDeep, got {other:?}"),
        }
    }
}

#[test]
fn garbage_never_panics() {
    let samples = [
        "\u{0}",
        "{{{{",
        "}}}}",
        "key",
        "key \"",
        "\"",
        "key \"a\" { policy = \"read\"",
        "[1,2]",
        "null",
        "{\"key\": null}",
        "key \"a\" { policy = <<EOT\nread\nEOT\n }",
        "operator = read",
        "\u{feff}operator = \"read\"",
    ];
    for text in samples {
        let _ = Rules::parse(text);
    }
}

#[test]
fn error_text_reads_as_one_line_saying_where_and_what() {
    assert_eq!(
        err_text(r#"key "a" { policy = "reed" }"#),
        "invalid rule at key \"a\".policy: invalid access level \"reed\" \
         (expected \"read\", \"list\", \"write\" or \"deny\")"
    );
    let hcl = err_text("key \"a\" {\n  policy = \"read\"\n  policy = \"write\"\n}\n");
    assert!(
        hcl.starts_with("invalid HCL rules: line 3, column 3: "),
        "{hcl}"
    );
    assert!(!hcl.contains('\n'), "{hcl}");
}

mod never_panics {
    //! Random text made of the language's own tokens must parse or fail cleanly. The run
    //! prints its seed; replay with `PROPTEST_RNG_SEED=<seed>`.
    use cairn_acl::Rules;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngSeed, TestRunner};

    const TOKENS: &[&str] = &[
        "key",
        "key_prefix",
        "service",
        "operator",
        "acl",
        "policy",
        "intentions",
        "=",
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"",
        "\"read\"",
        "\"list\"",
        "\"deny\"",
        "\"a/\"",
        "\"\"",
        " ",
        "\n",
        "\\",
        "${",
        "#",
        "//",
        "/*",
        "*/",
        "<<EOT\n",
        "EOT\n",
        "é",
        "\u{0}",
        "1",
        "true",
        "null",
    ];

    #[test]
    fn token_soup_parses_or_fails_cleanly() {
        let seed = std::env::var("PROPTEST_RNG_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            });
        println!("seed {seed} (replay: PROPTEST_RNG_SEED={seed} cargo test -p cairn-acl --test parse never_panics)");
        let config = Config {
            cases: 2000,
            rng_seed: RngSeed::Fixed(seed),
            failure_persistence: None,
            ..Config::default()
        };
        let soup = proptest::collection::vec(proptest::sample::select(TOKENS), 0..40)
            .prop_map(|tokens| tokens.concat());
        let result = TestRunner::new(config).run(&soup, |text| {
            // Either outcome is fine; the property is that it returns at all.
            let outcome = std::panic::catch_unwind(|| Rules::parse(&text));
            prop_assert!(outcome.is_ok(), "panicked on {:?}", text);
            Ok(())
        });
        if let Err(err) = result {
            panic!("seed {seed}: {err}");
        }
    }
}
