//! Unit tests of the ACL tables, driven through `apply` as Raft drives them.

use cairn_acl::{ANONYMOUS_TOKEN_ID, GLOBAL_MANAGEMENT_POLICY_ID};

use crate::{
    AclBootstrap, AclLink, AclPolicy, AclRole, AclToken, ApplyError, Command, Outcome,
    ServiceIdentity, State,
};

fn token(accessor: &str, secret: &str) -> AclToken {
    AclToken {
        accessor_id: accessor.into(),
        secret_id: secret.into(),
        ..Default::default()
    }
}

fn link(id: &str) -> AclLink {
    AclLink {
        id: id.into(),
        name: String::new(),
    }
}

fn bootstrap(st: &mut State, idx: u64, accessor: &str, secret: &str, initial: bool) -> Outcome {
    st.apply(
        idx,
        &Command::AclBootstrap(AclBootstrap {
            token: token(accessor, secret),
            initial,
        }),
    )
}

fn policy(id: &str, name: &str) -> AclPolicy {
    AclPolicy {
        id: id.into(),
        name: name.into(),
        rules: r#"key_prefix "app/" { policy = "write" }"#.into(),
        ..Default::default()
    }
}

fn set_policy(st: &mut State, idx: u64, p: AclPolicy, create: bool) -> Outcome {
    st.apply(idx, &Command::AclPolicySet { policy: p, create })
}

fn set_token(st: &mut State, idx: u64, t: AclToken, create: bool) -> Outcome {
    st.apply(idx, &Command::AclTokenSet { token: t, create })
}

#[test]
fn bootstrap_creates_builtins_once_and_reports_the_reset_index() {
    let mut st = State::new();
    let out = bootstrap(&mut st, 5, "acc-1", "sec-1", false);
    let Outcome::AclToken(t) = out else {
        panic!("{out:?}")
    };
    assert_eq!(t.policies.len(), 1);
    assert_eq!(t.policies[0].id, GLOBAL_MANAGEMENT_POLICY_ID);
    assert_eq!(t.policies[0].name, "global-management");
    assert_eq!((t.create_index, t.modify_index), (5, 5));
    assert!(st.acl_policy(GLOBAL_MANAGEMENT_POLICY_ID).0.is_some());
    let anon = st.acl_token(ANONYMOUS_TOKEN_ID).0.expect("anonymous token");
    assert_eq!(anon.secret_id, "anonymous");
    assert_eq!(st.acl_bootstrap_index(), Some(5));
    assert_eq!(
        bootstrap(&mut st, 6, "acc-2", "sec-2", false),
        Outcome::Error(ApplyError::AclBootstrapDone(5))
    );
    assert_eq!(
        ApplyError::AclBootstrapDone(5).to_string(),
        "ACL bootstrap no longer allowed (reset index: 5)"
    );
    assert!(st.acl_token("acc-2").0.is_none());
}

#[test]
fn initial_management_bootstraps_and_is_idempotent() {
    let mut st = State::new();
    assert!(matches!(
        bootstrap(&mut st, 1, "acc-1", "root", true),
        Outcome::AclToken(_)
    ));
    // The leader proposes it again on every new term: nothing changes.
    assert!(matches!(
        bootstrap(&mut st, 2, "acc-other", "root", true),
        Outcome::AclToken(t) if t.accessor_id == "acc-1"
    ));
    assert_eq!(st.acl_tokens().0.len(), 2, "management + anonymous");
    assert_eq!(
        bootstrap(&mut st, 3, "acc-3", "s", false),
        Outcome::Error(ApplyError::AclBootstrapDone(1))
    );
}

#[test]
fn token_create_update_delete() {
    let mut st = State::new();
    bootstrap(&mut st, 1, "m", "root", true);
    assert!(matches!(
        set_token(&mut st, 2, token("t1", "s1"), true),
        Outcome::AclToken(_)
    ));
    assert!(
        matches!(
            set_token(&mut st, 3, token("t1", "s9"), true),
            Outcome::Error(_)
        ),
        "an AccessorID in use cannot be created again"
    );
    assert!(
        matches!(
            set_token(&mut st, 3, token("t2", "s1"), true),
            Outcome::Error(_)
        ),
        "a SecretID in use cannot be reused"
    );
    assert!(matches!(
        set_token(&mut st, 3, token("nope", ""), false),
        Outcome::Error(ApplyError::AclNotFound(_))
    ));
    // An update without a secret keeps it, and keeps CreateIndex.
    let mut upd = token("t1", "");
    upd.description = "changed".into();
    let Outcome::AclToken(t) = set_token(&mut st, 4, upd, false) else {
        panic!()
    };
    assert_eq!(
        (t.secret_id.as_str(), t.create_index, t.modify_index),
        ("s1", 2, 4)
    );
    assert_eq!(st.acl_token_by_secret("s1").unwrap().description, "changed");
    let mut bad = token("t1", "other");
    bad.description = "x".into();
    assert!(matches!(
        set_token(&mut st, 5, bad, false),
        Outcome::Error(_)
    ));
    assert_eq!(
        st.apply(
            6,
            &Command::AclTokenDelete {
                accessor_id: "t1".into()
            }
        ),
        Outcome::Bool(true)
    );
    assert!(st.acl_token_by_secret("s1").is_none());
    assert_eq!(
        st.apply(
            7,
            &Command::AclTokenDelete {
                accessor_id: "t1".into()
            }
        ),
        Outcome::Bool(false)
    );
    assert!(matches!(
        st.apply(
            8,
            &Command::AclTokenDelete {
                accessor_id: ANONYMOUS_TOKEN_ID.into()
            }
        ),
        Outcome::Error(_)
    ));
    assert_eq!(
        st.acl_token("t1").1,
        6,
        "the delete moved the table index, the no-op did not"
    );
}

