//! Helpers shared by the end-to-end tests: a real Tansu broker per test and topic set-up.
#![allow(dead_code)]

use std::time::Duration;

use mcpsiem::broker::TansuBroker;
use mcpsiem_event::kafka::KafkaConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;

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
    let admin: AdminClient<DefaultClientContext> = kafka.client_config().create().expect("an admin client");
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics(&[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))], &options)
        .await
        .expect("create_topics answered");
    for result in results {
        result.unwrap_or_else(|(name, code)| panic!("creating topic {name}: {code}"));
    }
}
