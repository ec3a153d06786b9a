//! The authorizer against a brute-force reference, on random rule sets and names.
//!
//! The reference scans every rule on every check and spells Consul's semantics out plainly
//! (group rules by name and form, merge, pick exact else longest prefix), sharing no code
//! with the authorizer's indexed tables. Names come from a tiny alphabet (with a two-byte
//! character) so prefixes collide often.
//!
//! The run prints its seed; replay with `PROPTEST_RNG_SEED=<seed> cargo test -p cairn-acl
//! --test reference`.

use cairn_acl::AccessLevel::{self, Deny, List, Read, Write};
use cairn_acl::{Authorizer, DefaultPolicy, Rule, Rules, ScalarKind, SegmentKind};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestRunner};

fn name() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![Just('a'), Just('b'), Just('/'), Just('é')],
        0..4,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

fn level(list: bool) -> BoxedStrategy<AccessLevel> {
    if list {
        prop_oneof![Just(Deny), Just(Read), Just(List), Just(Write)].boxed()
    } else {
        prop_oneof![Just(Deny), Just(Read), Just(Write)].boxed()
    }
}

fn rule() -> impl Strategy<Value = Rule> {
    let kind = prop_oneof![
        Just(SegmentKind::Key),
        Just(SegmentKind::Service),
        Just(SegmentKind::Node)
    ];
    kind.prop_flat_map(|kind| {
        let intentions = if kind == SegmentKind::Service {
            proptest::option::of(level(false)).boxed()
        } else {
            Just(None).boxed()
        };
        (name(), any::<bool>(), level(kind.allows_list()), intentions).prop_map(
            move |(name, prefix, access, intentions)| Rule {
                kind,
                name,
                prefix,
                access,
                intentions,
            },
        )
    })
}

fn policy() -> impl Strategy<Value = Rules> {
    let scalars = proptest::collection::vec(proptest::option::of(level(false)), 5);
    (proptest::collection::vec(rule(), 0..8), scalars).prop_map(|(rules, scalars)| {
        let mut out = Rules::new();
        rules.into_iter().for_each(|r| out.push(r));
        for (kind, access) in ScalarKind::ALL.into_iter().zip(scalars) {
            if let Some(access) = access {
                out.set_scalar(kind, access);
            }
        }
        out
    })
}

// ---------- the reference ----------

fn merged(levels: impl Iterator<Item = AccessLevel>) -> Option<AccessLevel> {
    let all: Vec<AccessLevel> = levels.collect();
    [Deny, Write, List, Read]
        .into_iter()
        .find(|l| all.contains(l))
}

fn grants(rule: AccessLevel, wanted: AccessLevel) -> bool {
    match wanted {
        Read => [Read, List, Write].contains(&rule),
        List => [List, Write].contains(&rule),
        Write => rule == Write,
        Deny => false,
    }
}

/// (name, prefix, level) rows of one table: service intentions are a table of their own.
fn rows(
    policies: &[Rules],
    kind: SegmentKind,
    intentions: bool,
) -> Vec<(String, bool, AccessLevel)> {
    policies
        .iter()
        .flat_map(|p| p.rules())
        .filter(|r| r.kind == kind)
        .map(|r| {
            let level = if intentions {
                r.intentions
                    .unwrap_or(if r.access == Deny { Deny } else { Read })
            } else {
                r.access
            };
            (r.name.clone(), r.prefix, level)
        })
        .collect()
}

fn governing(rows: &[(String, bool, AccessLevel)], name: &str) -> Option<AccessLevel> {
    let exact = merged(rows.iter().filter(|r| !r.1 && r.0 == name).map(|r| r.2));
    exact.or_else(|| covering(rows, name))
}

fn covering(rows: &[(String, bool, AccessLevel)], name: &str) -> Option<AccessLevel> {
    let longest = rows
        .iter()
        .filter(|r| r.1 && name.starts_with(r.0.as_str()))
        .map(|r| r.0.len())
        .max()?;
    merged(
        rows.iter()
            .filter(|r| r.1 && r.0.len() == longest && name.starts_with(r.0.as_str()))
            .map(|r| r.2),
    )
}

fn reference_named(
    rows: &[(String, bool, AccessLevel)],
    name: &str,
    wanted: AccessLevel,
    default: DefaultPolicy,
) -> bool {
    match governing(rows, name) {
        Some(level) => grants(level, wanted),
        None => default == DefaultPolicy::Allow,
    }
}

fn reference_write_prefix(
    rows: &[(String, bool, AccessLevel)],
    prefix: &str,
    default: DefaultPolicy,
) -> bool {
    let cover = covering(rows, prefix);
    if cover.is_some_and(|l| l != Write) {
        return false;
    }
    // every (name, form) group at or under the prefix, merged, must be write
    let under_not_write = rows.iter().filter(|r| r.0.starts_with(prefix)).any(|r| {
        merged(
            rows.iter()
                .filter(|o| o.0 == r.0 && o.1 == r.1)
                .map(|o| o.2),
        ) != Some(Write)
    });
    if under_not_write {
        return false;
    }
    cover.is_some() || default == DefaultPolicy::Allow
}

