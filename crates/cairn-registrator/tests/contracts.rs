//! One contract suite per seam, run against both implementations:
//! - [`Registry`]: the agent over HTTP (a real `cairn agent -dev`) and the in-memory stand-in;
//! - [`Source`]: the task runner (always) and Docker (when an engine answers; with
//!   `CAIRN_TEST_DOCKER=1` it must).

mod common;

use cairn_api::ServiceDefinition;
use cairn_registrator::docker::DockerSource;
use cairn_registrator::tasks::taskdef;
use cairn_registrator::tasks::{RunnerConfig, TaskRunner};
use cairn_registrator::{
    AgentRegistry, Container, MemoryRegistry, Proto, Registry, RunState, Source,
};
use common::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

// ---- Registry ----------------------------------------------------------------------------

async fn registry_contract<R: Registry>(r: &R, node: &str) {
    let id = r.identity().await.unwrap();
    assert_eq!(id.node, node);
    assert!(!id.advertise.is_empty());

    let mut def = ServiceDefinition {
        id: format!("{node}:c:4567"),
        name: "contract".into(),
        address: "10.0.0.7".into(),
        port: Some(32000),
        tags: vec!["http".into()],
        ..Default::default()
    };
    def.meta.insert("registrator-owner".into(), node.into());
    r.register(&def).await.unwrap();
    let s = r.services().await.unwrap();
    let got = &s[&def.id];
    assert_eq!(
        (got.service.as_str(), got.port, got.address.as_str()),
        ("contract", 32000, "10.0.0.7")
    );
    assert_eq!(got.tags, ["http"]);
    assert_eq!(got.meta["registrator-owner"], node);

    // Registering again replaces; deregistering twice is not an error.
    def.port = Some(32001);
    r.register(&def).await.unwrap();
    assert_eq!(r.services().await.unwrap()[&def.id].port, 32001);
    r.deregister(&def.id).await.unwrap();
    r.deregister(&def.id).await.unwrap();
    assert!(!r.services().await.unwrap().contains_key(&def.id));
}

#[tokio::test(flavor = "multi_thread")]
async fn registry_contract_memory() {
    registry_contract(&MemoryRegistry::new("mem-node", "10.0.0.1"), "mem-node").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn registry_contract_agent() {
    let agent = Agent::start("contract-node").await;
    let client = cairn_api::Client::new(&agent.addr).unwrap();
    registry_contract(&AgentRegistry::new(client), "contract-node").await;
}

// ---- Source ------------------------------------------------------------------------------

/// Starts one unit publishing 4567 with `SERVICE_4567_NAME=<name>` and stops it on demand.
trait Harness {
    type S: Source;
    fn source(&mut self) -> &mut Self::S;
    fn name(&self) -> &str;
    async fn stop_unit(&mut self);
}

fn find<'a>(list: &'a [Container], env: &str) -> Option<&'a Container> {
    list.iter().find(|c| c.env.iter().any(|e| e == env))
}

async fn source_contract<H: Harness>(h: &mut H) {
    let env = format!("SERVICE_4567_NAME={}", h.name());
    // The unit shows up running, with its published port and metadata.
    let deadline = std::time::Instant::now() + T;
    let c = loop {
        let list = h.source().list().await.unwrap();
        if let Some(c) = find(&list, &env).filter(|c| c.state == RunState::Running) {
            break c.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "unit never listed as running"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let p = c
        .ports
        .iter()
        .find(|p| p.exposed == 4567)
        .expect("port 4567");
    assert_eq!(p.proto, Proto::Tcp);
    assert!(p.host_port.is_some_and(|hp| hp > 0), "{p:?}");
    assert!(!c.name.is_empty() && !c.id.is_empty());

    // A stop is signalled through changed() and then visible in list().
    h.stop_unit().await;
    tokio::time::timeout(T, h.source().changed())
        .await
        .expect("changed() after the unit stopped");
    let deadline = std::time::Instant::now() + T;
    loop {
        let list = h.source().list().await.unwrap();
        if find(&list, &env).is_none_or(|c| c.state != RunState::Running) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "unit still running after stop"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct TaskHarness {
    runner: TaskRunner,
    name: String,
}

impl Harness for TaskHarness {
    type S = TaskRunner;
    fn source(&mut self) -> &mut TaskRunner {
        &mut self.runner
    }
    fn name(&self) -> &str {
        &self.name
    }
    async fn stop_unit(&mut self) {
        let port = self.runner.containers()[0].ports[0].host_port.unwrap();
        let _ = reqwest::get(format!("http://127.0.0.1:{port}/exit")).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn source_contract_task_runner() {
    let name = unique("contract-task");
    let doc = format!(
        r#"{{"family": "contract", "containerDefinitions": [{{
            "name": "web", "essential": false,
            "entryPoint": ["{}"],
            "environment": [{{"name": "SERVICE_4567_NAME", "value": "{name}"}}],
            "portMappings": [{{"containerPort": 4567}}]}}]}}"#,
        env!("CARGO_BIN_EXE_cairn-demo-http")
    );
    let td = taskdef::parse(doc.as_bytes()).unwrap();
    let runner = TaskRunner::start(&td, RunnerConfig::default()).unwrap();
    let mut h = TaskHarness { runner, name };
    source_contract(&mut h).await;
    h.runner.stop().await;
}

struct DockerHarness {
    source: DockerSource,
    container: DockerContainer,
    name: String,
}

impl Harness for DockerHarness {
    type S = DockerSource;
    fn source(&mut self) -> &mut DockerSource {
        &mut self.source
    }
    fn name(&self) -> &str {
        &self.name
    }
    async fn stop_unit(&mut self) {
        self.container.stop();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn source_contract_docker() {
    if !docker_or_skip("source_contract_docker") {
        return;
    }
    let name = unique("contract-docker");
    let mut source = DockerSource::new(&format!("unix://{DOCKER_SOCK}")).unwrap();
    // Subscribe first (the first listing fixes where the event stream starts).
    source.list().await.unwrap();
    let container = DockerContainer::run(
        &unique("c"),
        &["-p", "4567", "-e", &format!("SERVICE_4567_NAME={name}")],
        &[],
    );
    let mut h = DockerHarness {
        source,
        container,
        name,
    };
    source_contract(&mut h).await;
}
