//! The subset of an ECS task definition that matters locally, read from the JSON the ECS
//! console and `aws ecs register-task-definition` accept (and from `describe-task-definition`
//! output, which wraps it in `taskDefinition`), validated with clear errors.

use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

/// Largest task definition file accepted.
pub const MAX_FILE_BYTES: usize = 1 << 20;
/// ECS allows at most 10 containers per task.
pub const MAX_CONTAINERS: usize = 10;

/// A task definition.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskDefinition {
    pub family: String,
    pub container_definitions: Vec<ContainerDefinition>,
}

/// One container of a task.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerDefinition {
    pub name: String,
    #[serde(default)]
    pub image: String,
    #[serde(default)]
    pub environment: Vec<KeyValue>,
    #[serde(default)]
    pub port_mappings: Vec<PortMapping>,
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default)]
    pub entry_point: Vec<String>,
    /// ECS's default is `true`.
    #[serde(default)]
    pub essential: Option<bool>,
    #[serde(default)]
    pub cpu: Option<u64>,
    #[serde(default)]
    pub memory: Option<u64>,
    #[serde(default)]
    pub docker_labels: BTreeMap<String, String>,
}

impl ContainerDefinition {
    pub fn is_essential(&self) -> bool {
        self.essential.unwrap_or(true)
    }
}

/// `{"name": ..., "value": ...}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct KeyValue {
    pub name: String,
    #[serde(default)]
    pub value: String,
}

/// `{"containerPort": 4567, "hostPort": 80, "protocol": "tcp"}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    pub container_port: u16,
    #[serde(default)]
    pub host_port: Option<u16>,
    #[serde(default)]
    pub protocol: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wrapped {
    task_definition: TaskDefinition,
}

/// Parses and validates a task definition document.
pub fn parse(bytes: &[u8]) -> Result<TaskDefinition, String> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(format!(
            "task definition is {} bytes; the limit is {MAX_FILE_BYTES}",
            bytes.len()
        ));
    }
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("not valid JSON: {e}"))?;
    let td: TaskDefinition = if value.get("taskDefinition").is_some() {
        serde_json::from_value::<Wrapped>(value).map(|w| w.task_definition)
    } else {
        serde_json::from_value(value)
    }
    .map_err(|e| format!("not an ECS task definition: {e}"))?;
    validate(&td)?;
    Ok(td)
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn validate(td: &TaskDefinition) -> Result<(), String> {
    if !valid_name(&td.family) {
        return Err(format!(
            "family {:?} must be 1-255 letters, digits, '-' or '_'",
            td.family
        ));
    }
    if td.container_definitions.is_empty() {
        return Err("containerDefinitions is empty".into());
    }
    if td.container_definitions.len() > MAX_CONTAINERS {
        return Err(format!("more than {MAX_CONTAINERS} containerDefinitions"));
    }
    let mut names = BTreeSet::new();
    for c in &td.container_definitions {
        if !valid_name(&c.name) {
            return Err(format!(
                "container name {:?} must be 1-255 letters, digits, '-' or '_'",
                c.name
            ));
        }
        if !names.insert(c.name.as_str()) {
            return Err(format!("container name {:?} is used twice", c.name));
        }
        if c.image.is_empty() && c.entry_point.is_empty() && c.command.is_empty() {
            return Err(format!(
                "container {:?} has no image, entryPoint or command",
                c.name
            ));
        }
        let mut ports = BTreeSet::new();
        for p in &c.port_mappings {
            if p.container_port == 0 {
                return Err(format!("container {:?}: containerPort 0", c.name));
            }
            let proto = p.protocol.as_deref().unwrap_or("tcp").to_ascii_lowercase();
            if proto != "tcp" && proto != "udp" {
                return Err(format!(
                    "container {:?}: protocol {proto:?} is not tcp or udp",
                    c.name
                ));
            }
            if !ports.insert((p.container_port, proto)) {
                return Err(format!(
                    "container {:?}: containerPort {} mapped twice",
                    c.name, p.container_port
                ));
            }
        }
        for kv in &c.environment {
            if kv.name.is_empty() || kv.name.contains(['=', '\0']) || kv.value.contains('\0') {
                return Err(format!(
                    "container {:?}: bad environment entry {:?}",
                    c.name, kv.name
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const STOCK: &str = r#"{
        "family": "stock-price",
        "containerDefinitions": [{
            "environment": [
                {"name": "SERVICE_4567_NAME", "value": "stock-price"},
                {"name": "SERVICE_4567_CHECK_HTTP", "value": "/health"},
                {"name": "SERVICE_4567_CHECK_INTERVAL", "value": "10s"},
                {"name": "SERVICE_TAGS", "value": "http"}
            ],
            "name": "stock-price",
            "image": "my_docker_hub_repo/stock-price",
            "cpu": 100, "memory": 200,
            "portMappings": [{"containerPort": 4567}],
            "essential": true
        }]
    }"#;

    #[test]
    fn the_article_definition() {
        let td = parse(STOCK.as_bytes()).unwrap();
        assert_eq!(td.family, "stock-price");
        let c = &td.container_definitions[0];
        assert_eq!(c.environment.len(), 4);
        assert_eq!(c.port_mappings[0].container_port, 4567);
        assert_eq!(c.port_mappings[0].host_port, None);
        assert!(c.is_essential());
        assert_eq!((c.cpu, c.memory), (Some(100), Some(200)));
        let wrapped = format!("{{\"taskDefinition\": {STOCK}}}");
        assert_eq!(parse(wrapped.as_bytes()).unwrap(), td);
    }

    #[test]
    fn bad_documents() {
        let cases: &[(&str, &str)] = &[
            ("", "not valid JSON"),
            ("[]", "not an ECS task definition"),
            (r#"{"family": "a b", "containerDefinitions": []}"#, "family"),
            (r#"{"family": "a", "containerDefinitions": []}"#, "empty"),
            (
                r#"{"family": "a", "containerDefinitions": [{"name": "x"}]}"#,
                "no image",
            ),
            (
                r#"{"family": "a", "containerDefinitions": [{"name": "x", "image": "i"}, {"name": "x", "image": "i"}]}"#,
                "twice",
            ),
            (
                r#"{"family": "a", "containerDefinitions": [{"name": "x", "image": "i", "portMappings": [{"containerPort": 0}]}]}"#,
                "containerPort 0",
            ),
            (
                r#"{"family": "a", "containerDefinitions": [{"name": "x", "image": "i", "portMappings": [{"containerPort": 70000}]}]}"#,
                "not an ECS",
            ),
            (
                r#"{"family": "a", "containerDefinitions": [{"name": "x", "image": "i", "portMappings": [{"containerPort": 1, "protocol": "sctp"}]}]}"#,
                "sctp",
            ),
            (
                r#"{"family": "a", "containerDefinitions": [{"name": "x", "image": "i", "environment": [{"name": "A=B", "value": ""}]}]}"#,
                "environment",
            ),
        ];
        for (doc, want) in cases {
            let e = parse(doc.as_bytes()).unwrap_err();
            assert!(e.contains(want), "{doc}: {e}");
        }
        let big = vec![b' '; MAX_FILE_BYTES + 1];
        assert!(parse(&big).unwrap_err().contains("limit"));
    }
}
