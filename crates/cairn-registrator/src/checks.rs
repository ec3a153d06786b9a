//! Health checks from `SERVICE_CHECK_*` metadata. Registrator registered at most one check
//! and sent a script as a single argv element; here every check type that is set becomes a
//! check of its own, scripts are split into words, and a value that cannot be parsed drops
//! what it belongs to with a note instead of failing the whole registration.

use crate::metadata::{parse_bool, PortMeta};
use cairn_api::AgentServiceCheck;
use cairn_types::duration::parse_duration;

/// Interval used when `CHECK_INTERVAL` is absent (registrator's default).
pub const DEFAULT_INTERVAL: &str = "10s";

/// Builds the checks for a service reachable at `ip:port`. Problems go to `notes`.
pub fn checks_for(
    meta: &PortMeta,
    ip: &str,
    port: u16,
    notes: &mut Vec<String>,
) -> Vec<AgentServiceCheck> {
    let host = host_port(ip, port);
    let interval = match meta.get("check_interval") {
        None => Some(DEFAULT_INTERVAL.to_string()),
        Some(v) => match parse_duration(v.trim()) {
            Ok(d) if !d.is_zero() => Some(v.trim().to_string()),
            Ok(_) => {
                notes.push(format!(
                    "SERVICE_CHECK_INTERVAL={v:?} is zero; the service is registered without its interval-based checks"
                ));
                None
            }
            Err(e) => {
                notes.push(format!(
                    "SERVICE_CHECK_INTERVAL: {e}; the service is registered without its interval-based checks"
                ));
                None
            }
        },
    };
    let timeout = duration_setting(meta, "check_timeout", "SERVICE_CHECK_TIMEOUT", notes);
    let deregister = duration_setting(
        meta,
        "check_deregister_after",
        "SERVICE_CHECK_DEREGISTER_AFTER",
        notes,
    );
    let status = match meta.get("check_initial_status") {
        None => String::new(),
        Some(s) => {
            let s = s.trim().to_ascii_lowercase();
            if matches!(s.as_str(), "passing" | "warning" | "critical") {
                s
            } else {
                notes.push(format!(
                    "SERVICE_CHECK_INITIAL_STATUS={s:?} is not passing, warning or critical; ignored"
                ));
                String::new()
            }
        }
    };
    let base = |interval: &str| AgentServiceCheck {
        interval: interval.to_string(),
        timeout: timeout.clone().unwrap_or_default(),
        status: status.clone(),
        deregister_critical_service_after: deregister.clone().unwrap_or_default(),
        ..Default::default()
    };

    let mut out = Vec::new();
    let wants_interval = [
        "check_http",
        "check_https",
        "check_tcp",
        "check_grpc",
        "check_script",
    ]
    .iter()
    .any(|k| meta.get(k).is_some());
    if let Some(iv) = interval.as_deref() {
        for (key, scheme) in [("check_http", "http"), ("check_https", "https")] {
            if let Some(path) = meta.get(key) {
                let path = path.trim();
                let sep = if path.starts_with('/') { "" } else { "/" };
                let mut c = base(iv);
                c.http = format!("{scheme}://{host}{sep}{path}");
                if let Some(m) = meta.get(&format!("{key}_method")) {
                    c.method = m.trim().to_ascii_uppercase();
                }
                if scheme == "https" {
                    c.tls_skip_verify = flag(meta, "check_tls_skip_verify", notes);
                }
                out.push(c);
            }
        }
        if meta.get("check_tcp").is_some() {
            let mut c = base(iv);
            c.tcp = host.clone();
            out.push(c);
        }
        if let Some(v) = meta.get("check_grpc") {
            let mut c = base(iv);
            let v = v.trim();
            c.grpc = match parse_bool(v) {
                Some(_) => host.clone(),
                None => format!("{host}/{}", v.trim_start_matches('/')),
            };
            c.grpc_use_tls = flag(meta, "check_grpc_use_tls", notes);
            c.tls_skip_verify = flag(meta, "check_tls_skip_verify", notes);
            out.push(c);
        }
        if let Some(script) = meta.get("check_script") {
            let script = script
                .replace("$SERVICE_IP", ip)
                .replace("$SERVICE_PORT", &port.to_string());
            match split_words(&script) {
                Ok(args) if !args.is_empty() => {
                    let mut c = base(iv);
                    c.args = args;
                    out.push(c);
                }
                Ok(_) => notes.push("SERVICE_CHECK_SCRIPT is blank; no script check".into()),
                Err(e) => notes.push(format!("SERVICE_CHECK_SCRIPT: {e}; no script check")),
            }
        }
    } else if wants_interval {
        // The note about the interval was already recorded.
    }
    if let Some(ttl) = meta.get("check_ttl") {
        match parse_duration(ttl.trim()) {
            Ok(d) if !d.is_zero() => {
                let mut c = base("");
                c.timeout = String::new();
                c.ttl = ttl.trim().to_string();
                out.push(c);
            }
            Ok(_) => notes.push("SERVICE_CHECK_TTL is zero; no TTL check".into()),
            Err(e) => notes.push(format!("SERVICE_CHECK_TTL: {e}; no TTL check")),
        }
    }
    if meta.get("check_cmd").is_some() {
        notes.push(
            "SERVICE_CHECK_CMD needs registrator's check-cmd helper image; use SERVICE_CHECK_SCRIPT"
                .into(),
        );
    }
    out
}

