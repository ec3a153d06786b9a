//! The Docker (or Podman) source, through bollard: lists containers, inspects only the new
//! or changed ones, and follows the event stream as hints. Unlike registrator it follows
//! `start`, `die`, `stop`, `kill`, `destroy`, `pause`/`unpause` and `health_status`, drains a
//! container on a terminating `kill` (before `die`), resumes the stream from the last event
//! time after a disconnect, and never gives up on the engine.

use crate::backoff::{jitter_unit, Backoff};
use crate::container::{Container, Health, PortBinding, Proto, RunState};
use crate::error::SourceError;
use crate::log;
use crate::runtime::short;
use crate::source::Source;
use bollard::models::{
    ContainerInspectResponse, ContainerSummaryStateEnum, EventMessage, HealthStatusEnum,
};
use bollard::query_parameters::{EventsOptions, ListContainersOptions};
use bollard::{Docker, API_DEFAULT_VERSION};
use futures::{Stream, StreamExt};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::pin::Pin;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The engine address used when `DOCKER_HOST` is unset.
pub const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";
/// How long a terminating `kill` keeps a still-running container drained.
const DRAIN_FOR: Duration = Duration::from_secs(30);
/// Request timeout for engine calls, in seconds.
const TIMEOUT_SECS: u64 = 60;
/// Most containers handled from one listing.
const MAX_CONTAINERS: usize = 10_000;
/// Inspections in flight at once.
const INSPECT_CONCURRENCY: usize = 8;

type EventStream = Pin<Box<dyn Stream<Item = Result<EventMessage, bollard::errors::Error>> + Send>>;

/// Containers from a Docker Engine API endpoint.
pub struct DockerSource {
    endpoint: String,
    docker: Option<Docker>,
    /// id → (state string from the listing when inspected, converted container).
    cache: HashMap<String, (String, Container)>,
    dirty: HashSet<String>,
    draining: HashMap<String, Instant>,
    events: Option<EventStream>,
    /// Unix seconds of the last event seen (or of the first listing): where a new stream resumes.
    since: Option<i64>,
    stream_failures: u32,
    backoff: Backoff,
}

impl DockerSource {
    /// A source for `endpoint` (`unix:///path`, `tcp://host:port` or `http://host:port`);
    /// nothing is contacted yet.
    pub fn new(endpoint: &str) -> Result<Self, SourceError> {
        let ok = endpoint.starts_with("unix://")
            || endpoint.starts_with("tcp://")
            || endpoint.starts_with("http://");
        if !ok {
            return Err(SourceError::Config(format!(
                "DOCKER_HOST {endpoint:?}: only unix://, tcp:// and http:// are supported"
            )));
        }
        Ok(DockerSource {
            endpoint: endpoint.to_string(),
            docker: None,
            cache: HashMap::new(),
            dirty: HashSet::new(),
            draining: HashMap::new(),
            events: None,
            since: None,
            stream_failures: 0,
            backoff: Backoff::default(),
        })
    }

    /// From `DOCKER_HOST`, defaulting to [`DEFAULT_DOCKER_HOST`].
    pub fn from_env() -> Result<Self, SourceError> {
        let host = std::env::var("DOCKER_HOST")
            .ok()
            .filter(|h| !h.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_DOCKER_HOST.to_string());
        Self::new(&host)
    }

    fn engine_err(&self, e: impl std::fmt::Display) -> SourceError {
        SourceError::Engine {
            endpoint: self.endpoint.clone(),
            message: e.to_string(),
        }
    }

    /// Connects and negotiates the API version (always: Podman and old engines speak 1.41).
    async fn client(&mut self) -> Result<Docker, SourceError> {
        if let Some(d) = &self.docker {
            return Ok(d.clone());
        }
        let d = if self.endpoint.starts_with("unix://") {
            Docker::connect_with_unix(&self.endpoint, TIMEOUT_SECS, API_DEFAULT_VERSION)
        } else {
            Docker::connect_with_http(&self.endpoint, TIMEOUT_SECS, API_DEFAULT_VERSION)
        }
        .map_err(|e| self.engine_err(e))?;
        let d = d
            .negotiate_version()
            .await
            .map_err(|e| self.engine_err(e))?;
        log::info(format!(
            "connected to the container engine at {} (API {})",
            self.endpoint,
            d.client_version()
        ));
        self.docker = Some(d.clone());
        Ok(d)
    }

    fn forget_client(&mut self) {
        self.docker = None;
        self.events = None;
    }