#[test]
fn policy_names_are_unique_and_links_must_exist() {
    let mut st = State::new();
    bootstrap(&mut st, 1, "m", "root", true);
    assert!(matches!(
        set_policy(&mut st, 2, policy("p1", "apps"), true),
        Outcome::AclPolicy(_)
    ));
    assert!(matches!(
        set_policy(&mut st, 3, policy("p2", "APPS"), true),
        Outcome::Error(_)
    ));
    assert_eq!(st.acl_policy_by_name("Apps").0.unwrap().id, "p1");
    let mut t = token("t", "s");
    t.policies = vec![link("p-missing")];
    assert!(matches!(
        set_token(&mut st, 4, t.clone(), true),
        Outcome::Error(_)
    ));
    t.policies = vec![link("p1")];
    let Outcome::AclToken(stored) = set_token(&mut st, 5, t, true) else {
        panic!()
    };
    assert_eq!(stored.policies[0].name, "apps", "names are filled in");
    // Renaming the policy shows in the token's link.
    let Outcome::AclPolicy(p) = set_policy(&mut st, 6, policy("p1", "renamed"), false) else {
        panic!()
    };
    assert_eq!((p.create_index, p.modify_index), (2, 6));
    assert_eq!(st.acl_token("t").0.unwrap().policies[0].name, "renamed");
}

#[test]
fn a_policy_in_use_may_be_deleted_and_its_links_dangle() {
    let mut st = State::new();
    bootstrap(&mut st, 1, "m", "root", true);
    set_policy(&mut st, 2, policy("p1", "apps"), true);
    st.apply(
        3,
        &Command::AclRoleSet {
            role: AclRole {
                id: "r1".into(),
                name: "role".into(),
                policies: vec![link("p1")],
                service_identities: vec![ServiceIdentity {
                    service_name: "web".into(),
                    datacenters: vec![],
                }],
                ..Default::default()
            },
            create: true,
        },
    );
    let mut t = token("t", "s");
    t.policies = vec![link("p1")];
    t.roles = vec![link("r1")];
    set_token(&mut st, 4, t, true);
    let r = st.acl_resolve("s").unwrap();
    assert_eq!(r.policies.len(), 1, "the same policy twice counts once");
    assert_eq!(r.service_identities.len(), 1, "the role's identity counts");
    assert_eq!(
        st.apply(5, &Command::AclPolicyDelete { id: "p1".into() }),
        Outcome::Bool(true)
    );
    assert!(st.acl_token("t").0.unwrap().policies.is_empty());
    assert!(st.acl_role("r1").0.unwrap().policies.is_empty());
    assert!(st.acl_resolve("s").unwrap().policies.is_empty());
    assert!(matches!(
        st.apply(
            6,
            &Command::AclPolicyDelete {
                id: GLOBAL_MANAGEMENT_POLICY_ID.into()
            }
        ),
        Outcome::Error(_)
    ));
    assert_eq!(
        st.apply(7, &Command::AclRoleDelete { id: "r1".into() }),
        Outcome::Bool(true)
    );
    assert!(st.acl_token("t").0.unwrap().roles.is_empty());
    assert!(st.acl_resolve("s").unwrap().service_identities.is_empty());
    assert!(st.acl_resolve("unknown").is_none());
}

#[test]
fn global_management_rules_cannot_change() {
    let mut st = State::new();
    bootstrap(&mut st, 1, "m", "root", true);
    let mut gm = st
        .acl_policy(GLOBAL_MANAGEMENT_POLICY_ID)
        .0
        .unwrap()
        .clone();
    gm.description = "ours".into();
    assert!(matches!(
        set_policy(&mut st, 2, gm.clone(), false),
        Outcome::AclPolicy(_)
    ));
    gm.rules = "acl = \"read\"".into();
    assert!(matches!(
        set_policy(&mut st, 3, gm, false),
        Outcome::Error(_)
    ));
}

#[test]
fn expired_tokens_are_reaped() {
    let mut st = State::new();
    bootstrap(&mut st, 1, "m", "root", true);
    let mut t = token("t", "s");
    t.expiration_ms = Some(1_000);
    set_token(&mut st, 2, t, true);
    assert!(!st.acl_token_by_secret("s").unwrap().expired_at(999));
    assert_eq!(
        st.apply(3, &Command::AclTokenReap { now_ms: 999 }),
        Outcome::Bool(false)
    );
    assert_eq!(
        st.apply(4, &Command::AclTokenReap { now_ms: 1_000 }),
        Outcome::Bool(true)
    );
    assert!(st.acl_token_by_secret("s").is_none());
    assert!(st.acl_token_by_secret("root").is_some());
}

#[test]
fn acl_tables_survive_a_restore_and_indexes_move_forward() {
    let mut snap = State::new();
    bootstrap(&mut snap, 1, "m", "root", true);
    set_policy(&mut snap, 2, policy("p1", "apps"), true);
    let json = serde_json::to_vec(&snap).unwrap();
    let decoded: State = serde_json::from_slice(&json).unwrap();
    assert_eq!(decoded, snap);
    let mut live = State::new();
    for i in 1..=10 {
        live.apply(i, &Command::Noop);
    }
    live.apply(
        11,
        &Command::Restore {
            state: Box::new(decoded),
        },
    );
    assert_eq!(live.acl_policy("p1").0.unwrap().name, "apps");
    assert!(live.acl_token_by_secret("root").is_some());
    assert_eq!(live.acl_bootstrap_index(), Some(1));
    assert!(live.acl_policies().1 >= 11);
    assert!(live.acl_tokens().1 >= 11);
}
