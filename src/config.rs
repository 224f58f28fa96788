//! The configuration: one TOML file, `MCPSIEM_*` environment overrides, then flags.
//!
//! Precedence, lowest first: built-in defaults, the TOML file (`--config`, or
//! `$MCPSIEM_CONFIG`, or `./mcpsiem.toml` when present), environment variables
//! (`MCPSIEM_KAFKA__BROKERS=host:9092` sets `kafka.brokers`: sections are joined with a
//! double underscore), then `--set kafka.brokers=host:9092` flags and the subcommands' own
//! flags. Every setting is documented in `docs/configuration.md`.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use mcpsiem_detect::DetectConfig;
use mcpsiem_ingest::IngestConfig;
use mcpsiem_query::QueryConfig;
use mcpsiem_runtime::kafka::KafkaConfig;
use serde::{Deserialize, Serialize};

/// `MCPSIEM_*` variables that are not settings: the config file's path, the Tansu binary's
/// path, `mcpsiem query --server`'s API key and the `mcpsiem` binary `mcpsiem-bench` runs.
const NOT_SETTINGS: &[&str] = &["config", "tansu", "api_key", "bin"];

/// The whole configuration, one section per concern.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub kafka: KafkaConfig,
    pub lake: LakeConfig,
    pub decoder: DecoderConfig,
    pub ingest: IngestConfig,
    pub detect: DetectConfig,
    pub query: QueryConfig,
    pub site: SiteConfig,
    pub collect: mcpsiem_collect::config::CollectConfig,
    pub delivery: mcpsiem_deliver::DeliveryConfig,
    pub evidence: mcpsiem_query::export::EvidenceConfig,
    pub log: LogConfig,
}

/// Where the Parquet lake lives.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LakeConfig {
    /// A local directory or an object-store URL (`s3://bucket/prefix`, `gs://…`, `az://…`).
    /// Cloud credentials come from the provider's usual environment variables.
    pub location: String,
    /// The object store's own options, as `object_store` names them (`aws_endpoint`,
    /// `aws_allow_http`, `aws_region`, `aws_access_key_id`…): they take precedence over the
    /// environment. Empty for a local lake. See docs/scaling.md.
    #[serde(deserialize_with = "scalar_strings")]
    pub options: std::collections::BTreeMap<String, String>,
}

/// A map whose values may be written as strings, booleans or numbers (`--set
/// lake.options.aws_allow_http=true` gives a boolean), kept as the strings the object store
/// parses.
fn scalar_strings<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<std::collections::BTreeMap<String, String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        Text(String),
        Flag(bool),
        Whole(i64),
        Number(f64),
    }
    let map = std::collections::BTreeMap::<String, Scalar>::deserialize(deserializer)?;
    Ok(map
        .into_iter()
        .map(|(key, value)| {
            let text = match value {
                Scalar::Text(text) => text,
                Scalar::Flag(flag) => flag.to_string(),
                Scalar::Whole(n) => n.to_string(),
                Scalar::Number(n) => n.to_string(),
            };
            (key, text)
        })
        .collect())
}

impl Default for LakeConfig {
    fn default() -> Self {
        Self { location: "data/lake".into(), options: Default::default() }
    }
}

impl LakeConfig {
    /// The lake these settings name.
    pub fn open(&self) -> Result<mcpsiem_lake::Lake, mcpsiem_lake::LakeError> {
        mcpsiem_lake::Lake::open_with(&self.location, &self.options)
    }
}

/// How incoming records are decoded (ingester, intake).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DecoderConfig {
    /// Largest record accepted, in bytes; larger ones are dead-lettered as `too_large`.
    pub max_record_bytes: usize,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        Self { max_record_bytes: mcpsiem_event::DEFAULT_MAX_RECORD_BYTES }
    }
}

/// Settings shared by every collector of a site.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SiteConfig {
    /// The key of the HMAC-SHA256 token fingerprints. The same on every collector of the
    /// site, so one token has one fingerprint everywhere. Secret: masked by `config show`.
    pub token_key: String,
}

/// Logging.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` for people, `json` for log shippers.
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `mcpsiem=debug,rdkafka=warn`; `RUST_LOG` wins.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { format: LogFormat::Text, level: "info".into() }
    }
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {path} does not exist (given by {source_of_path})")]
    MissingFile { path: PathBuf, source_of_path: &'static str },
    #[error("`--set {0}` is not of the form section.key=value")]
    BadOverride(String),
    #[error("invalid configuration: {0}\n(see docs/configuration.md for every setting)")]
    Invalid(Box<figment::Error>),
}

/// Where the configuration came from, for `config show`.
#[derive(Clone, Debug, Default)]
pub struct ConfigSources {
    pub file: Option<PathBuf>,
}

impl Config {
    /// Loads defaults, the file, the environment and the `--set` overrides, in that order.
    pub fn load(file: Option<&Path>, overrides: &[String]) -> Result<(Self, ConfigSources), ConfigError> {
        Self::load_from(file, overrides, Env::prefixed("MCPSIEM_").split("__").ignore(NOT_SETTINGS))
    }

