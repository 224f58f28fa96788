//! Producing to Kafka: idempotent, compressed, keyed; and creating topics.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::kafka::KafkaConfig;
use rdkafka::ClientContext;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};

/// Counts deliveries as librdkafka confirms them.
#[derive(Clone, Default)]
pub struct DeliveryCounter {
    pub delivered: Arc<AtomicU64>,
    pub failed: Arc<AtomicU64>,
}

impl ClientContext for DeliveryCounter {}

impl ProducerContext for DeliveryCounter {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.delivered.fetch_add(1, Ordering::Relaxed),
            Err((error, message)) => {
                let failed = self.failed.fetch_add(1, Ordering::Relaxed) + 1;
                // One line per doubling, so an outage does not flood the log.
                if failed.is_power_of_two() {
                    tracing::error!(%error, partition = message.partition(), failed, "event delivery failed");
                }
                failed
            }
        };
    }
}

/// What happened to the events sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeliveryReport {
    pub delivered: u64,
    pub failed: u64,
}

/// Sends events to the events topic.
pub struct EventProducer {
    producer: ThreadedProducer<DeliveryCounter>,
    counter: DeliveryCounter,
    topic: String,
}

impl EventProducer {
    pub fn new(kafka: &KafkaConfig) -> Result<Self, KafkaError> {
        let counter = DeliveryCounter::default();
        let producer = kafka
            .client_config()
            // Idempotence makes librdkafka's own retries safe: no duplicates, order kept per partition.
            .set("enable.idempotence", "true")
            .set("compression.type", "zstd")
            .set("linger.ms", "20")
            .set("message.timeout.ms", "300000")
            .create_with_context(counter.clone())?;
        Ok(Self { producer, counter, topic: kafka.events_topic.clone() })
    }

    /// Queues one event; waits while librdkafka's queue is full instead of dropping it.
    pub fn send(&self, key: Option<&str>, payload: &[u8]) -> Result<(), KafkaError> {
        let mut record = BaseRecord::<str, [u8]>::to(&self.topic).payload(payload);
        if let Some(key) = key {
            record = record.key(key);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    record = returned;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((error, _)) => return Err(error),
            }
        }
    }

    /// Waits until every queued event is delivered or failed.
    pub fn flush(&self, timeout: Duration) -> Result<DeliveryReport, KafkaError> {
        self.producer.flush(timeout)?;
        Ok(self.report())
    }

    pub fn report(&self) -> DeliveryReport {
        DeliveryReport {
            delivered: self.counter.delivered.load(Ordering::Relaxed),
            failed: self.counter.failed.load(Ordering::Relaxed),
        }
    }
}

/// Produces one record at a time and waits until the broker has it (all in-sync
/// replicas): for records whose writer answers "accepted" to someone, such as an analyst's
/// alert change. Keyed, so the records of one key keep their order in one partition.
#[derive(Clone)]
pub struct AckedProducer {
    producer: rdkafka::producer::FutureProducer,
    topic: String,
}

impl AckedProducer {
    /// A producer to `topic`; a record not acknowledged within `timeout` fails.
    pub fn new(kafka: &KafkaConfig, topic: &str, timeout: Duration) -> Result<Self, KafkaError> {
        let producer = kafka
            .client_config()
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("linger.ms", "0")
            .set("message.timeout.ms", timeout.as_millis().max(1).to_string())
            .create()?;
        Ok(Self { producer, topic: topic.to_string() })
    }

    /// Sends `payload` under `key`; returns once the broker acknowledged it.
    pub async fn publish(&self, key: &str, payload: &[u8]) -> Result<(), KafkaError> {
        let record = rdkafka::producer::FutureRecord::to(&self.topic).key(key).payload(payload);
        self.producer.send(record, Duration::ZERO).await.map(drop).map_err(|(error, _)| error)
    }
}

/// Creates `topic` with `partitions` partitions unless it exists. Brokers that auto-create
/// topics would give them one partition, which caps consumer groups at one member.
///
/// A broker that cannot be reached (restarting, say, while the stages of `mcpsiem up` start)
/// is asked again for up to [`TOPIC_RETRY_FOR`] before this fails.
pub async fn ensure_topic(kafka: &KafkaConfig, topic: &str, partitions: i32) -> Result<(), KafkaError> {
    let admin: AdminClient<DefaultClientContext> = kafka.client_config().create()?;
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let started = std::time::Instant::now();
    loop {
        let replication = TopicReplication::Fixed(kafka.replication_factor);
        match create_once(&admin, &options, topic, partitions, replication).await {
            Err(e) if is_unreachable(&e) && started.elapsed() < TOPIC_RETRY_FOR => {
                tracing::warn!(topic, error = %e, "cannot reach the broker to create the topic; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            outcome => return outcome,
        }
    }
}

/// How long [`ensure_topic`] keeps asking a broker it cannot reach.
pub const TOPIC_RETRY_FOR: Duration = Duration::from_secs(60);

async fn create_once(
    admin: &AdminClient<DefaultClientContext>,
    options: &AdminOptions,
    topic: &str,
    partitions: i32,
    replication: TopicReplication<'_>,
) -> Result<(), KafkaError> {
    let results = admin.create_topics(&[NewTopic::new(topic, partitions, replication)], options).await?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => return Err(KafkaError::AdminOp(code)),
        }
    }
    Ok(())
}

fn is_unreachable(error: &KafkaError) -> bool {
    // An admin operation's error carries its code apart: `rdkafka_error_code` says `None`.
    let code = match error {
        KafkaError::AdminOp(code) => Some(*code),
        other => other.rdkafka_error_code(),
    };
    matches!(
        code,
        Some(
            RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::OperationTimedOut
                | RDKafkaErrorCode::RequestTimedOut
                | RDKafkaErrorCode::NetworkException
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_broker_is_retried_also_when_an_admin_operation_says_so() {
        assert!(is_unreachable(&KafkaError::AdminOp(RDKafkaErrorCode::BrokerTransportFailure)));
        assert!(is_unreachable(&KafkaError::MetadataFetch(RDKafkaErrorCode::AllBrokersDown)));
        assert!(!is_unreachable(&KafkaError::AdminOp(RDKafkaErrorCode::TopicAuthorizationFailed)));
        assert!(!is_unreachable(&KafkaError::AdminOp(RDKafkaErrorCode::InvalidReplicationFactor)));
    }
}
