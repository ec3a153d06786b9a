//! HTTPS on the agent, end to end: certificates made by `cairn tls`, an agent serving the
//! API on `ports.https` next to HTTP, clients with and without the CA and with and without
//! a client certificate (`verify_incoming`), certificates replaced by `cairn reload`, and
//! the CLI over HTTPS through Consul's environment variables.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

/// Runs `cairn ARGS` in `dir`, asserting success.
fn cairn_in(dir: &Path, args: &[&str]) {
    let out = Command::new(bin())
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run cairn");
    assert!(
        out.status.success(),
        "cairn {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a server certificate and a client certificate in `dir`.
fn make_certs(dir: &Path) {
    cairn_in(dir, &["tls", "ca", "create"]);
    cairn_in(dir, &["tls", "cert", "create", "-server"]);
    cairn_in(dir, &["tls", "cert", "create", "-client"]);
}

fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The `tls { }` block of an agent using the files in `dir`.
fn tls_hcl(dir: &Path, verify_incoming: bool) -> String {
    let p = |n: &str| dir.join(n).display().to_string();
    format!(
        "tls {{\n defaults {{\n ca_file = \"{}\"\n cert_file = \"{}\"\n key_file = \"{}\"\n }}\n https {{\n verify_incoming = {verify_incoming}\n }}\n}}",
        p("consul-agent-ca.pem"),
        p("dc1-server-consul-0.pem"),
        p("dc1-server-consul-0-key.pem"),
    )
}

/// An HTTPS client trusting the CA in `ca_dir` (none: only the public roots), presenting
/// the client certificate of `identity_dir` if given.
fn https_client(ca_dir: Option<&Path>, identity_dir: Option<&Path>) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .timeout(Duration::from_secs(10));
    if let Some(d) = ca_dir {
        let ca = reqwest::Certificate::from_pem(&read(d, "consul-agent-ca.pem")).unwrap();
        b = b.add_root_certificate(ca);
    }
    if let Some(d) = identity_dir {
        let mut pem = read(d, "dc1-client-consul-0.pem");
        pem.extend(read(d, "dc1-client-consul-0-key.pem"));
        b = b.identity(reqwest::Identity::from_pem(&pem).unwrap());
    }
    b.build().unwrap()
}

/// `GET /v1/status/leader` over HTTPS: the leader, or the transport error.
async fn leader(client: &reqwest::Client, addr: std::net::SocketAddr) -> Result<String, String> {
    let r = client
        .get(format!("https://{addr}/v1/status/leader"))
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    let status = r.status();
    let body = r.text().await.map_err(|e| format!("{e:?}"))?;
    if !status.is_success() {
        return Err(format!("status {status}: {body}"));
    }
    serde_json::from_str::<String>(&body).map_err(|e| e.to_string())
}

#[tokio::test]
async fn https_serves_clients_that_trust_the_ca() {
    let (_tmp, dir) = tempdir();
    make_certs(&dir);
    let hcl = tls_hcl(&dir, false);
    let agent = Agent::dev_with(&["-https-port", "0", "-hcl", &hcl]).await;
    let addr = agent.https_addr().await;

    let l = leader(&https_client(Some(&dir), None), addr).await.unwrap();
    assert!(!l.is_empty(), "a leader over HTTPS");
    // The HTTP listener still answers, with the same router.
    assert_eq!(agent.get("/v1/status/leader").await.json(), l.as_str());

    let e = leader(&https_client(None, None), addr).await.unwrap_err();
    assert!(
        e.contains("certificate") || e.contains("Certificate"),
        "{e}"
    );
    // Plain HTTP on the HTTPS port gets no answer.
    let plain = reqwest::Client::new()
        .get(format!("http://{addr}/v1/status/leader"))
        .timeout(Duration::from_secs(10))
        .send()
        .await;
    assert!(plain.is_err(), "{plain:?}");
}

#[tokio::test]
async fn a_tls_1_3_minimum_refuses_tls_1_2_clients_and_ca_path_verifies_them() {
    let (_tmp, dir) = tempdir();
    make_certs(&dir);
    // The CA comes from a directory (ca_path) and HTTPS takes TLS 1.3 only.
    let cas = dir.join("cas");
    std::fs::create_dir(&cas).unwrap();
    std::fs::copy(dir.join("consul-agent-ca.pem"), cas.join("ca.pem")).unwrap();
    let p = |n: &str| dir.join(n).display().to_string();
    let hcl = format!(
        "tls {{\n defaults {{\n ca_path = \"{}\"\n cert_file = \"{}\"\n key_file = \"{}\"\n }}\n https {{\n verify_incoming = true\n tls_min_version = \"TLSv1_3\"\n }}\n}}",
        cas.display(),
        p("dc1-server-consul-0.pem"),
        p("dc1-server-consul-0-key.pem"),
    );
    let agent = Agent::dev_with(&["-https-port", "0", "-hcl", &hcl]).await;
    let addr = agent.https_addr().await;

    let l = leader(&https_client(Some(&dir), Some(&dir)), addr)
        .await
        .unwrap();
    assert!(!l.is_empty());
    let mut pem = read(&dir, "dc1-client-consul-0.pem");
    pem.extend(read(&dir, "dc1-client-consul-0-key.pem"));
    let tls12 = reqwest::Client::builder()
        .use_rustls_tls()
        .max_tls_version(reqwest::tls::Version::TLS_1_2)
        .add_root_certificate(
            reqwest::Certificate::from_pem(&read(&dir, "consul-agent-ca.pem")).unwrap(),
        )
        .identity(reqwest::Identity::from_pem(&pem).unwrap())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let e = leader(&tls12, addr).await.unwrap_err();
    assert!(e.to_lowercase().contains("version"), "{e}");
    // Without a certificate from the CA in ca_path, refused as before.
    assert!(leader(&https_client(Some(&dir), None), addr).await.is_err());
}

#[tokio::test]
async fn verify_incoming_requires_a_client_certificate_from_the_ca() {
    let (_tmp, dir) = tempdir();
    make_certs(&dir);
    let (_tmp2, other) = tempdir();
    make_certs(&other);
    let hcl = tls_hcl(&dir, true);
    let agent = Agent::dev_with(&["-https-port", "0", "-hcl", &hcl]).await;
    let addr = agent.https_addr().await;

    assert!(leader(&https_client(Some(&dir), None), addr).await.is_err());
    // A certificate signed by another CA is refused too.
    assert!(leader(&https_client(Some(&dir), Some(&other)), addr)
        .await
        .is_err());
    let l = leader(&https_client(Some(&dir), Some(&dir)), addr)
        .await
        .unwrap();
    assert!(!l.is_empty());
}

#[tokio::test]
async fn reload_swaps_the_certificates() {
    let (_tmp, root) = tempdir();
    let (old, new, live) = (root.join("old"), root.join("new"), root.join("live"));
    for d in [&old, &new, &live] {
        std::fs::create_dir(d).unwrap();
    }
    make_certs(&old);
    make_certs(&new);
    let install = |from: &Path| {
        for n in [
            "consul-agent-ca.pem",
            "dc1-server-consul-0.pem",
            "dc1-server-consul-0-key.pem",
        ] {
            std::fs::copy(from.join(n), live.join(n)).unwrap();
        }
    };
    install(&old);
    let hcl = tls_hcl(&live, false);
    let agent = Agent::dev_with(&["-https-port", "0", "-hcl", &hcl]).await;
    let addr = agent.https_addr().await;
    assert!(leader(&https_client(Some(&old), None), addr).await.is_ok());

    // A broken file: the reload fails naming it, and the old certificates stay.
    std::fs::write(live.join("dc1-server-consul-0-key.pem"), "garbage").unwrap();
    let r = agent.put_empty("/v1/agent/reload").await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text().contains("dc1-server-consul-0-key.pem"),
        "{}",
        r.text()
    );
    assert!(leader(&https_client(Some(&old), None), addr).await.is_ok());

    install(&new);
    let (code, _, err) = run_cli(&["reload", "-http-addr", &agent.addr], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(leader(&https_client(Some(&new), None), addr).await.is_ok());
    assert!(leader(&https_client(Some(&old), None), addr).await.is_err());
}

#[tokio::test]
async fn a_missing_certificate_file_stops_the_start_naming_it() {
    let (_tmp, dir) = tempdir();
    let hcl = tls_hcl(&dir, false);
    let (code, err) = run_to_exit(
        &[
            "agent",
            "-dev",
            "-http-port",
            "0",
            "-dns-port",
            "-1",
            "-https-port",
            "0",
            "-hcl",
            &hcl,
        ],
        Duration::from_secs(15),
    );
    assert_ne!(code, Some(0));
    assert!(
        err.contains("consul-agent-ca.pem") || err.contains("dc1-server-consul-0.pem"),
        "{err}"
    );
}

#[tokio::test]
async fn the_cli_speaks_https_from_consul_environment_variables() {
    let (_tmp, dir) = tempdir();
    make_certs(&dir);
    let hcl = tls_hcl(&dir, true);
    let agent = Agent::dev_with(&["-https-port", "0", "-hcl", &hcl]).await;
    let addr = agent.https_addr().await.to_string();
    let p = |n: &str| dir.join(n).display().to_string();
    let (ca, cert, key) = (
        p("consul-agent-ca.pem"),
        p("dc1-client-consul-0.pem"),
        p("dc1-client-consul-0-key.pem"),
    );
    let url = format!("https://{addr}");
    let full: &[(&str, &str)] = &[
        ("CONSUL_HTTP_ADDR", &url),
        ("CONSUL_CACERT", &ca),
        ("CONSUL_CLIENT_CERT", &cert),
        ("CONSUL_CLIENT_KEY", &key),
    ];
    let (code, _, err) = run_cli(&["kv", "put", "tls/k", "v1"], full);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run_cli(&["kv", "get", "tls/k"], full);
    assert_eq!((code, out.trim()), (0, "v1"), "{err}");
    // `kv get tls/k` with `args` before the key and `env`, presenting the client
    // certificate (through the variables, or the flags when `flags`).
    let get = |args: &[&str], env: &[(&str, &str)], flags: bool| {
        let mut argv = vec!["kv", "get"];
        argv.extend(args);
        let mut env = env.to_vec();
        if flags {
            argv.extend(["-client-cert", cert.as_str(), "-client-key", key.as_str()]);
        } else {
            env.extend([
                ("CONSUL_CLIENT_CERT", cert.as_str()),
                ("CONSUL_CLIENT_KEY", key.as_str()),
            ]);
        }
        argv.push("tls/k");
        run_cli(&argv, &env)
    };
    let served = |(code, out, err): (i32, String, String)| {
        assert_eq!((code, out.trim()), (0, "v1"), "{err}");
    };
    // CONSUL_HTTP_SSL turns a bare address into HTTPS.
    served(get(
        &[],
        &[
            ("CONSUL_HTTP_ADDR", &addr),
            ("CONSUL_HTTP_SSL", "true"),
            ("CONSUL_CACERT", &ca),
        ],
        false,
    ));
    // Consul's flags instead of the variables.
    served(get(&["-http-addr", &url, "-ca-file", &ca], &[], true));
    // CONSUL_TLS_SERVER_NAME: the certificate is checked for that name, not the address.
    let named = |name| {
        get(
            &[],
            &[
                ("CONSUL_HTTP_ADDR", &url),
                ("CONSUL_TLS_SERVER_NAME", name),
                ("CONSUL_CACERT", &ca),
            ],
            false,
        )
    };
    served(named("server.dc1.consul:8501"));
    let (code, out, err) = named("elsewhere.example");
    assert_eq!(code, 1, "{out}");
    assert!(
        err.contains("elsewhere.example") || err.contains("certificate"),
        "{err}"
    );
    // A directory of CAs: CONSUL_CAPATH, or -ca-path.
    let cas = dir.join("cas");
    std::fs::create_dir(&cas).unwrap();
    std::fs::copy(&ca, cas.join("ca.pem")).unwrap();
    let cas = cas.display().to_string();
    served(get(
        &[],
        &[("CONSUL_HTTP_ADDR", &url), ("CONSUL_CAPATH", &cas)],
        false,
    ));
    served(get(&["-http-addr", &url, "-ca-path", &cas], &[], true));
    // Without the client certificate the agent refuses; without the CA the CLI does.
    let (code, _, err) = run_cli(
        &["kv", "get", "tls/k"],
        &[("CONSUL_HTTP_ADDR", &url), ("CONSUL_CACERT", &ca)],
    );
    assert_eq!(code, 1, "{err}");
    let (code, _, err) = run_cli(&["kv", "get", "tls/k"], &[("CONSUL_HTTP_ADDR", &url)]);
    assert_eq!(code, 1);
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    // A missing CA file is named.
    let (code, _, err) = run_cli(
        &["kv", "get", "tls/k"],
        &[
            ("CONSUL_HTTP_ADDR", &url),
            ("CONSUL_CACERT", "/nonexistent/ca.pem"),
        ],
    );
    assert_eq!(code, 1);
    assert!(err.contains("CONSUL_CACERT"), "{err}");
}
