//! The text (`-format=pretty`) layout of ACL tokens, policies and roles, as `consul acl`
//! prints them: aligned `Field:` lines, then one indented line per linked policy, role
//! or identity.

use serde_json::Value;

/// Width of the aligned field names (`Expiration Time:` plus two spaces).
const WIDTH: usize = 18;

fn field(out: &mut String, name: &str, value: &str) {
    let label = format!("{name}:");
    let line = format!("{label:<WIDTH$}{value}");
    out.push_str(line.trim_end());
    out.push('\n');
}

fn text(v: &Value, key: &str) -> String {
    match &v[key] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// An RFC 3339 time as Go's `time.Time` prints it (`2026-11-30 12:00:00.123 +0000 UTC`).
pub fn go_time(rfc3339: &str) -> String {
    match rfc3339.strip_suffix('Z') {
        Some(t) => format!("{} +0000 UTC", t.replacen('T', " ", 1)),
        None => rfc3339.replacen('T', " ", 1),
    }
}

fn links(out: &mut String, v: &Value, key: &str, title: &str) {
    let Some(list) = v[key].as_array().filter(|a| !a.is_empty()) else {
        return;
    };
    out.push_str(&format!("{title}:\n"));
    for l in list {
        out.push_str(&format!("   {} - {}\n", text(l, "ID"), text(l, "Name")));
    }
}

fn identities(out: &mut String, v: &Value) {
    if let Some(list) = v["ServiceIdentities"].as_array().filter(|a| !a.is_empty()) {
        out.push_str("Service Identities:\n");
        for s in list {
            let dcs = match s["Datacenters"].as_array().filter(|a| !a.is_empty()) {
                Some(d) => d
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", "),
                None => "all".to_string(),
            };
            out.push_str(&format!(
                "   {} (Datacenters: {dcs})\n",
                text(s, "ServiceName")
            ));
        }
    }
    if let Some(list) = v["NodeIdentities"].as_array().filter(|a| !a.is_empty()) {
        out.push_str("Node Identities:\n");
        for n in list {
            out.push_str(&format!(
                "   {} (Datacenter: {})\n",
                text(n, "NodeName"),
                text(n, "Datacenter")
            ));
        }
    }
}

fn meta(out: &mut String, v: &Value) {
    field(out, "Hash", &text(v, "Hash"));
    field(out, "Create Index", &text(v, "CreateIndex"));
    field(out, "Modify Index", &text(v, "ModifyIndex"));
}

/// A token.
pub fn token(v: &Value, show_meta: bool) -> String {
    let mut out = String::new();
    field(&mut out, "AccessorID", &text(v, "AccessorID"));
    field(&mut out, "SecretID", &text(v, "SecretID"));
    field(&mut out, "Description", &text(v, "Description"));
    field(&mut out, "Local", &text(v, "Local"));
    field(&mut out, "Create Time", &go_time(&text(v, "CreateTime")));
    if let Some(e) = v["ExpirationTime"].as_str() {
        field(&mut out, "Expiration Time", &go_time(e));
    }
    if show_meta {
        meta(&mut out, v);
    }
    links(&mut out, v, "Policies", "Policies");
    links(&mut out, v, "Roles", "Roles");
    identities(&mut out, v);
    out
}

/// A policy (`Rules` are printed when the object has them: reads, not list entries).
pub fn policy(v: &Value, show_meta: bool) -> String {
    let mut out = String::new();
    field(&mut out, "ID", &text(v, "ID"));
    field(&mut out, "Name", &text(v, "Name"));
    field(&mut out, "Description", &text(v, "Description"));
    let dcs = v["Datacenters"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    field(&mut out, "Datacenters", &dcs);
    if show_meta {
        meta(&mut out, v);
    }
    if let Some(rules) = v["Rules"].as_str() {
        out.push_str("Rules:\n");
        out.push_str(rules);
        if !rules.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

/// A role.
pub fn role(v: &Value, show_meta: bool) -> String {
    let mut out = String::new();
    field(&mut out, "ID", &text(v, "ID"));
    field(&mut out, "Name", &text(v, "Name"));
    field(&mut out, "Description", &text(v, "Description"));
    if show_meta {
        meta(&mut out, v);
    }
    links(&mut out, v, "Policies", "Policies");
    identities(&mut out, v);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn token_layout() {
        let t = json!({
            "AccessorID": "a-1", "SecretID": "s-1", "Description": "Bootstrap Token",
            "Local": false, "CreateTime": "2026-11-30T12:00:00.123Z",
            "Policies": [{"ID": "00000000-0000-0000-0000-000000000001", "Name": "global-management"}],
            "ServiceIdentities": [{"ServiceName": "web"}, {"ServiceName": "db", "Datacenters": ["dc1"]}],
            "NodeIdentities": [{"NodeName": "n1", "Datacenter": "dc1"}],
            "Hash": "h", "CreateIndex": 5, "ModifyIndex": 6
        });
        let out = token(&t, false);
        assert_eq!(
            out,
            "AccessorID:       a-1\n\
             SecretID:         s-1\n\
             Description:      Bootstrap Token\n\
             Local:            false\n\
             Create Time:      2026-11-30 12:00:00.123 +0000 UTC\n\
             Policies:\n   00000000-0000-0000-0000-000000000001 - global-management\n\
             Service Identities:\n   web (Datacenters: all)\n   db (Datacenters: dc1)\n\
             Node Identities:\n   n1 (Datacenter: dc1)\n"
        );
        let out = token(&t, true);
        assert!(out.contains("Create Index:     5\n"), "{out}");
        assert!(!out.contains("Roles:"), "{out}");
    }

    #[test]
    fn policy_and_role_layout() {
        let p = json!({"ID": "p", "Name": "kv-app", "Description": "", "Rules": "key_prefix \"app/\" { policy = \"read\" }"});
        assert_eq!(
            policy(&p, false),
            "ID:               p\nName:             kv-app\nDescription:\nDatacenters:\n\
             Rules:\nkey_prefix \"app/\" { policy = \"read\" }\n"
        );
        let r = json!({"ID": "r", "Name": "web", "Description": "d", "Policies": [{"ID": "p", "Name": "kv-app"}]});
        let out = role(&r, false);
        assert!(out.ends_with("Policies:\n   p - kv-app\n"), "{out}");
    }
}