/// `ip:port`, bracketing IPv6 addresses.
pub fn host_port(ip: &str, port: u16) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

fn duration_setting(
    meta: &PortMeta,
    key: &str,
    var: &str,
    notes: &mut Vec<String>,
) -> Option<String> {
    let v = meta.get(key)?.trim();
    match parse_duration(v) {
        Ok(_) => Some(v.to_string()),
        Err(e) => {
            notes.push(format!("{var}: {e}; ignored"));
            None
        }
    }
}

fn flag(meta: &PortMeta, key: &str, notes: &mut Vec<String>) -> bool {
    match meta.get(key) {
        None => false,
        Some(v) => parse_bool(v).unwrap_or_else(|| {
            notes.push(format!(
                "SERVICE_{}={v:?} is not a boolean; false",
                key.to_ascii_uppercase()
            ));
            false
        }),
    }
}

/// Splits a command line into words: blanks separate, single quotes are literal, double
/// quotes allow `\"` and `\\`, a backslash outside quotes escapes the next character.
pub fn split_words(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err("unterminated single quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => cur.push(c),
                            Some(c) => {
                                cur.push('\\');
                                cur.push(c);
                            }
                            None => return Err("unterminated double quote".into()),
                        },
                        Some(c) => cur.push(c),
                        None => return Err("unterminated double quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => cur.push(c),
                    None => return Err("trailing backslash".into()),
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::for_port;
    use std::collections::BTreeMap;

    fn run(env: &[&str]) -> (Vec<AgentServiceCheck>, Vec<String>) {
        let env: Vec<String> = env.iter().map(|s| s.to_string()).collect();
        let mut notes = vec![];
        let meta = for_port(&env, &BTreeMap::new(), 4567, &mut notes);
        let checks = checks_for(&meta, "10.0.0.5", 32768, &mut notes);
        (checks, notes)
    }

    #[test]
    fn article_http_check() {
        let (c, notes) = run(&[
            "SERVICE_4567_CHECK_HTTP=/health",
            "SERVICE_4567_CHECK_INTERVAL=10s",
        ]);
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].http, "http://10.0.0.5:32768/health");
        assert_eq!(c[0].interval, "10s");
        assert_eq!(c[0].timeout, "");
    }

    #[test]
    fn every_variable() {
        struct Case {
            env: &'static [&'static str],
            check: fn(&[AgentServiceCheck]) -> bool,
            notes: usize,
        }
        let cases: Vec<Case> = vec![
            Case {
                env: &["SERVICE_CHECK_HTTP=health"],
                check: |c| c[0].http == "http://10.0.0.5:32768/health" && c[0].interval == "10s",
                notes: 0,
            },
            Case {
                env: &["SERVICE_CHECK_HTTP=/h", "SERVICE_CHECK_HTTP_METHOD=head"],
                check: |c| c[0].method == "HEAD",
                notes: 0,
            },
            Case {
                env: &[
                    "SERVICE_CHECK_HTTPS=/h",
                    "SERVICE_CHECK_TLS_SKIP_VERIFY=true",
                ],
                check: |c| c[0].http == "https://10.0.0.5:32768/h" && c[0].tls_skip_verify,
                notes: 0,
            },
            Case {
                env: &["SERVICE_CHECK_TCP=true", "SERVICE_CHECK_TIMEOUT=2s"],
                check: |c| c[0].tcp == "10.0.0.5:32768" && c[0].timeout == "2s",
                notes: 0,
            },
            Case {
                env: &["SERVICE_CHECK_GRPC=true", "SERVICE_CHECK_GRPC_USE_TLS=1"],
                check: |c| c[0].grpc == "10.0.0.5:32768" && c[0].grpc_use_tls,
                notes: 0,
            },
            Case {
                env: &["SERVICE_CHECK_GRPC=my.Health"],
                check: |c| c[0].grpc == "10.0.0.5:32768/my.Health",
                notes: 0,
            },
            Case {
                env: &["SERVICE_CHECK_SCRIPT=nc -z $SERVICE_IP $SERVICE_PORT"],
                check: |c| c[0].args == ["nc", "-z", "10.0.0.5", "32768"],
                notes: 0,
            },
            Case {
                env: &["SERVICE_CHECK_SCRIPT=sh -c 'echo a b'"],
                check: |c| c[0].args == ["sh", "-c", "echo a b"],
                notes: 0,
            },
            Case {
                env: &["SERVICE_CHECK_TTL=30s"],
                check: |c| c[0].ttl == "30s" && c[0].interval.is_empty(),
                notes: 0,
            },
            Case {
                env: &["SERVICE_CHECK_TCP=1", "SERVICE_CHECK_INTERVAL=5s"],
                check: |c| c[0].interval == "5s",
                notes: 0,
            },
            Case {
                env: &[
                    "SERVICE_CHECK_TCP=1",
                    "SERVICE_CHECK_INITIAL_STATUS=Passing",
                ],
                check: |c| c[0].status == "passing",
                notes: 0,
            },
            Case {
                env: &["SERVICE_CHECK_TCP=1", "SERVICE_CHECK_DEREGISTER_AFTER=10m"],
                check: |c| c[0].deregister_critical_service_after == "10m",
                notes: 0,
            },
            // several checks at once, in a fixed order
            Case {
                env: &[
                    "SERVICE_CHECK_TTL=9s",
                    "SERVICE_CHECK_TCP=1",
                    "SERVICE_CHECK_HTTP=/",
                ],
                check: |c| {
                    c.len() == 3
                        && !c[0].http.is_empty()
                        && !c[1].tcp.is_empty()
                        && !c[2].ttl.is_empty()
                },
                notes: 0,
            },
            // bad values
            Case {
                env: &["SERVICE_CHECK_HTTP=/h", "SERVICE_CHECK_INTERVAL=often"],
                check: |c| c.is_empty(),
                notes: 1,
            },
            Case {
                env: &["SERVICE_CHECK_HTTP=/h", "SERVICE_CHECK_INTERVAL=0s"],
                check: |c| c.is_empty(),
                notes: 1,
            },
            Case {
                env: &[
                    "SERVICE_CHECK_TTL=9s",
                    "SERVICE_CHECK_TCP=1",
                    "SERVICE_CHECK_INTERVAL=x",
                ],
                check: |c| c.len() == 1 && c[0].ttl == "9s",
                notes: 1,
            },
            Case {
                env: &["SERVICE_CHECK_TCP=1", "SERVICE_CHECK_TIMEOUT=soon"],
                check: |c| c.len() == 1 && c[0].timeout.is_empty(),
                notes: 1,
            },
            Case {
                env: &["SERVICE_CHECK_TCP=1", "SERVICE_CHECK_DEREGISTER_AFTER=-1m"],
                check: |c| c.len() == 1 && c[0].deregister_critical_service_after.is_empty(),
                notes: 1,
            },
            Case {
                env: &["SERVICE_CHECK_TCP=1", "SERVICE_CHECK_INITIAL_STATUS=great"],
                check: |c| c.len() == 1 && c[0].status.is_empty(),
                notes: 1,
            },
            Case {
                env: &["SERVICE_CHECK_TTL=forever"],
                check: |c| c.is_empty(),
                notes: 1,
            },
            Case {
                env: &["SERVICE_CHECK_SCRIPT=echo 'unterminated"],
                check: |c| c.is_empty(),
                notes: 1,
            },
            Case {
                env: &[
                    "SERVICE_CHECK_GRPC=true",
                    "SERVICE_CHECK_GRPC_USE_TLS=perhaps",
                ],
                check: |c| !c[0].grpc_use_tls,
                notes: 1,
            },
            Case {
                env: &["SERVICE_CHECK_CMD=/bin/true"],
                check: |c| c.is_empty(),
                notes: 1,
            },
            Case {
                env: &[],
                check: |c| c.is_empty(),
                notes: 0,
            },
        ];
        for (i, case) in cases.iter().enumerate() {
            let (c, notes) = run(case.env);
            assert!((case.check)(&c), "case {i} {:?}: {c:#?}", case.env);
            assert_eq!(
                notes.len(),
                case.notes,
                "case {i} {:?}: {notes:?}",
                case.env
            );
        }
    }

    #[test]
    fn ipv6_hosts() {
        assert_eq!(host_port("::1", 80), "[::1]:80");
        assert_eq!(host_port("1.2.3.4", 80), "1.2.3.4:80");
    }

    #[test]
    fn words() {
        assert_eq!(split_words(r#"a "b c" d\ e"#).unwrap(), ["a", "b c", "d e"]);
        assert_eq!(split_words(r#""x\"y""#).unwrap(), [r#"x"y"#]);
        assert_eq!(split_words("''").unwrap(), [""]);
        assert!(split_words("a\\").is_err());
        assert!(split_words("\"a").is_err());
    }
}
