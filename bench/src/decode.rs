//! `mcpsiem bench`: measured figures against named baselines, in the same run.

use std::hint::black_box;
use std::time::{Duration, Instant};

use mcpsiem_event::EventDecoder;
use serde::Serialize;

use mcpsiem_gen::{GenOptions, Generator, Scenario};

/// Generated NDJSON and the byte range of each line.
pub struct NdjsonCorpus {
    pub bytes: Vec<u8>,
    pub lines: Vec<std::ops::Range<usize>>,
}

impl NdjsonCorpus {
    pub fn generate(events: u64, seed: u64) -> Self {
        let options = GenOptions { events, seed, days: 7, attacks: Scenario::ALL.to_vec(), ..GenOptions::default() };
        let mut bytes = Vec::with_capacity(events as usize * 900);
        let mut lines = Vec::with_capacity(events as usize);
        for event in Generator::new(options) {
            let start = bytes.len();
            event.write_json(&mut bytes);
            lines.push(start..bytes.len());
            bytes.push(b'\n');
        }
        Self { bytes, lines }
    }
}

/// Decoder throughput against `serde_json::from_slice::<serde_json::Value>` on the same lines.
#[derive(Debug, Serialize)]
pub struct DecodeBenchReport {
    pub events: usize,
    pub input_bytes: usize,
    pub rounds: u32,
    pub baseline_events_per_sec: f64,
    pub baseline_mib_per_sec: f64,
    pub decoder_events_per_sec: f64,
    pub decoder_mib_per_sec: f64,
    /// Decoder throughput divided by the baseline's; above 1.0 the decoder is faster.
    pub ratio: f64,
}

/// Rows per Arrow batch in the decoder run, as the ingester uses.
const BATCH_ROWS: usize = 8192;

pub fn decode_bench(corpus: &NdjsonCorpus, rounds: u32) -> DecodeBenchReport {
    let mut best_baseline = Duration::MAX;
    let mut best_decoder = Duration::MAX;
    // Alternate the two so that neither always runs on a warmer cache or a quieter machine.
    for _ in 0..rounds.max(1) {
        let started = Instant::now();
        for range in &corpus.lines {
            let value: serde_json::Value =
                serde_json::from_slice(&corpus.bytes[range.clone()]).expect("generated JSON parses");
            black_box(value);
        }
        best_baseline = best_baseline.min(started.elapsed());

        let started = Instant::now();
        let mut decoder = EventDecoder::default();
        let mut rows = 0usize;
        for range in &corpus.lines {
            decoder.push(&corpus.bytes[range.clone()]).expect("generated events decode");
            if decoder.len() == BATCH_ROWS {
                rows += black_box(decoder.finish()).num_rows();
            }
        }
        rows += black_box(decoder.finish()).num_rows();
        assert_eq!(rows, corpus.lines.len());
        best_decoder = best_decoder.min(started.elapsed());
    }
    let events = corpus.lines.len();
    let mib = corpus.bytes.len() as f64 / (1024.0 * 1024.0);
    let per_sec = |d: Duration| events as f64 / d.as_secs_f64();
    DecodeBenchReport {
        events,
        input_bytes: corpus.bytes.len(),
        rounds,
        baseline_events_per_sec: per_sec(best_baseline),
        baseline_mib_per_sec: mib / best_baseline.as_secs_f64(),
        decoder_events_per_sec: per_sec(best_decoder),
        decoder_mib_per_sec: mib / best_decoder.as_secs_f64(),
        ratio: best_baseline.as_secs_f64() / best_decoder.as_secs_f64(),
    }
}

impl std::fmt::Display for DecodeBenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "decode: {} events, {:.1} MiB of NDJSON, best of {} rounds, one core",
            self.events,
            self.input_bytes as f64 / 1048576.0,
            self.rounds
        )?;
        writeln!(
            f,
            "  baseline serde_json::Value : {:>12.0} events/s {:>8.1} MiB/s",
            self.baseline_events_per_sec, self.baseline_mib_per_sec
        )?;
        writeln!(
            f,
            "  mcpsiem decoder -> Arrow   : {:>12.0} events/s {:>8.1} MiB/s",
            self.decoder_events_per_sec, self.decoder_mib_per_sec
        )?;
        write!(f, "  ratio (decoder / baseline) : {:.2}x", self.ratio)
    }
}
