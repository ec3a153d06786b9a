//! Tokens over time: DNS with the default token unset and set, an expiring token, a
//! deleted token, and everything after all five processes restart.

use std::time::Duration;

use hickory_proto::rr::RecordType;
use reqwest::Method;
use serde_json::json;

use crate::cluster::{Cluster, NAMES, ROOT, WAIT};
use crate::common::{eventually, try_dns};

/// How many answers `name` gets from c64's DNS.
async fn answers(c: &Cluster, name: &str, qtype: RecordType) -> Option<usize> {
    let dns = c.agents[3].dns_addr().await;
    Some(try_dns(dns, name, qtype).await?.answers.len())
}

async fn set_default_token(c: &Cluster, token: &str) {
    c.set_agent_token(&c.agents[3], "default", token).await;
    // DNS answers are cached until the next Raft entry.
    c.admin(Method::PUT, "/v1/kv/other/flush", &json!(token))
        .await;
}

/// DNS through the client c64: nothing without a default token, only what the default
/// token may read with one.
pub async fn dns(c: &Cluster) {
    let web = "web.service.consul.";
    let node = "c64.node.consul.";
    for name in [web, node] {
        let n = answers(c, name, RecordType::SRV).await;
        let a = answers(c, name, RecordType::A).await;
        assert_eq!(
            (n.unwrap_or(0), a.unwrap_or(0)),
            (0, 0),
            "dns without a default token: {name} must have no answers"
        );
    }
    let near = c
        .token_with(
            "dns_near",
            "service \"web2\" {\n policy = \"read\"\n}\nnode \"c6\" {\n policy = \"read\"\n}\nnode \"c64\" {\n policy = \"deny\"\n}",
        )
        .await;
    let good = c
        .token_with(
            "dns_good",
            "service \"web\" {\n policy = \"read\"\n}\nnode \"c64\" {\n policy = \"read\"\n}",
        )
        .await;
    set_default_token(c, &near).await;
    // web2 runs on c64, which the neighbour token may not read: still nothing for web.
    eventually(
        WAIT,
        "dns with the neighbour default token answers nothing for web",
        || async {
            (answers(c, web, RecordType::SRV).await? == 0
                && answers(c, node, RecordType::A).await? == 0)
                .then_some(())
        },
    )
    .await;
    set_default_token(c, &good).await;
    eventually(
        WAIT,
        "dns with the good default token answers web and c64",
        || async {
            (answers(c, web, RecordType::SRV).await? > 0
                && answers(c, node, RecordType::A).await? > 0)
                .then_some(())
        },
    )
    .await;
    assert_eq!(
        answers(c, "web2.service.consul.", RecordType::SRV).await,
        Some(0),
        "dns with the good default token: web2 is not readable"
    );
    set_default_token(c, "").await;
}

/// Whether `secret` can read `app/x` on agent `i` (`Some(false)`: `403 ACL not found`).
async fn reads(c: &Cluster, i: usize, secret: &str) -> Option<bool> {
    let r = c
        .steady_call(
            &c.agents[i],
            Method::GET,
            "/v1/kv/app/x",
            Some(secret),
            None,
        )
        .await;
    match r.status {
        200 => Some(true),
        403 if r.text().contains("ACL not found") => Some(false),
        _ => None,
    }
}

async fn works_everywhere(c: &Cluster, step: &str, secret: &str) {
    for (i, name) in NAMES.iter().enumerate() {
        assert_eq!(
            reads(c, i, secret).await,
            Some(true),
            "{step}: the token must work on {name}"
        );
    }
}

/// Tokens kept across the restart.
pub struct Kept {
    pub plain: String,
    pub via_role: String,
    pub deleted: String,
    pub expired: String,
}

