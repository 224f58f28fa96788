//! `mcpsiem gen`: writes generated events as NDJSON, or produces them to the events topic.

use std::io::{BufWriter, Write};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use mcpsiem_event::Timestamp;
use mcpsiem_gen::{GenOptions, Generator, Scenario};

use crate::cli::generate::GenArgs;
use crate::config::Config;

fn parse_attacks(names: &[String]) -> Result<Vec<Scenario>> {
    if names.iter().any(|n| n == "all") {
        return Ok(Scenario::ALL.to_vec());
    }
    names
        .iter()
        .map(|name| {
            Scenario::parse(name).with_context(|| {
                let known: Vec<&str> = Scenario::ALL.iter().map(|s| s.name()).collect();
                format!("unknown attack `{name}`; known: all, {}", known.join(", "))
            })
        })
        .collect()
}

/// The start of a file's period when none is given: fixed, so a seed always gives one file.
const FILE_START: &str = "2026-11-02T00:00:00Z";

/// Where the generated period starts. Events produced to Kafka go through the ingester's
/// age and future bounds (`ingest.max_event_age_hours`, `ingest.max_event_future_seconds`):
/// by default their period ends two hours before `now` (a fixed past date would make them
/// all `too_old`, and a period ending `now` could run past it into `in_future`).
fn period_start(given: Option<&str>, kafka: bool, days: u32, now: Timestamp) -> Result<Timestamp> {
    const DAY_US: i64 = 86_400_000_000;
    match given {
        Some(text) => Timestamp::parse(text).with_context(|| format!("--start {text}: use RFC 3339")),
        None if kafka => Ok(Timestamp::from_micros(
            now.as_micros().saturating_sub(i64::from(days) * DAY_US).saturating_sub(mcpsiem_gen::OVERRUN_MARGIN_MICROS),
        )),
        None => Ok(Timestamp::parse(FILE_START).expect("a valid constant")),
    }
}

pub fn generate(config: &Config, args: GenArgs) -> Result<()> {
    if args.list_attacks {
        for scenario in Scenario::ALL {
            println!("{:<26} {}", scenario.name(), scenario.description());
        }
        return Ok(());
    }
    let options = GenOptions {
        seed: args.seed,
        events: args.events,
        start: period_start(args.start.as_deref(), args.kafka, args.days, Timestamp::now())?,
        days: args.days,
        users: args.users,
        attacks: parse_attacks(&args.attacks)?,
        attack_repeats: args.attack_repeats,
        profile: mcpsiem_gen::TrafficProfile::parse(&args.profile).context("clap checked the profile")?,
        token_key: if config.site.token_key.is_empty() {
            GenOptions::default().token_key
        } else {
            config.site.token_key.clone()
        },
    };
    let mut generator = Generator::new(options);
    let bar = mcpsiem_runtime::progress::counter(args.events, "events");
    let started = Instant::now();
    if args.kafka {
        if config.kafka.brokers.is_empty() {
            bail!(
                "--kafka needs kafka.brokers: set it in the configuration, MCPSIEM_KAFKA__BROKERS or --set kafka.brokers=HOST:PORT"
            );
        }
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        runtime
            .block_on(mcpsiem_runtime::producer::ensure_topic(
                &config.kafka,
                &config.kafka.events_topic,
                config.kafka.partitions,
            ))
            .with_context(|| format!("creating topic {} on {}", config.kafka.events_topic, config.kafka.brokers))?;
        let producer =
            mcpsiem_runtime::producer::EventProducer::new(&config.kafka).context("creating the Kafka producer")?;
        let mut sent = 0u64;
        let mut payload = Vec::with_capacity(2048);
        for event in generator.by_ref() {
            payload.clear();
            event.write_json(&mut payload);
            producer.send(mcpsiem_runtime::kafka::event_key(&event), &payload)?;
            sent += 1;
            bar.inc(1);
            if args.rate > 0 && sent.is_multiple_of(50) {
                let due = Duration::from_secs_f64(sent as f64 / args.rate as f64);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
        }
        let report = producer.flush(Duration::from_secs(120))?;
        bar.finish_and_clear();
        if report.failed > 0 || report.delivered != sent {
            bail!(
                "{} of {sent} events were not delivered to Kafka ({} failed)",
                sent - report.delivered,
                report.failed
            );
        }
        eprintln!("produced {sent} events to {} in {:.1?}", config.kafka.events_topic, started.elapsed());
    } else {
        let out: Box<dyn Write> = match args.out.as_deref() {
            None => Box::new(std::io::stdout().lock()),
            Some(p) if p.as_os_str() == "-" => Box::new(std::io::stdout().lock()),
            Some(path) => {
                Box::new(std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?)
            }
        };
        let mut out = BufWriter::with_capacity(1 << 20, out);
        let mut line = Vec::with_capacity(2048);
        for event in generator.by_ref() {
            line.clear();
            event.write_json(&mut line);
            line.push(b'\n');
            out.write_all(&line)?;
            bar.inc(1);
        }
        out.flush()?;
        bar.finish_and_clear();
    }
    let summary: Vec<String> = generator.counts.iter().map(|(k, v)| format!("{k}={v}")).collect();
    eprintln!("scenarios: {}", summary.join(" "));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn produced_events_end_before_now_and_files_keep_their_fixed_period() {
        let now = Timestamp::parse("2026-12-03T12:00:00Z").unwrap();
        let start = period_start(None, true, 7, now).unwrap();
        assert_eq!(start, Timestamp::parse("2026-11-26T10:00:00Z").unwrap(), "seven days ending two hours ago");
        assert_eq!(period_start(None, false, 7, now).unwrap(), Timestamp::parse(FILE_START).unwrap());
        let given = period_start(Some("2026-12-01T00:00:00Z"), true, 1, now).unwrap();
        assert_eq!(given, Timestamp::parse("2026-12-01T00:00:00Z").unwrap());
        assert!(period_start(Some("yesterday"), true, 1, now).is_err());
    }
}
