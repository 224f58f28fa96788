//! deploy/ agrees with the code: the compose file and the Kubernetes manifests are valid
//! YAML; every mcpsiem container runs this version's image and a real subcommand; every
//! `MCPSIEM_*` variable (and the shared configuration file) loads as a real setting; every
//! port a container declares, and every probe, is the one its stage listens on; Services
//! and selectors match; the systemd units run real subcommands.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mcpsiem::config::Config;
use serde_norway::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn yaml_documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_norway::Deserializer::from_str(&text)
        .map(|doc| {
            let mut value = Value::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            value.apply_merge().unwrap();
            value
        })
        .collect()
}

use serde::Deserialize;

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => panic!("not a scalar: {other:?}"),
    }
}

fn strings(value: &Value) -> Vec<String> {
    value.as_sequence().map(|s| s.iter().map(text).collect()).unwrap_or_default()
}

/// The configuration a container gets from `file` and its `MCPSIEM_*` variables.
// figment::Jail fixes its closure's error type.
#[allow(clippy::result_large_err)]
fn load(file: &Path, env: &BTreeMap<String, String>) -> Config {
    let mut loaded = None;
    figment::Jail::expect_with(|jail| {
        for (key, value) in env {
            if key.starts_with("MCPSIEM_") && key != "MCPSIEM_CONFIG" {
                jail.set_env(key, value);
            }
        }
        let (config, _) = Config::load(Some(file), &[]).map_err(|e| format!("{e:?}; variables {env:?}"))?;
        loaded = Some(config);
        Ok(())
    });
    loaded.unwrap()
}

/// The port `command`'s stage listens on, by configuration: its main port first.
fn stage_ports(command: &[String], config: &Config) -> Vec<u16> {
    let port = |addr: &str| -> u16 { addr.rsplit(':').next().unwrap().parse().unwrap_or_else(|_| panic!("{addr}")) };
    match command.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["collect", "http"] => vec![port(&config.collect.intake.listen)],
        ["ingest"] => vec![port(&config.ingest.metrics_addr)],
        ["detect"] => vec![port(&config.detect.metrics_addr)],
        ["alerts", "deliver"] => vec![port(&config.delivery.metrics_addr)],
        ["serve"] => vec![port(&config.query.listen), port(&config.query.pg_listen)],
        other => panic!("unexpected command {other:?}"),
    }
}