pub async fn expiry_and_delete(c: &Cluster) -> Kept {
    // A token that expires in 3 s stops working on every agent.
    let exp = c
        .admin(
            Method::PUT,
            "/v1/acl/token",
            &json!({"Policies": [{"Name": "kv_read"}], "ExpirationTTL": "3s"}),
        )
        .await;
    let created = std::time::Instant::now();
    let expired = exp["SecretID"].as_str().unwrap().to_string();
    for (i, name) in NAMES.iter().enumerate() {
        // On a starved machine the 3 s can run out while asking: only what is asked
        // well before then must still be allowed.
        let works = reads(c, i, &expired).await;
        if created.elapsed() < Duration::from_secs(2) {
            assert_eq!(
                works,
                Some(true),
                "expiring token before its time: it must work on {name}"
            );
        }
    }
    eventually(
        Duration::from_secs(20),
        "the expired token is refused on every agent",
        || async {
            for i in 0..5 {
                if reads(c, i, &expired).await? {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;

    // A token linked through a role.
    c.admin(
        Method::PUT,
        "/v1/acl/role",
        &json!({"Name": "kv-role", "Policies": [{"Name": "kv_read"}]}),
    )
    .await;
    let via_role = c
        .admin(
            Method::PUT,
            "/v1/acl/token",
            &json!({"Roles": [{"Name": "kv-role"}]}),
        )
        .await["SecretID"]
        .as_str()
        .unwrap()
        .to_string();
    works_everywhere(c, "role token", &via_role).await;
    let plain = c
        .admin(
            Method::PUT,
            "/v1/acl/token",
            &json!({"Policies": [{"Name": "kv_read"}]}),
        )
        .await["SecretID"]
        .as_str()
        .unwrap()
        .to_string();

    // A deleted token is refused by the first request after the delete, everywhere: the
    // delete is sent through the leader, a follower and a client in turn, and the first
    // requests go to all five agents at once as soon as it is acknowledged.
    let leader = c.leader().await;
    let follower = (0..3).find(|i| *i != leader).unwrap();
    let mut deleted = String::new();
    for via in [leader, follower, 4] {
        let del = c
            .admin(
                Method::PUT,
                "/v1/acl/token",
                &json!({"Policies": [{"Name": "kv_write"}]}),
            )
            .await;
        deleted = del["SecretID"].as_str().unwrap().to_string();
        let acc = del["AccessorID"].as_str().unwrap().to_string();
        works_everywhere(c, "token before its delete", &deleted).await;
        let r = c
            .call(
                &c.agents[via],
                Method::DELETE,
                &format!("/v1/acl/token/{acc}"),
                Some(ROOT),
                None,
            )
            .await;
        assert_eq!(r.status, 200, "delete the token: {}", r.text());
        let firsts = (0..5).map(|i| {
            // Alternate reads and writes: both must be refused at once.
            let (method, path, body) = if i % 2 == 0 {
                (Method::GET, "/v1/kv/app/x", None)
            } else {
                (Method::PUT, "/v1/kv/app/after-delete", Some(b"x".to_vec()))
            };
            let deleted = deleted.clone();
            async move {
                let r = c
                    .call(&c.agents[i], method.clone(), path, Some(&deleted), body)
                    .await;
                (i, method, r)
            }
        });
        for (i, method, r) in futures::future::join_all(firsts).await {
            assert!(
                r.status == 403 && r.text().contains("ACL not found"),
                "deleted token (deleted through {}): the first {method} on {} after the delete must be refused, got {} {:?}",
                NAMES[via],
                NAMES[i],
                r.status,
                r.text()
            );
        }
    }
    Kept {
        plain,
        via_role,
        deleted,
        expired,
    }
}

/// After every process restarted: what was granted still works, what was removed stays so.
pub async fn after_restart(c: &Cluster, kept: &Kept) {
    works_everywhere(c, "after restart: plain token", &kept.plain).await;
    works_everywhere(c, "after restart: role token", &kept.via_role).await;
    for (what, secret) in [("deleted", &kept.deleted), ("expired", &kept.expired)] {
        for (i, name) in NAMES.iter().enumerate() {
            assert_eq!(
                reads(c, i, secret).await,
                Some(false),
                "after restart: the {what} token must stay refused on {name}"
            );
        }
    }
    let r = c
        .call(
            &c.agents[3],
            Method::GET,
            "/v1/acl/policy/name/kv_read",
            Some(ROOT),
            None,
        )
        .await;
    assert_eq!(
        r.status,
        200,
        "after restart: the policy is still there: {}",
        r.text()
    );
}
