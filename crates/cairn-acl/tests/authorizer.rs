//! The authorizer's semantics, case by case: every rule kind, prefix precedence, merging
//! across policies, list, write-implies-read, the default policy, built-ins and identities,
//! and Consul's permission-denied text.

use cairn_acl::{
    builtin_policy_rules, AccessLevel, Authorizer, Decision, DefaultPolicy, Denied, Permission,
    PermissionDenied, Resource, Rules, ANONYMOUS_TOKEN_ID, GLOBAL_MANAGEMENT_POLICY_ID,
};

fn authz(texts: &[&str], default: DefaultPolicy) -> Authorizer {
    let rules: Vec<Rules> = texts
        .iter()
        .map(|t| Rules::parse(t).unwrap_or_else(|e| panic!("{t:?}: {e}")))
        .collect();
    Authorizer::new(&rules, default)
}

type Check = fn(&Authorizer, &str) -> Decision;

/// Every named check, by name, for the tables below.
fn check(name: &str) -> Check {
    match name {
        "key_read" => |a, n| a.key_read(n),
        "key_list" => |a, n| a.key_list(n),
        "key_write" => |a, n| a.key_write(n),
        "key_write_prefix" => |a, n| a.key_write_prefix(n),
        "service_read" => |a, n| a.service_read(n),
        "service_write" => |a, n| a.service_write(n),
        "intention_read" => |a, n| a.intention_read(n),
        "intention_write" => |a, n| a.intention_write(n),
        "node_read" => |a, n| a.node_read(n),
        "node_write" => |a, n| a.node_write(n),
        "session_read" => |a, n| a.session_read(n),
        "session_write" => |a, n| a.session_write(n),
        "agent_read" => |a, n| a.agent_read(n),
        "agent_write" => |a, n| a.agent_write(n),
        "event_read" => |a, n| a.event_read(n),
        "event_write" => |a, n| a.event_write(n),
        "query_read" => |a, n| a.query_read(n),
        "query_write" => |a, n| a.query_write(n),
        "service_read_all" => |a, _| a.service_read_all(),
        "service_write_any" => |a, _| a.service_write_any(),
        "node_read_all" => |a, _| a.node_read_all(),
        "snapshot" => |a, _| a.snapshot(),
        "operator_read" => |a, _| a.operator_read(),
        "operator_write" => |a, _| a.operator_write(),
        "acl_read" => |a, _| a.acl_read(),
        "acl_write" => |a, _| a.acl_write(),
        "keyring_read" => |a, _| a.keyring_read(),
        "keyring_write" => |a, _| a.keyring_write(),
        "mesh_read" => |a, _| a.mesh_read(),
        "mesh_write" => |a, _| a.mesh_write(),
        "peering_read" => |a, _| a.peering_read(),
        "peering_write" => |a, _| a.peering_write(),
        other => panic!("no check {other}"),
    }
}

const A: bool = true;
const D: bool = false;

/// (policies, default policy, check, resource name, allowed?)
type Case = (
    &'static [&'static str],
    DefaultPolicy,
    &'static str,
    &'static str,
    bool,
);

use DefaultPolicy::{Allow as DA, Deny as DD};