    fn load_from(file: Option<&Path>, overrides: &[String], env: Env) -> Result<(Self, ConfigSources), ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        let file = match file {
            Some(path) if !path.exists() => {
                return Err(ConfigError::MissingFile {
                    path: path.to_owned(),
                    source_of_path: "--config or MCPSIEM_CONFIG",
                });
            }
            Some(path) => Some(path.to_owned()),
            None => Some(PathBuf::from("mcpsiem.toml")).filter(|p| p.exists()),
        };
        if let Some(path) = &file {
            figment = figment.merge(Toml::file_exact(path));
        }
        figment = figment.merge(env);
        for item in overrides {
            let (key, value) = item.split_once('=').ok_or_else(|| ConfigError::BadOverride(item.clone()))?;
            if key.trim().is_empty() {
                return Err(ConfigError::BadOverride(item.clone()));
            }
            figment = figment.merge(Serialized::global(key.trim(), parse_override_value(value.trim())));
        }
        let config = figment.extract().map_err(|e| ConfigError::Invalid(Box::new(e)))?;
        Ok((config, ConfigSources { file }))
    }

    /// The effective configuration as TOML, with every secret replaced by `***`.
    pub fn to_masked_toml(&self) -> String {
        let mut value = toml::Value::try_from(self).expect("the configuration is always representable in TOML");
        mask_secrets(&mut value);
        toml::to_string_pretty(&value).expect("a TOML value always prints")
    }
}

/// `--set a.b=42` gives an integer, `=true` a boolean, anything else a string.
fn parse_override_value(text: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {text}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(text.to_owned()))
}

/// Setting names that hold secrets wherever they appear, our own (`site.token_key`) and
/// passed-through librdkafka properties (`sasl.password`, `ssl.key.password`) alike.
fn is_secret_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["password", "secret", "key", "token", "private"].iter().any(|w| name.contains(w))
}