    async fn list_inner(&mut self) -> Result<Vec<Container>, SourceError> {
        let docker = self.client().await?;
        let started = now_secs();
        let opts = ListContainersOptions {
            all: true,
            ..Default::default()
        };
        let summaries = match docker.list_containers(Some(opts)).await {
            Ok(s) => s,
            Err(e) => {
                self.forget_client();
                return Err(self.engine_err(e));
            }
        };
        if self.since.is_none() {
            // Events from just before the first listing on are replayed, so nothing that
            // happens between the listing and the subscription is missed.
            self.since = Some(started - 1);
        }
        let mut seen = HashSet::new();
        let mut order = Vec::new();
        let mut stale = Vec::new();
        for s in summaries.into_iter().take(MAX_CONTAINERS) {
            let Some(id) = s.id else { continue };
            if matches!(
                s.state,
                Some(ContainerSummaryStateEnum::CREATED) | Some(ContainerSummaryStateEnum::DEAD)
            ) {
                continue;
            }
            let state = s.state.map(|st| format!("{st:?}")).unwrap_or_default();
            seen.insert(id.clone());
            let fresh = !self.dirty.contains(&id)
                && self.cache.get(&id).is_some_and(|(st, _)| *st == state);
            if !fresh {
                stale.push((id.clone(), state));
            }
            order.push(id);
        }
        // Inspect what is new or changed, a few at a time (a burst of starts is one round).
        let results: Vec<_> = futures::stream::iter(stale)
            .map(|(id, state)| {
                let docker = docker.clone();
                async move {
                    let r = docker.inspect_container(&id, None).await;
                    (id, state, r)
                }
            })
            .buffer_unordered(INSPECT_CONCURRENCY)
            .collect()
            .await;
        let mut gone = HashSet::new();
        for (id, state, r) in results {
            match r {
                Ok(info) => {
                    self.dirty.remove(&id);
                    match convert(info) {
                        Some(c) => {
                            self.cache.insert(id, (state, c));
                        }
                        None => {
                            gone.insert(id);
                        }
                    }
                }
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404, ..
                }) => {
                    gone.insert(id);
                }
                Err(e) => {
                    self.forget_client();
                    return Err(self.engine_err(e));
                }
            }
        }
        let mut out = Vec::new();
        for id in order {
            if gone.contains(&id) {
                continue;
            }
            if let Some((_, c)) = self.cache.get(&id) {
                let mut c = c.clone();
                if c.state == RunState::Running
                    && self
                        .draining
                        .get(&id)
                        .is_some_and(|t| t.elapsed() < DRAIN_FOR)
                {
                    c.state = RunState::Stopping;
                }
                out.push(c);
            }
        }
        self.cache.retain(|id, _| seen.contains(id));
        self.draining
            .retain(|id, t| seen.contains(id) && t.elapsed() < DRAIN_FOR);
        Ok(out)
    }

    /// Applies one event; returns whether it is worth a round.
    fn apply(&mut self, ev: EventMessage) -> bool {
        if let Some(t) = ev.time {
            self.since = Some(self.since.map_or(t, |s| s.max(t)));
        }
        let Some(actor) = ev.actor else { return false };
        let Some(id) = actor.id else { return false };
        let action = ev.action.unwrap_or_default();
        let verb = action.split(':').next().unwrap_or("").trim();
        match verb {
            "start" | "unpause" | "restart" => {
                self.draining.remove(&id);
                self.dirty.insert(id);
                true
            }
            "die" | "stop" | "pause" | "health_status" | "update" | "rename" => {
                self.dirty.insert(id);
                true
            }
            "kill" => {
                let signal = actor
                    .attributes
                    .as_ref()
                    .and_then(|a| a.get("signal"))
                    .map(String::as_str)
                    .unwrap_or("15");
                if is_terminating(signal) {
                    log::info(format!("container {}: kill {signal}; draining", short(&id)));
                    self.draining.insert(id, Instant::now());
                    true
                } else {
                    false
                }
            }
            "destroy" | "remove" => {
                self.cache.remove(&id);
                self.draining.remove(&id);
                true
            }
            _ => false,
        }
    }
}