const CASES: &[Case] = &[
    // --- every named kind: exact rule, read vs write, other names fall to the default
    (&[r#"key "a" { policy = "read" }"#], DD, "key_read", "a", A),
    (&[r#"key "a" { policy = "read" }"#], DD, "key_write", "a", D),
    (&[r#"key "a" { policy = "read" }"#], DD, "key_read", "ab", D),
    (&[r#"key "a" { policy = "read" }"#], DA, "key_read", "ab", A),
    (&[r#"service "web" { policy = "write" }"#], DD, "service_write", "web", A),
    (&[r#"service "web" { policy = "read" }"#], DD, "service_write", "web", D),
    (&[r#"service "web" { policy = "read" }"#], DD, "service_read", "web2", D),
    (&[r#"node "n1" { policy = "write" }"#], DD, "node_write", "n1", A),
    (&[r#"node "n1" { policy = "read" }"#], DD, "node_write", "n1", D),
    (&[r#"node "n1" { policy = "deny" }"#], DA, "node_read", "n1", D),
    (&[r#"session "n1" { policy = "write" }"#], DD, "session_write", "n1", A),
    (&[r#"session "n1" { policy = "read" }"#], DD, "session_write", "n1", D),
    (&[r#"session_prefix "" { policy = "read" }"#], DD, "session_read", "any", A),
    (&[r#"agent "n1" { policy = "read" }"#], DD, "agent_read", "n1", A),
    (&[r#"agent "n1" { policy = "read" }"#], DD, "agent_write", "n1", D),
    (&[r#"agent_prefix "n" { policy = "write" }"#], DD, "agent_write", "n2", A),
    (&[r#"event "deploy" { policy = "write" }"#], DD, "event_write", "deploy", A),
    (&[r#"event_prefix "" { policy = "read" }"#], DD, "event_write", "deploy", D),
    (&[r#"event_prefix "" { policy = "read" }"#], DD, "event_read", "deploy", A),
    (&[r#"query "q" { policy = "write" }"#], DD, "query_write", "q", A),
    (&[r#"query_prefix "" { policy = "read" }"#], DD, "query_write", "q", D),
    (&[r#"query_prefix "" { policy = "read" }"#], DD, "query_read", "q", A),
    // --- scalar kinds
    (&[r#"operator = "read""#], DD, "operator_read", "", A),
    (&[r#"operator = "read""#], DD, "operator_write", "", D),
    (&[r#"operator = "write""#], DD, "operator_write", "", A),
    (&[r#"operator = "deny""#], DA, "operator_read", "", D),
    (&[r#"acl = "read""#], DD, "acl_read", "", A),
    (&[r#"acl = "read""#], DD, "acl_write", "", D),
    (&[r#"acl = "write""#], DD, "acl_write", "", A),
    (&[r#"keyring = "write""#], DD, "keyring_read", "", A),
    (&[r#"keyring = "read""#], DD, "keyring_write", "", D),
    (&[r#"mesh = "write""#], DD, "mesh_write", "", A),
    (&[r#"peering = "read""#], DD, "peering_read", "", A),
    (&[r#"peering = "read""#], DD, "peering_write", "", D),
    // mesh and peering fall back to operator; their own rule beats it
    (&[r#"operator = "write""#], DD, "mesh_write", "", A),
    (&[r#"operator = "read""#], DD, "peering_write", "", D),
    (&[r#"operator = "read""#], DD, "peering_read", "", A),
    (&["operator = \"write\"\nmesh = \"read\""], DD, "mesh_write", "", D),
    (&["operator = \"deny\"\npeering = \"write\""], DD, "peering_write", "", A),
    // --- the default policy; ACL management is never granted by the default alone
    (&[], DA, "key_write", "x", A),
    (&[], DD, "key_read", "x", D),
    (&[], DA, "operator_write", "", A),
    (&[], DD, "operator_read", "", D),
    (&[], DA, "keyring_write", "", A),
    (&[], DA, "mesh_write", "", A),
    (&[], DA, "acl_read", "", D),
    (&[], DA, "acl_write", "", D),
    (&[], DA, "intention_write", "web", A),
    (&[], DD, "intention_read", "web", D),
    // --- prefix precedence: exact beats prefix, longest prefix wins, "" matches all
    (&["key \"a/b\" { policy = \"read\" }\nkey_prefix \"a/b\" { policy = \"deny\" }"], DD, "key_read", "a/b", A),
    (&["key \"a/b\" { policy = \"read\" }\nkey_prefix \"a/b\" { policy = \"deny\" }"], DD, "key_read", "a/bc", D),
    (&["key \"a/b\" { policy = \"deny\" }\nkey_prefix \"a/\" { policy = \"write\" }"], DD, "key_read", "a/b", D),
    (&["key \"a/b\" { policy = \"deny\" }\nkey_prefix \"a/\" { policy = \"write\" }"], DD, "key_write", "a/c", A),
    (&["key_prefix \"a/\" { policy = \"write\" }\nkey_prefix \"a/secret/\" { policy = \"deny\" }"], DD, "key_read", "a/secret/x", D),
    (&["key_prefix \"a/\" { policy = \"write\" }\nkey_prefix \"a/secret/\" { policy = \"deny\" }"], DD, "key_write", "a/secretx", A),
    (&["key_prefix \"a/\" { policy = \"deny\" }\nkey_prefix \"a/pub/\" { policy = \"read\" }"], DA, "key_read", "a/pub/x", A),
    (&["key_prefix \"a/\" { policy = \"deny\" }\nkey_prefix \"a/pub/\" { policy = \"read\" }"], DA, "key_read", "a/x", D),
    (&[r#"key_prefix "" { policy = "read" }"#], DD, "key_read", "", A),
    (&[r#"key_prefix "" { policy = "read" }"#], DD, "key_read", "anything/at/all", A),
    (&[r#"key_prefix "" { policy = "deny" }"#], DA, "key_read", "x", D),
    (&["service_prefix \"\" { policy = \"read\" }\nservice_prefix \"api-\" { policy = \"write\" }"], DD, "service_write", "api-v2", A),
    (&["service_prefix \"\" { policy = \"read\" }\nservice_prefix \"api-\" { policy = \"write\" }"], DD, "service_write", "api", D),
    (&["node_prefix \"\" { policy = \"write\" }\nnode \"db\" { policy = \"read\" }"], DD, "node_write", "db", D),
    (&["node_prefix \"\" { policy = \"write\" }\nnode \"db\" { policy = \"read\" }"], DD, "node_write", "db2", A),
    // --- merging across policies: same rule, deny wins; otherwise the stronger level
    (&[r#"key "a" { policy = "write" }"#, r#"key "a" { policy = "deny" }"#], DA, "key_read", "a", D),
    (&[r#"key "a" { policy = "deny" }"#, r#"key "a" { policy = "write" }"#], DA, "key_read", "a", D),
    (&[r#"key "a" { policy = "read" }"#, r#"key "a" { policy = "write" }"#], DD, "key_write", "a", A),
    (&[r#"key "a" { policy = "read" }"#, r#"key "a" { policy = "list" }"#], DD, "key_list", "a", A),
    (&[r#"key_prefix "" { policy = "deny" }"#, r#"key "a" { policy = "read" }"#], DD, "key_read", "a", A),
    (&[r#"key_prefix "" { policy = "write" }"#, r#"key_prefix "a" { policy = "read" }"#], DD, "key_write", "ab", D),
    (&[r#"operator = "write""#, r#"operator = "deny""#], DA, "operator_read", "", D),
    (&[r#"service "s" { policy = "write" }"#, r#"service "s" { policy = "deny" }"#], DA, "service_read", "s", D),
    // --- list: on keys only; write implies it; read does not
    (&[r#"key_prefix "app/" { policy = "list" }"#], DD, "key_list", "app/", A),
    (&[r#"key_prefix "app/" { policy = "list" }"#], DD, "key_read", "app/x", A),
    (&[r#"key_prefix "app/" { policy = "list" }"#], DD, "key_write", "app/x", D),
    (&[r#"key_prefix "app/" { policy = "read" }"#], DD, "key_list", "app/", D),
    (&[r#"key_prefix "app/" { policy = "write" }"#], DD, "key_list", "app/", A),
    (&[r#"key_prefix "app/" { policy = "deny" }"#], DA, "key_list", "app/", D),
    (&[r#"key "app/" { policy = "list" }"#], DD, "key_list", "app/", A),
    (&[r#"key "app/" { policy = "list" }"#], DD, "key_list", "app/x", D),
    // --- write implies read, everywhere
    (&[r#"key "k" { policy = "write" }"#], DD, "key_read", "k", A),
    (&[r#"service "s" { policy = "write" }"#], DD, "service_read", "s", A),
    (&[r#"node "n" { policy = "write" }"#], DD, "node_read", "n", A),
    (&[r#"session "n" { policy = "write" }"#], DD, "session_read", "n", A),
    (&[r#"agent "n" { policy = "write" }"#], DD, "agent_read", "n", A),
    (&[r#"event "e" { policy = "write" }"#], DD, "event_read", "e", A),
    (&[r#"query "q" { policy = "write" }"#], DD, "query_read", "q", A),
    (&[r#"operator = "write""#], DD, "operator_read", "", A),
    (&[r#"acl = "write""#], DD, "acl_read", "", A),
    (&[r#"mesh = "write""#], DD, "mesh_read", "", A),
    (&[r#"peering = "write""#], DD, "peering_read", "", A),
    // --- recursive delete: the covering prefix must be write, and nothing under it less
    (&[r#"key_prefix "a/" { policy = "write" }"#], DD, "key_write_prefix", "a/", A),
    (&[r#"key_prefix "a/" { policy = "write" }"#], DD, "key_write_prefix", "a/b/", A),
    (&[r#"key_prefix "a/" { policy = "write" }"#], DD, "key_write_prefix", "", D),
    (&[r#"key_prefix "a/" { policy = "write" }"#], DA, "key_write_prefix", "", A),
    (&[r#"key_prefix "a/" { policy = "read" }"#], DA, "key_write_prefix", "a/b", D),
    (&["key_prefix \"a/\" { policy = \"write\" }\nkey \"a/b/c\" { policy = \"deny\" }"], DD, "key_write_prefix", "a/", D),
    (&["key_prefix \"a/\" { policy = \"write\" }\nkey \"a/b/c\" { policy = \"read\" }"], DD, "key_write_prefix", "a/b", D),
    (&["key_prefix \"a/\" { policy = \"write\" }\nkey \"a/b/c\" { policy = \"deny\" }"], DD, "key_write_prefix", "a/c", A),
    (&["key_prefix \"a/\" { policy = \"write\" }\nkey_prefix \"a/x/\" { policy = \"list\" }"], DD, "key_write_prefix", "a/", D),
    (&["key_prefix \"a/\" { policy = \"write\" }\nkey_prefix \"a/x/\" { policy = \"list\" }"], DD, "key_write_prefix", "a/x/y", D),
    (&["key_prefix \"\" { policy = \"write\" }\nkey \"a\" { policy = \"deny\" }"], DD, "key_write_prefix", "ab", A),
    // an exact rule above the prefix does not cover it
    (&[r#"key "a" { policy = "deny" }"#], DA, "key_write_prefix", "a/", A),
    (&[r#"key "a" { policy = "deny" }"#], DA, "key_write_prefix", "", D),
    // --- intentions: from service rules; read/write service implies intentions read
    (&[r#"service "web" { policy = "read" }"#], DD, "intention_read", "web", A),
    (&[r#"service "web" { policy = "write" }"#], DD, "intention_read", "web", A),
    (&[r#"service "web" { policy = "write" }"#], DD, "intention_write", "web", D),
    (&[r#"service "web" { policy = "deny" }"#], DA, "intention_read", "web", D),
    (&["service \"web\" {\n policy = \"read\"\n intentions = \"write\"\n}"], DD, "intention_write", "web", A),
    (&["service_prefix \"\" {\n policy = \"write\"\n intentions = \"deny\"\n}"], DA, "intention_read", "web", D),
    (&["service_prefix \"\" {\n policy = \"deny\"\n intentions = \"read\"\n}"], DD, "intention_read", "web", A),
    (&["service_prefix \"\" {\n policy = \"deny\"\n intentions = \"read\"\n}"], DA, "service_read", "web", D),
    // --- whole-kind checks: all rules must grant, or some rule must
    (&[r#"service_prefix "" { policy = "read" }"#], DD, "service_read_all", "", A),
    (&["service_prefix \"\" { policy = \"read\" }\nservice \"db\" { policy = \"deny\" }"], DA, "service_read_all", "", D),
    (&[r#"service "web" { policy = "read" }"#], DD, "service_read_all", "", D),
    (&[r#"service "web" { policy = "read" }"#], DA, "service_read_all", "", A),
    (&[r#"service "web" { policy = "write" }"#], DD, "service_write_any", "", A),
    (&[r#"service_prefix "" { policy = "read" }"#], DA, "service_write_any", "", D),
    (&[r#"service "web" { policy = "read" }"#], DA, "service_write_any", "", A),
    (&[], DD, "service_write_any", "", D),
    (&[r#"node_prefix "" { policy = "write" }"#], DD, "node_read_all", "", A),
    (&["node_prefix \"\" { policy = \"read\" }\nnode_prefix \"x\" { policy = \"deny\" }"], DA, "node_read_all", "", D),
    (&[], DD, "intention_read", "*", D),
    (&["service \"web\" {\n policy = \"read\"\n intentions = \"read\"\n}"], DD, "intention_read", "*", A),
    (&["service \"web\" {\n policy = \"read\"\n intentions = \"write\"\n}"], DD, "intention_write", "*", D),
    (&["service_prefix \"\" {\n policy = \"read\"\n intentions = \"write\"\n}"], DD, "intention_write", "*", A),
    (&["service_prefix \"\" {\n policy = \"read\"\n intentions = \"write\"\n}\nservice \"db\" { policy = \"read\" }"], DD, "intention_write", "*", D),
    // --- snapshots need acl write, never the default alone
    (&[r#"acl = "write""#], DD, "snapshot", "", A),
    (&[r#"acl = "read""#], DA, "snapshot", "", D),
    (&[], DA, "snapshot", "", D),
];

#[test]
fn table() {
    let mut failures = Vec::new();
    for (i, (policies, default, name, resource, want)) in CASES.iter().enumerate() {
        let a = authz(policies, *default);
        let got = check(name)(&a, resource).is_allow();
        if got != *want {
            failures.push(format!(
                "case {i}: {name}({resource:?}) with {policies:?}, default {default:?}: got {got}, want {want}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Every check of every kind, for the all-granting and all-refusing cases.
const ALL_CHECKS: &[&str] = &[
    "key_read",
    "key_list",
    "key_write",
    "key_write_prefix",
    "service_read",
    "service_write",
    "intention_read",
    "intention_write",
    "node_read",
    "node_write",
    "session_read",
    "session_write",
    "agent_read",
    "agent_write",
    "event_read",
    "event_write",
    "query_read",
    "query_write",
    "operator_read",
    "operator_write",
    "acl_read",
    "acl_write",
    "keyring_read",
    "keyring_write",
    "mesh_read",
    "mesh_write",
    "peering_read",
    "peering_write",
];

#[test]
fn global_management_grants_everything() {
    let rules = builtin_policy_rules(GLOBAL_MANAGEMENT_POLICY_ID).expect("built in");
    assert!(builtin_policy_rules("00000000-0000-0000-0000-000000000009").is_none());
    for a in [Authorizer::new([&rules], DD), Authorizer::management()] {
        for name in ALL_CHECKS {
            for resource in ["", "x", "a/b/c"] {
                assert!(check(name)(&a, resource).is_allow(), "{name}({resource:?})");
            }
        }
    }
}

#[test]
fn default_deny_with_no_rules_denies_everything() {
    let a = Authorizer::default_only(DD);
    for name in ALL_CHECKS {
        assert!(!check(name)(&a, "x").is_allow(), "{name}");
    }
    assert_eq!(a.default_policy(), DD);
}

#[test]
fn service_identity_expands_to_consuls_template() {
    let a = Authorizer::new([&Rules::service_identity("web")], DD);
    assert!(a.service_write("web").is_allow());
    assert!(a.service_write("web-sidecar-proxy").is_allow());
    assert!(!a.service_write("web2").is_allow());
    assert!(!a.service_write("db").is_allow());
    assert!(a.service_read("db").is_allow());
    assert!(a.node_read("any-node").is_allow());
    assert!(!a.node_write("any-node").is_allow());
    assert!(!a.key_read("k").is_allow());
    assert!(a.intention_read("web").is_allow());
    assert!(!a.intention_write("web").is_allow());
}

#[test]
fn node_identity_expands_to_consuls_template() {
    let a = Authorizer::new([&Rules::node_identity("n1")], DD);
    assert!(a.node_write("n1").is_allow());
    assert!(!a.node_write("n2").is_allow());
    assert!(!a.node_read("n2").is_allow());
    assert!(a.service_read("any").is_allow());
    assert!(!a.service_write("any").is_allow());
}

#[test]
fn identities_and_policies_combine() {
    let deny_web = Rules::parse(r#"service "web" { policy = "deny" }"#).unwrap();
    let a = Authorizer::new([&Rules::service_identity("web"), &deny_web], DA);
    assert!(
        !a.service_read("web").is_allow(),
        "deny wins across policies"
    );
    assert!(a.service_write("web-sidecar-proxy").is_allow());
}

#[test]
fn denial_names_the_permission_and_resource() {
    let a = Authorizer::default_only(DD);
    assert_eq!(
        a.key_list("app/"),
        Decision::Deny(Denied {
            permission: Permission {
                resource: Resource::Key,
                level: AccessLevel::List
            },
            resource: Some("app/".into()),
        })
    );
    let expect = |d: Decision, perm: &str, res: Option<&str>| {
        let Decision::Deny(denied) = d else {
            panic!("expected a denial")
        };
        assert_eq!(denied.permission.to_string(), perm);
        assert_eq!(denied.resource.as_deref(), res);
    };
    expect(a.key_write_prefix("a/"), "key:write", Some("a/"));
    expect(a.service_write("web"), "service:write", Some("web"));
    expect(a.intention_read("web"), "intention:read", Some("web"));
    expect(a.node_read("n"), "node:read", Some("n"));
    expect(a.session_write("n"), "session:write", Some("n"));
    expect(a.agent_read("n"), "agent:read", Some("n"));
    expect(a.event_write("e"), "event:write", Some("e"));
    expect(a.query_read("q"), "query:read", Some("q"));
    expect(a.operator_write(), "operator:write", None);
    expect(a.acl_read(), "acl:read", None);
    expect(a.keyring_read(), "keyring:read", None);
    expect(a.mesh_write(), "mesh:write", None);
    expect(a.peering_read(), "peering:read", None);
}

#[test]
fn permission_denied_text_is_consuls() {
    let a = Authorizer::default_only(DD);
    let accessor = "0bbd0e7f-46b2-4b2d-bbb4-1b4a3b2c1d0e";
    let err = a.key_read("a/b").check(accessor).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Permission denied: token with AccessorID '0bbd0e7f-46b2-4b2d-bbb4-1b4a3b2c1d0e' \
         lacks permission 'key:read' on \"a/b\""
    );
    let err = a.operator_write().check(accessor).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Permission denied: token with AccessorID '0bbd0e7f-46b2-4b2d-bbb4-1b4a3b2c1d0e' \
         lacks permission 'operator:write'"
    );
    let err = a
        .service_write("web")
        .check(ANONYMOUS_TOKEN_ID)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Permission denied: anonymous token lacks permission 'service:write' on \"web\". \
         The anonymous token is used implicitly when a request does not specify a token."
    );
    // An empty resource name (a check on the whole keyspace) has no "on" part, as in Consul.
    let err = a.key_list("").check(accessor).unwrap_err();
    assert!(
        err.to_string().ends_with("lacks permission 'key:list'"),
        "{err}"
    );
    assert_eq!(
        err,
        PermissionDenied {
            accessor_id: accessor.into(),
            permission: Permission {
                resource: Resource::Key,
                level: AccessLevel::List
            },
            resource: Some(String::new()),
        }
    );
    assert_eq!(Authorizer::management().acl_write().check(accessor), Ok(()));
}

#[test]
fn policy_values_serialize_as_consul_spells_them() {
    assert_eq!(
        serde_json::to_string(&AccessLevel::List).unwrap(),
        "\"list\""
    );
    let d: DefaultPolicy = serde_json::from_str("\"deny\"").unwrap();
    assert_eq!(d, DD);
    assert_eq!(DefaultPolicy::parse("allow"), Some(DA));
    assert_eq!(DefaultPolicy::parse("Allow"), None);
}