/// Whole-table checks: `all` (every rule grants) or any (some rule grants); a `""` prefix
/// rule makes the answer definite, otherwise the default policy decides.
fn reference_whole(
    rows: &[(String, bool, AccessLevel)],
    wanted: AccessLevel,
    all: bool,
    default: DefaultPolicy,
) -> bool {
    let has_root = rows.iter().any(|r| r.1 && r.0.is_empty());
    let fallback = if has_root {
        all
    } else {
        default == DefaultPolicy::Allow
    };
    // group by (name, form) and merge, as the policies would be
    let merged_levels: Vec<AccessLevel> = rows
        .iter()
        .map(|r| {
            merged(
                rows.iter()
                    .filter(|o| o.0 == r.0 && o.1 == r.1)
                    .map(|o| o.2),
            )
            .unwrap()
        })
        .collect();
    if all {
        !merged_levels.iter().any(|&l| !grants(l, wanted)) && fallback
    } else {
        merged_levels.iter().any(|&l| grants(l, wanted)) || fallback
    }
}

fn reference_scalar(
    policies: &[Rules],
    kind: ScalarKind,
    wanted: AccessLevel,
    default: DefaultPolicy,
) -> bool {
    let of = |k: ScalarKind| merged(policies.iter().filter_map(|p| p.scalar(k)));
    let rule = match kind {
        ScalarKind::Mesh | ScalarKind::Peering => of(kind).or(of(ScalarKind::Operator)),
        _ => of(kind),
    };
    match rule {
        Some(level) => grants(level, wanted),
        None => kind != ScalarKind::Acl && default == DefaultPolicy::Allow,
    }
}

// ---------- the comparison ----------

fn compare(
    policies: &[Rules],
    default: DefaultPolicy,
    names: &[String],
) -> Result<(), TestCaseError> {
    let authz = Authorizer::new(policies, default);
    let keys = rows(policies, SegmentKind::Key, false);
    let services = rows(policies, SegmentKind::Service, false);
    let intentions = rows(policies, SegmentKind::Service, true);
    let nodes = rows(policies, SegmentKind::Node, false);
    for n in names {
        let n = n.as_str();
        let pairs = [
            (
                "key_read",
                authz.key_read(n),
                reference_named(&keys, n, Read, default),
            ),
            (
                "key_list",
                authz.key_list(n),
                reference_named(&keys, n, List, default),
            ),
            (
                "key_write",
                authz.key_write(n),
                reference_named(&keys, n, Write, default),
            ),
            (
                "key_write_prefix",
                authz.key_write_prefix(n),
                reference_write_prefix(&keys, n, default),
            ),
            (
                "service_read",
                authz.service_read(n),
                reference_named(&services, n, Read, default),
            ),
            (
                "service_write",
                authz.service_write(n),
                reference_named(&services, n, Write, default),
            ),
            (
                "intention_read",
                authz.intention_read(n),
                reference_named(&intentions, n, Read, default),
            ),
            (
                "intention_write",
                authz.intention_write(n),
                reference_named(&intentions, n, Write, default),
            ),
            (
                "node_read",
                authz.node_read(n),
                reference_named(&nodes, n, Read, default),
            ),
            (
                "node_write",
                authz.node_write(n),
                reference_named(&nodes, n, Write, default),
            ),
        ];
        for (check, got, want) in pairs {
            prop_assert_eq!(got.is_allow(), want, "{}({:?})", check, n);
        }
    }
    let wholes = [
        (
            "service_read_all",
            authz.service_read_all(),
            reference_whole(&services, Read, true, default),
        ),
        (
            "service_write_any",
            authz.service_write_any(),
            reference_whole(&services, Write, false, default),
        ),
        (
            "node_read_all",
            authz.node_read_all(),
            reference_whole(&nodes, Read, true, default),
        ),
        (
            "intention_read(*)",
            authz.intention_read("*"),
            reference_whole(&intentions, Read, false, default),
        ),
        (
            "intention_write(*)",
            authz.intention_write("*"),
            reference_whole(&intentions, Write, true, default),
        ),
    ];
    for (check, got, want) in wholes {
        prop_assert_eq!(got.is_allow(), want, "{}", check);
    }
    let scalars = [
        (
            "operator_read",
            authz.operator_read(),
            ScalarKind::Operator,
            Read,
        ),
        (
            "operator_write",
            authz.operator_write(),
            ScalarKind::Operator,
            Write,
        ),
        ("acl_read", authz.acl_read(), ScalarKind::Acl, Read),
        ("acl_write", authz.acl_write(), ScalarKind::Acl, Write),
        (
            "keyring_write",
            authz.keyring_write(),
            ScalarKind::Keyring,
            Write,
        ),
        ("mesh_read", authz.mesh_read(), ScalarKind::Mesh, Read),
        ("mesh_write", authz.mesh_write(), ScalarKind::Mesh, Write),
        (
            "peering_write",
            authz.peering_write(),
            ScalarKind::Peering,
            Write,
        ),
    ];
    for (check, got, kind, wanted) in scalars {
        prop_assert_eq!(
            got.is_allow(),
            reference_scalar(policies, kind, wanted, default),
            "{}",
            check
        );
    }
    Ok(())
}

fn seed() -> u64 {
    match std::env::var("PROPTEST_RNG_SEED") {
        Ok(text) => text.parse().expect("PROPTEST_RNG_SEED must be a u64"),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
    }
}

#[test]
fn authorizer_matches_brute_force_reference() {
    let seed = seed();
    println!(
        "seed {seed} (replay: PROPTEST_RNG_SEED={seed} cargo test -p cairn-acl --test reference)"
    );
    let config = Config {
        cases: 1000,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..Config::default()
    };
    let default = prop_oneof![Just(DefaultPolicy::Allow), Just(DefaultPolicy::Deny)];
    let strategy = (
        proptest::collection::vec(policy(), 0..4),
        default,
        proptest::collection::vec(name(), 1..16),
    );
    let result = TestRunner::new(config).run(&strategy, |(policies, default, names)| {
        compare(&policies, default, &names)
    });
    if let Err(err) = result {
        panic!("seed {seed}: {err}");
    }
}