fn mask_secrets(value: &mut toml::Value) {
    if let toml::Value::Table(table) = value {
        // A Slack or Teams webhook URL is itself the credential.
        let url_is_secret = matches!(table.get("type").and_then(|t| t.as_str()), Some("slack" | "teams"));
        if url_is_secret && let Some(toml::Value::String(url)) = table.get_mut("url") {
            *url = "***".into();
        }
        for (key, item) in table.iter_mut() {
            match item {
                toml::Value::String(s) if is_secret_name(key) && !s.is_empty() => *s = "***".into(),
                _ => mask_secrets(item),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail closure returns its own error type
    fn defaults_then_file_then_env_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mcpsiem.toml");
        std::fs::write(
            &path,
            "[kafka]\nbrokers = \"file:9092\"\nevents_topic = \"from-file\"\n[decoder]\nmax_record_bytes = 10\n",
        )
        .unwrap();

        figment::Jail::expect_with(|jail| {
            jail.set_env("MCPSIEM_KAFKA__EVENTS_TOPIC", "from-env");
            jail.set_env("MCPSIEM_DECODER__MAX_RECORD_BYTES", "20");
            let (config, sources) = Config::load(Some(&path), &["decoder.max_record_bytes=30".into()]).unwrap();
            assert_eq!(sources.file.as_deref(), Some(path.as_path()));
            assert_eq!(config.kafka.brokers, "file:9092");
            assert_eq!(config.kafka.events_topic, "from-env");
            assert_eq!(config.decoder.max_record_bytes, 30);
            assert_eq!(config.kafka.alerts_topic, KafkaConfig::default().alerts_topic);
            Ok(())
        });
    }

    #[test]
    fn unknown_settings_and_bad_types_are_reported_with_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "[kafka]\nbrokerz = \"x\"\n").unwrap();
        let err = Config::load_from(Some(&path), &[], Env::raw().only(&[])).unwrap_err().to_string();
        assert!(err.contains("brokerz"), "{err}");

        let err = Config::load_from(None, &["decoder.max_record_bytes=lots".into()], Env::raw().only(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_record_bytes"), "{err}");
        assert!(matches!(
            Config::load_from(None, &["novalue".into()], Env::raw().only(&[])),
            Err(ConfigError::BadOverride(_))
        ));
        assert!(matches!(
            Config::load_from(Some(Path::new("/nonexistent/x.toml")), &[], Env::raw().only(&[])),
            Err(ConfigError::MissingFile { .. })
        ));
    }

    #[test]
    fn object_store_options_take_strings_flags_and_numbers_as_text() {
        let overrides = ["lake.options.aws_allow_http=true".to_string(), "lake.options.aws_max_retries=3".to_string()];
        let (config, _) = Config::load_from(None, &overrides, Env::raw().only(&[])).unwrap();
        assert_eq!(config.lake.options["aws_allow_http"], "true");
        assert_eq!(config.lake.options["aws_max_retries"], "3");
        let text = "[lake]\nlocation = \"s3://b/p\"\n[lake.options]\naws_endpoint = \"http://127.0.0.1:9000\"\n";
        let config: Config = toml::from_str(text).unwrap();
        assert_eq!(config.lake.options["aws_endpoint"], "http://127.0.0.1:9000");
        // An unknown option is refused when the lake opens, naming it.
        let mut wrong = config.lake.clone();
        wrong.options.insert("aws_endpiont".into(), "x".into());
        assert!(wrong.open().unwrap_err().to_string().contains("`aws_endpiont` is not an option of S3"));
        let local = LakeConfig { location: "data/lake".into(), options: wrong.options };
        assert!(local.open().unwrap_err().to_string().contains("local directory"));
    }

    #[test]
    fn a_misspelled_destination_setting_is_named() {
        let text = "[delivery.destinations.hook]\ntype = \"webhook\"\nurl = \"http://x\"\nsecrte = \"s\"\n";
        let err = toml::from_str::<Config>(text).unwrap_err().to_string();
        assert!(err.contains("secrte"), "{err}");
        let text = "[delivery.destinations.hook]\ntype = \"carrier_pigeon\"\n";
        let err = toml::from_str::<Config>(text).unwrap_err().to_string();
        assert!(err.contains("carrier_pigeon"), "{err}");
    }

    #[test]
    fn secrets_are_masked_when_shown() {
        let mut config = Config::default();
        config.site.token_key = "s3cr3t-site-key".into();
        config.kafka.properties.insert("sasl.password".into(), "hunter2".into());
        config.kafka.properties.insert("security.protocol".into(), "SASL_SSL".into());
        let slack = r#"
[delivery.destinations.soc]
type = "slack"
url = "https://hooks.slack.com/services/T0/B0/XYZsecret"
[delivery.destinations.pager]
type = "pagerduty"
routing_key = "pd-routing-secret"
"#;
        config.delivery = toml::from_str::<Config>(slack).unwrap().delivery;
        let shown = config.to_masked_toml();
        assert!(!shown.contains("s3cr3t-site-key") && !shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("XYZsecret") && !shown.contains("pd-routing-secret"), "{shown}");
        assert!(shown.contains("SASL_SSL"), "{shown}");
        assert!(shown.contains("***"));
    }

    /// Every setting's key and default, as `docs/configuration.md` documents them: the
    /// `### \`[section]\`` headings and the `| \`key\` | default | meaning |` rows under them.
    fn documented_settings(document: &str) -> std::collections::BTreeMap<String, String> {
        let mut settings = std::collections::BTreeMap::new();
        let mut section: Option<String> = None;
        for line in document.lines() {
            if let Some(heading) = line.strip_prefix("### `[").and_then(|h| h.strip_suffix("]`")) {
                section = Some(heading.to_string());
            } else if line.starts_with("## ") {
                section = None;
            } else if let (Some(section), Some(row)) = (&section, line.strip_prefix("| `")) {
                let mut cells = row.split(" | ");
                let key = cells.next().unwrap_or_default().trim_end_matches('`');
                let default = cells.next().unwrap_or_default().trim().trim_matches('`');
                settings.insert(format!("{section}.{key}"), default.to_string());
            }
        }
        settings
    }

    /// A default as the document writes it: strings bare (`""` when empty), the rest as TOML.
    fn shown_default(value: &toml::Value) -> String {
        match value {
            toml::Value::String(s) if s.is_empty() => "\"\"".into(),
            toml::Value::String(s) => s.clone(),
            toml::Value::Table(t) if t.is_empty() => "{}".into(),
            other => other.to_string(),
        }
    }

    /// The leaf settings of the defaults: a table is a leaf when the document lists it as a
    /// row (a map such as `kafka.properties`), else its keys are settings of a subsection.
    fn default_settings(
        prefix: &str,
        table: &toml::Table,
        documented: &std::collections::BTreeMap<String, String>,
        out: &mut std::collections::BTreeMap<String, String>,
    ) {
        for (key, value) in table {
            let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
            match value {
                toml::Value::Table(inner) if !documented.contains_key(&path) => {
                    default_settings(&path, inner, documented, out)
                }
                _ => {
                    out.insert(path, shown_default(value));
                }
            }
        }
    }

    #[test]
    fn configuration_md_documents_every_setting_with_its_default() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/configuration.md");
        let documented = documented_settings(&std::fs::read_to_string(path).expect("docs/configuration.md"));
        let defaults = toml::Table::try_from(Config::default()).unwrap();
        let mut actual = std::collections::BTreeMap::new();
        default_settings("", &defaults, &documented, &mut actual);
        let undocumented: Vec<_> = actual.keys().filter(|k| !documented.contains_key(*k)).collect();
        let unknown: Vec<_> = documented.keys().filter(|k| !actual.contains_key(*k)).collect();
        let wrong: Vec<_> = actual
            .iter()
            .filter_map(|(k, v)| {
                documented.get(k).filter(|d| *d != v).map(|d| format!("{k}: documented `{d}`, default `{v}`"))
            })
            .collect();
        assert!(
            undocumented.is_empty() && unknown.is_empty() && wrong.is_empty(),
            "docs/configuration.md disagrees with the configuration structs:\n\
             settings without a row: {undocumented:?}\n\
             rows that are no setting: {unknown:?}\n\
             defaults that differ: {wrong:#?}"
        );
    }
}
