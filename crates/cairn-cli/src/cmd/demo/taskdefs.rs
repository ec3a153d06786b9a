//! The article's task definitions (apps/ecs/*.json, embedded so the demo runs from any
//! directory) and the per-instance copies the demo hands to `cairn tasks run`: the family
//! renamed per copy, the environment extended (the portal's DNS server, the address to
//! bind) and, for the portal, its host port set. Pure JSON in, JSON out.

use serde_json::{json, Value};

const STOCK_PRICE: &str = include_str!("../../../../../apps/ecs/stock-price.json");
const WEATHER: &str = include_str!("../../../../../apps/ecs/weather.json");
const PORTAL: &str = include_str!("../../../../../apps/ecs/portal.json");

/// The embedded task definition of `family`.
pub fn base(family: &str) -> Result<Value, String> {
    let text = match family {
        "stock-price" => STOCK_PRICE,
        "weather" => WEATHER,
        "portal" => PORTAL,
        other => return Err(format!("no task definition for {other:?}")),
    };
    serde_json::from_str(text).map_err(|e| format!("task definition {family}: {e}"))
}

/// A copy of `def` named `family`, with `env` added to every container (replacing
/// variables of the same name) and, when `host_port` is given, every port mapping's
/// `hostPort` set to it (`None` removes `hostPort`: a dynamic port).
pub fn instance(
    def: &Value,
    family: &str,
    env: &[(String, String)],
    host_port: Option<u16>,
) -> Result<Value, String> {
    let mut out = def.clone();
    let obj = out
        .as_object_mut()
        .ok_or("a task definition must be a JSON object")?;
    obj.insert("family".into(), json!(family));
    let containers = obj
        .get_mut("containerDefinitions")
        .and_then(Value::as_array_mut)
        .ok_or("the task definition has no containerDefinitions")?;
    for c in containers {
        let c = c
            .as_object_mut()
            .ok_or("a container definition must be a JSON object")?;
        let vars = c
            .entry("environment")
            .or_insert_with(|| json!([]))
            .as_array_mut()
            .ok_or("environment must be a list")?;
        for (k, v) in env {
            vars.retain(|e| e.get("name").and_then(Value::as_str) != Some(k.as_str()));
            vars.push(json!({"name": k, "value": v}));
        }
        if let Some(maps) = c.get_mut("portMappings").and_then(Value::as_array_mut) {
            for m in maps.iter_mut().filter_map(Value::as_object_mut) {
                match host_port {
                    Some(p) => m.insert("hostPort".into(), json!(p)),
                    None => m.remove("hostPort"),
                };
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_definitions_parse() {
        for f in super::super::plan::FAMILIES {
            let d = base(f).unwrap();
            assert_eq!(d["family"], f);
            assert_eq!(
                d["containerDefinitions"][0]["portMappings"][0]["containerPort"],
                4567
            );
        }
        assert!(base("nope").is_err());
    }

    #[test]
    fn an_instance_gets_its_family_env_and_port() {
        let d = base("portal").unwrap();
        let env = vec![
            ("DNS_SERVER".to_string(), "127.0.0.2:8600".to_string()),
            ("BIND".to_string(), "0.0.0.0".to_string()),
        ];
        let i = instance(&d, "portal-1", &env, Some(8080)).unwrap();
        assert_eq!(i["family"], "portal-1");
        let c = &i["containerDefinitions"][0];
        assert_eq!(c["portMappings"][0]["hostPort"], 8080);
        assert_eq!(c["portMappings"][0]["containerPort"], 4567);
        assert_eq!(c["environment"][0]["name"], "DNS_SERVER");
        assert_eq!(c["environment"][0]["value"], "127.0.0.2:8600");

        let d = base("stock-price").unwrap();
        let env = vec![("SERVICE_TAGS".to_string(), "http,demo".to_string())];
        let i = instance(&d, "stock-price-2", &env, None).unwrap();
        let c = &i["containerDefinitions"][0];
        assert!(c["portMappings"][0].get("hostPort").is_none());
        let tags: Vec<&Value> = c["environment"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["name"] == "SERVICE_TAGS")
            .collect();
        assert_eq!(tags.len(), 1, "replaced, not duplicated");
        assert_eq!(tags[0]["value"], "http,demo");
        assert_eq!(c["environment"][0]["name"], "SERVICE_4567_NAME");

        assert!(instance(&json!([]), "x", &[], None).is_err());
        assert!(instance(&json!({"family": "x"}), "x", &[], None).is_err());
    }
}