/// Signals that end a container (by number or name).
fn is_terminating(signal: &str) -> bool {
    let s = signal.trim().trim_start_matches("SIG").to_ascii_uppercase();
    matches!(
        s.as_str(),
        "2" | "3" | "9" | "15" | "INT" | "QUIT" | "KILL" | "TERM"
    )
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Source for DockerSource {
    async fn list(&mut self) -> Result<Vec<Container>, SourceError> {
        self.list_inner().await
    }

    async fn changed(&mut self) {
        loop {
            if self.events.is_none() {
                let docker = match self.client().await {
                    Ok(d) => d,
                    Err(e) => {
                        let d = self.backoff.delay(self.stream_failures, jitter_unit());
                        log::error(format!("{e}; retrying in {d:.1?}"));
                        self.stream_failures = self.stream_failures.saturating_add(1);
                        tokio::time::sleep(d).await;
                        continue;
                    }
                };
                let mut filters = HashMap::new();
                filters.insert("type".to_string(), vec!["container".to_string()]);
                let opts = EventsOptions {
                    since: self.since.map(|s| s.to_string()),
                    until: None,
                    filters: Some(filters),
                };
                self.events = Some(Box::pin(docker.events(Some(opts))));
                if self.stream_failures > 0 {
                    log::info(format!(
                        "event stream re-opened from {}; re-listing",
                        self.since
                            .map(|s| s.to_string())
                            .unwrap_or_else(|| "now".into())
                    ));
                    // Whatever happened while disconnected is re-listed by the runtime.
                    return;
                }
            }
            let next = match self.events.as_mut() {
                Some(s) => s.next().await,
                None => continue,
            };
            match next {
                Some(Ok(ev)) => {
                    self.stream_failures = 0;
                    if self.apply(ev) {
                        return;
                    }
                }
                Some(Err(e)) => {
                    self.forget_client();
                    let d = self.backoff.delay(self.stream_failures, jitter_unit());
                    log::error(format!(
                        "event stream from {} failed: {e}; reconnecting in {d:.1?}",
                        self.endpoint
                    ));
                    self.stream_failures = self.stream_failures.saturating_add(1);
                    tokio::time::sleep(d).await;
                }
                None => {
                    self.forget_client();
                    let d = self.backoff.delay(self.stream_failures, jitter_unit());
                    log::warn(format!(
                        "event stream from {} closed; reconnecting in {d:.1?}",
                        self.endpoint
                    ));
                    self.stream_failures = self.stream_failures.saturating_add(1);
                    tokio::time::sleep(d).await;
                }
            }
        }
    }

    fn describe(&self) -> String {
        format!("containers at {}", self.endpoint)
    }
}

/// Parses `4567/tcp`.
fn parse_port_key(k: &str) -> Option<(u16, Proto)> {
    let (port, proto) = k.split_once('/').unwrap_or((k, "tcp"));
    Some((port.parse().ok()?, Proto::parse(proto)?))
}

/// Turns `docker inspect` into the source-neutral model (`None` without an ID).
pub fn convert(info: ContainerInspectResponse) -> Option<Container> {
    let id = info.id?;
    let name = info
        .name
        .unwrap_or_default()
        .trim_start_matches('/')
        .to_string();
    let config = info.config.unwrap_or_default();
    let state = info.state.unwrap_or_default();
    let run_state = if state.paused == Some(true) {
        RunState::Paused
    } else if state.running == Some(true) {
        RunState::Running
    } else {
        RunState::Exited(state.exit_code)
    };
    let health = state.health.and_then(|h| h.status).and_then(|s| match s {
        HealthStatusEnum::STARTING => Some(Health::Starting),
        HealthStatusEnum::HEALTHY => Some(Health::Healthy),
        HealthStatusEnum::UNHEALTHY => Some(Health::Unhealthy),
        _ => None,
    });
    let network_mode = info
        .host_config
        .and_then(|h| h.network_mode)
        .unwrap_or_default();
    let net = info.network_settings.unwrap_or_default();
    let bindings = net.ports.unwrap_or_default();
    let mut keys: BTreeMap<(u16, Proto), Option<PortBinding>> = BTreeMap::new();
    for k in config.exposed_ports.unwrap_or_default() {
        if let Some(p) = parse_port_key(&k) {
            keys.entry(p).or_insert(None);
        }
    }
    for (k, list) in bindings {
        let Some((exposed, proto)) = parse_port_key(&k) else {
            continue;
        };
        let list = list.unwrap_or_default();
        let pick = list
            .iter()
            .find(|b| !b.host_ip.as_deref().unwrap_or("").contains(':'))
            .or_else(|| list.first());
        let binding = pick.map(|b| PortBinding {
            exposed,
            proto,
            host_ip: b.host_ip.clone(),
            host_port: b
                .host_port
                .as_deref()
                .and_then(|p| p.parse().ok())
                .filter(|p| *p != 0),
        });
        keys.insert((exposed, proto), binding);
    }
    let host_net = network_mode == "host";
    let ports = keys
        .into_iter()
        .map(|((exposed, proto), b)| {
            b.filter(|b| b.host_port.is_some()).unwrap_or(PortBinding {
                exposed,
                proto,
                host_ip: None,
                // With --net=host an exposed port is the host port.
                host_port: host_net.then_some(exposed),
            })
        })
        .collect();
    let networks = net.networks.unwrap_or_default();
    let mut names: Vec<&String> = networks.keys().collect();
    names.sort();
    let primary = networks
        .get(&network_mode)
        .or_else(|| networks.get("bridge"))
        .or_else(|| names.first().and_then(|n| networks.get(*n)));
    let ip = primary
        .and_then(|n| n.ip_address.clone())
        .filter(|ip| !ip.is_empty());
    Some(Container {
        id,
        name,
        image: config.image.unwrap_or_default(),
        env: config.env.unwrap_or_default(),
        labels: config.labels.unwrap_or_default().into_iter().collect(),
        ports,
        ip,
        state: run_state,
        health,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_an_inspect_document() {
        // Shaped like dockerd 20.10's answer (API 1.41) for `docker run -p 4567 ...`.
        let doc = serde_json::json!({
            "Id": "0123456789abcdef",
            "Name": "/stock",
            "State": {"Running": true, "Paused": false, "ExitCode": 0,
                      "Health": {"Status": "healthy"}},
            "Config": {"Image": "localhost/web:ci", "Env": ["SERVICE_4567_NAME=x"],
                       "Labels": {"a": "b"}, "ExposedPorts": {"4567/tcp": {}, "53/udp": {}, "9/sctp": {}}},
            "HostConfig": {"NetworkMode": "default"},
            "NetworkSettings": {
                "Ports": {"4567/tcp": [{"HostIp": "::", "HostPort": "32768"},
                                       {"HostIp": "0.0.0.0", "HostPort": "32768"}],
                          "53/udp": null},
                "Networks": {"bridge": {"IPAddress": "172.17.0.2"}}
            }
        });
        let info: ContainerInspectResponse = serde_json::from_value(doc).unwrap();
        let c = convert(info).unwrap();
        assert_eq!(c.name, "stock");
        assert_eq!(c.state, RunState::Running);
        assert_eq!(c.health, Some(Health::Healthy));
        assert_eq!(c.ip.as_deref(), Some("172.17.0.2"));
        assert_eq!(c.labels["a"], "b");
        assert_eq!(
            c.ports,
            vec![
                PortBinding {
                    exposed: 53,
                    proto: Proto::Udp,
                    host_ip: None,
                    host_port: None
                },
                PortBinding {
                    exposed: 4567,
                    proto: Proto::Tcp,
                    host_ip: Some("0.0.0.0".into()),
                    host_port: Some(32768)
                },
            ]
        );
    }

    #[test]
    fn host_network_and_exits() {
        let doc = serde_json::json!({
            "Id": "x", "Name": "/h",
            "State": {"Running": false, "ExitCode": 3},
            "Config": {"Image": "i", "ExposedPorts": {"80/tcp": {}}},
            "HostConfig": {"NetworkMode": "host"},
            "NetworkSettings": {"Ports": {}, "Networks": {"host": {"IPAddress": ""}}}
        });
        let c = convert(serde_json::from_value(doc).unwrap()).unwrap();
        assert_eq!(c.state, RunState::Exited(Some(3)));
        assert_eq!(c.ports[0].host_port, Some(80));
        assert_eq!(c.ip, None);
    }

    #[test]
    fn events_mark_and_drain() {
        let mut s = DockerSource::new("unix:///nonexistent.sock").unwrap();
        let ev = |action: &str, attrs: &[(&str, &str)]| EventMessage {
            action: Some(action.into()),
            time: Some(100),
            actor: Some(bollard::models::EventActor {
                id: Some("c1".into()),
                attributes: Some(
                    attrs
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
            }),
            ..Default::default()
        };
        assert!(s.apply(ev("start", &[])));
        assert!(s.dirty.contains("c1"));
        assert_eq!(s.since, Some(100));
        assert!(s.apply(ev("health_status: unhealthy", &[])));
        assert!(!s.apply(ev("kill", &[("signal", "1")])));
        assert!(s.apply(ev("kill", &[("signal", "15")])));
        assert!(s.draining.contains_key("c1"));
        assert!(s.apply(ev("unpause", &[])));
        assert!(!s.draining.contains_key("c1"));
        assert!(!s.apply(ev("exec_start: sh", &[])));
        assert!(s.apply(ev("destroy", &[])));
        assert!(is_terminating("SIGTERM") && is_terminating("KILL") && !is_terminating("HUP"));
        assert!(DockerSource::new("ssh://x").is_err());
    }
}
