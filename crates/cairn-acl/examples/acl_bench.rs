//! Rough cost of parsing a large policy and of single checks against it.
//!
//! `cargo run --release -p cairn-acl --example acl_bench` prints the time to parse a policy
//! near the size limit, to compile it, and the mean time per check.

use cairn_acl::{Authorizer, DefaultPolicy, Rules, MAX_RULES, MAX_RULES_BYTES};
use std::hint::black_box;
use std::time::Instant;

fn main() {
    // Mixed exact and prefix rules under a few hundred top-level prefixes.
    let mut text = String::new();
    let mut count = 0;
    while count < MAX_RULES {
        let line = match count % 4 {
            0 => format!("key_prefix \"app{}/\" {{ policy = \"read\" }}\n", count / 4),
            1 => format!("key \"app{}/config\" {{ policy = \"write\" }}\n", count / 4),
            2 => format!(
                "service_prefix \"svc{}-\" {{ policy = \"read\" }}\n",
                count / 4
            ),
            _ => format!("node \"node-{}\" {{ policy = \"write\" }}\n", count / 4),
        };
        if text.len() + line.len() > MAX_RULES_BYTES {
            break;
        }
        text.push_str(&line);
        count += 1;
    }
    let started = Instant::now();
    let rules = Rules::parse(&text).expect("benchmark policy parses");
    let parsed = started.elapsed();
    let started = Instant::now();
    let authz = Authorizer::new([&rules], DefaultPolicy::Deny);
    let compiled = started.elapsed();

    let keys: Vec<String> = (0..1000)
        .map(|i| format!("app{}/some/deeper/key/{i}", i % (count / 4)))
        .collect();
    let rounds = 200;
    let started = Instant::now();
    let mut allowed = 0usize;
    for _ in 0..rounds {
        for key in &keys {
            allowed += black_box(authz.key_read(key)).is_allow() as usize;
            allowed += black_box(authz.service_read(key)).is_allow() as usize;
        }
    }
    let checks = rounds * keys.len() * 2;
    let per_check = started.elapsed().as_nanos() as f64 / checks as f64;
    println!(
        "policy: {} bytes, {} rules; parse {:?}, compile {:?}; {:.0} ns per check ({} checks, {} allowed)",
        text.len(),
        rules.len(),
        parsed,
        compiled,
        per_check,
        checks,
        allowed
    );
}
