//! Helpers shared by the end-to-end tests: a real Tansu broker per test and topic set-up.
#![allow(dead_code)]

use mcpsiem::broker::TansuBroker;
use mcpsiem_event::kafka::KafkaConfig;

/// A broker in a fresh directory, with the directory kept alive as long as the broker.
pub struct TestBroker {
    pub broker: TansuBroker,
    pub dir: tempfile::TempDir,
}

impl TestBroker {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let broker = TansuBroker::start(dir.path(), None).unwrap_or_else(|e| panic!("{e}"));
        Self { broker, dir }
    }

    /// A Kafka configuration for this broker with topics unique to `name`.
    pub fn kafka_config(&self, name: &str) -> KafkaConfig {
        KafkaConfig {
            brokers: self.broker.bootstrap(),
            events_topic: format!("{name}.events"),
            alerts_topic: format!("{name}.alerts"),
            ..KafkaConfig::default()
        }
    }
}

pub async fn create_topic(kafka: &KafkaConfig, topic: &str, partitions: i32) {
    mcpsiem::kafka_out::ensure_topic(kafka, topic, partitions)
        .await
        .unwrap_or_else(|e| panic!("creating topic {topic}: {e}"));
}