fn assert_subcommand(command: &[String]) {
    let output =
        std::process::Command::new(env!("CARGO_BIN_EXE_mcpsiem")).args(command).arg("--help").output().unwrap();
    assert!(
        output.status.success(),
        "`mcpsiem {}` is not a command: {}",
        command.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn image() -> String {
    format!("mcpsiem:{}", env!("CARGO_PKG_VERSION"))
}

#[test]
fn the_compose_file_matches_the_code() {
    let dir = root().join("deploy/compose");
    let docs = yaml_documents(&dir.join("docker-compose.yml"));
    let services = docs[0]["services"].as_mapping().unwrap();
    assert!(services.contains_key("kafka"), "a Kafka broker service");
    let kafka = &services["kafka"]["environment"];
    assert_eq!(text(&kafka["KAFKA_PROCESS_ROLES"]), "broker,controller", "Kafka runs in KRaft mode");
    let mut stages = Vec::new();
    for (name, service) in services {
        let name = text(name);
        if name == "kafka" {
            continue;
        }
        assert_eq!(text(&service["image"]), image(), "{name}");
        let command = strings(&service["command"]);
        assert_subcommand(&command);
        let env: BTreeMap<String, String> =
            service["environment"].as_mapping().unwrap().iter().map(|(k, v)| (text(k), text(v))).collect();
        assert_eq!(env["MCPSIEM_KAFKA__BROKERS"], "kafka:9092", "{name} talks to the compose broker");
        let config = load(&dir.join("mcpsiem.toml"), &env);
        let ports = stage_ports(&command, &config);
        let declared: Vec<u16> = strings(&service["ports"])
            .iter()
            .map(|p| p.rsplit(':').next().unwrap().parse().unwrap())
            .chain(strings(&service["expose"]).iter().map(|p| p.parse().unwrap()))
            .collect();
        assert_eq!(declared, ports, "{name}: declared ports vs the ports its configuration listens on");
        let check = strings(&service["healthcheck"]["test"]).join(" ");
        assert!(check.contains(&format!("127.0.0.1:{}/readyz", ports[0])), "{name}: {check}");
        for address in [&config.query.listen, &config.collect.intake.listen] {
            if ports.iter().any(|p| address.ends_with(&format!(":{p}"))) {
                assert!(address.starts_with("0.0.0.0:"), "{name} listens beyond the container: {address}");
            }
        }
        if command == ["serve"] {
            let key = &config.evidence.signing_key;
            assert!(strings(&service["secrets"]).iter().any(|s| key.ends_with(s.as_str())), "{name}: {key}");
        }
        stages.push((name, command, config));
    }
    let scopes: Vec<String> =
        stages.iter().filter(|(_, c, _)| c == &["detect"]).map(|(_, _, c)| format!("{:?}", c.detect.scope)).collect();
    assert_eq!(scopes, ["Keyed", "Global"], "keyed detectors and the one global detector");
    let groups: Vec<&str> =
        stages.iter().filter(|(_, c, _)| c == &["detect"]).map(|(_, _, c)| c.detect.group_id.as_str()).collect();
    assert_ne!(groups[0], groups[1], "the global detector has its own consumer group");
    assert_eq!(stages.len(), 6, "intake, ingest, detect, detect-global, delivery, query");
}

#[test]
fn the_kubernetes_manifests_match_the_code() {
    let dir = root().join("deploy/k8s");
    let kustomization = &yaml_documents(&dir.join("kustomization.yaml"))[0];
    let mut documents = Vec::new();
    for file in strings(&kustomization["resources"]) {
        documents.extend(yaml_documents(&dir.join(&file)));
    }
    let kind = |doc: &Value| text(&doc["kind"]);
    let config_map = documents.iter().find(|d| kind(d) == "ConfigMap").unwrap();
    let config_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(config_file.path(), text(&config_map["data"]["mcpsiem.toml"])).unwrap();
    let secrets: BTreeMap<(String, String), String> = documents
        .iter()
        .filter(|d| kind(d) == "Secret")
        .flat_map(|d| {
            let name = text(&d["metadata"]["name"]);
            d["stringData"]
                .as_mapping()
                .unwrap()
                .iter()
                .map(move |(k, v)| ((name.clone(), text(k)), text(v)))
                .collect::<Vec<_>>()
        })
        .collect();
    let services: Vec<&Value> = documents.iter().filter(|d| kind(d) == "Service").collect();
    let mut components = Vec::new();
    for deployment in documents.iter().filter(|d| kind(d) == "Deployment") {
        let name = text(&deployment["metadata"]["name"]);
        let labels = &deployment["spec"]["template"]["metadata"]["labels"];
        for (key, value) in deployment["spec"]["selector"]["matchLabels"].as_mapping().unwrap() {
            assert_eq!(&labels[text(key).as_str()], value, "{name}: the selector matches the pods");
        }
        let container = &deployment["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(text(&container["image"]), image(), "{name}");
        let command = strings(&container["args"]);
        assert_subcommand(&command);
        let mut env = BTreeMap::new();
        for variable in container["env"].as_sequence().unwrap() {
            let key = text(&variable["name"]);
            let value = match variable.get("value") {
                Some(value) => text(value),
                None => {
                    let reference = &variable["valueFrom"]["secretKeyRef"];
                    let at = (text(&reference["name"]), text(&reference["key"]));
                    secrets.get(&at).unwrap_or_else(|| panic!("{name}: no secret {at:?}")).clone()
                }
            };
            env.insert(key, value);
        }
        for source in container["envFrom"].as_sequence().into_iter().flatten() {
            let secret = text(&source["secretRef"]["name"]);
            assert!(secrets.keys().any(|(s, _)| *s == secret), "{name}: no secret {secret}");
        }
        let config = load(config_file.path(), &env);
        assert!(config.lake.location.starts_with("s3://"), "the lake is on object storage");
        let ports = stage_ports(&command, &config);
        let declared: BTreeMap<String, u16> = container["ports"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|p| (text(&p["name"]), text(&p["containerPort"]).parse().unwrap()))
            .collect();
        assert_eq!(declared.values().copied().collect::<Vec<_>>(), ports, "{name}: container ports vs configuration");
        for probe in ["readinessProbe", "livenessProbe"] {
            let port = text(&container[probe]["httpGet"]["port"]);
            assert_eq!(declared.get(&port), Some(&ports[0]), "{name}: {probe} on the stage's port");
        }
        let mounted = |path: &str| {
            container["volumeMounts"].as_sequence().unwrap().iter().any(|m| path.starts_with(&text(&m["mountPath"])))
        };
        if command == ["serve"] {
            assert!(mounted(&config.evidence.signing_key), "{name}: the signing key is mounted");
        }
        if command == ["alerts", "deliver"] {
            assert!(mounted(&config.delivery.outbox_path.display().to_string()), "{name}: the outbox is on a volume");
            assert_eq!(text(&deployment["spec"]["replicas"]), "1");
        }
        for service in &services {
            let selector = &service["spec"]["selector"];
            if text(&selector["app.kubernetes.io/component"]) == text(&labels["app.kubernetes.io/component"]) {
                for port in service["spec"]["ports"].as_sequence().unwrap() {
                    assert!(
                        declared.contains_key(&text(&port["targetPort"])),
                        "{name}: Service targets a declared port"
                    );
                }
            }
        }
        components.push((
            name,
            text(&deployment["spec"]["replicas"]),
            config.detect.scope,
            config.detect.group_id.clone(),
        ));
    }
    let detectors: Vec<_> = components.iter().filter(|(n, ..)| n.starts_with("mcpsiem-detect")).collect();
    assert_eq!(detectors.len(), 2);
    let keyed = detectors.iter().find(|d| d.2 == mcpsiem_detect::rules::RuleScope::Keyed).unwrap();
    let global = detectors.iter().find(|d| d.2 == mcpsiem_detect::rules::RuleScope::Global).unwrap();
    assert!(keyed.1.parse::<u32>().unwrap() >= 2, "keyed detectors scale by replicas");
    assert_eq!(global.1, "1", "one global detector");
    assert_ne!(keyed.3, global.3);
    let ingest = components.iter().find(|c| c.0 == "mcpsiem-ingest").unwrap();
    assert!(ingest.1.parse::<u32>().unwrap() >= 2, "ingesters scale by replicas");
}

#[test]
fn the_systemd_units_run_real_commands() {
    let dir = root().join("deploy/systemd");
    let mut units = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let unit = std::fs::read_to_string(&path).unwrap();
        let exec = unit.lines().find_map(|l| l.strip_prefix("ExecStart=")).unwrap();
        let mut words = exec.split_whitespace();
        assert_eq!(words.next(), Some("/usr/local/bin/mcpsiem"), "{}", path.display());
        let args: Vec<String> = words.take_while(|w| !w.starts_with("--")).map(str::to_string).collect();
        assert_subcommand(&args);
        assert!(unit.contains("Environment=MCPSIEM_CONFIG=/etc/mcpsiem/mcpsiem.toml"));
        units += 1;
    }
    assert_eq!(units, 6);
}
