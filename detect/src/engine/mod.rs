//! The engine: every loaded rule over a stream of events, in event-time order or close to
//! it, producing alerts. The same engine serves the live stream and replays of the lake, so
//! the same events give the same alerts.

pub mod first_seen;
mod rule_index;
pub mod sigma_event;
pub mod state;
pub mod window;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use mcpsiem_event::{AlertChange, EventKind, McpEvent, Timestamp};

use crate::alert::{Alert, AlertSource};
use crate::rules::trigger::KeywordReach;
use crate::rules::{CorrelationRule, DetectionRule, FilterRule, FirstSeenRule, RuleSet};
use first_seen::{FirstSeenState, Observation, Seen};
use rule_index::RuleIndex;
use sigma_event::{Derived, FieldSelection, field_value, insert_fields, to_sigma_event};
pub use state::{EngineState, Restored};
use window::{Added, Fired, Hit, WindowState};

/// Engine settings, from the `[detect]` section (documented there).
#[derive(Clone, Debug, PartialEq)]
pub struct EngineConfig {
    /// How late (in event time, behind the newest event seen) an event may arrive and still
    /// join correlation windows. Later events still match detection rules.
    pub allowed_lateness_seconds: u64,
    /// Cap on correlation window entries plus first-seen values, over all rules. At the cap
    /// new state is refused and counted in `mcpsiem_detect_state_refused_total`.
    pub max_state_entries: usize,
    /// A rule firing again for a group within this many seconds (event time) of its open
    /// alert's last match is folded into that alert (a repeat) instead of raising another;
    /// 0 raises an alert for every firing.
    pub suppress_seconds: u64,
    /// Repeats of one alert are gathered for this many seconds (event time) into one record.
    pub repeat_seconds: u64,
    /// Event ids kept in one alert (and in one repeat record).
    pub max_event_ids: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            allowed_lateness_seconds: 60,
            max_state_entries: 2_000_000,
            suppress_seconds: 600,
            repeat_seconds: 60,
            max_event_ids: 100,
        }
    }
}

/// Repeat records kept for a caller that does not take them.
const MAX_UNTAKEN_REPEATS: usize = 10_000;

/// Keeps a repeat record for [`Engine::take_repeats`]. Callers that never take them
/// (benchmarks, rule tests) must not make it grow without bound: past the cap the oldest go.
fn keep_repeat(repeats: &mut std::collections::VecDeque<AlertChange>, change: AlertChange) {
    if repeats.len() >= MAX_UNTAKEN_REPEATS {
        repeats.pop_front();
        metrics::counter!("mcpsiem_detect_repeats_dropped_total").increment(1);
    }
    repeats.push_back(change);
}

/// An alert the engine folds its rule's repeats for its group into, until the rule stays
/// quiet for `suppress_seconds` of event time or somebody closes it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OpenAlert {
    pub alert_id: String,
    /// The last match folded in (or the alert's own last match).
    pub last_time: Timestamp,
    /// When it was raised, by the clock: after a restart, closes are read from there.
    pub raised_at: Timestamp,
    /// Repeats not recorded yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<PendingRepeat>,
}

/// Repeats gathered for one record.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PendingRepeat {
    pub count: u64,
    pub first_time: Timestamp,
    pub last_time: Timestamp,
    pub event_ids: Vec<String>,
}

impl PendingRepeat {
    fn record(self, alert_id: &str) -> AlertChange {
        AlertChange::repeated(alert_id, self.count, (self.first_time, self.last_time), self.event_ids)
    }
}

/// Where a rule's matches go.
#[derive(Clone, Copy, Debug)]
enum Consumer {
    /// Correlation index, and the position of the source in its `rules`.
    Correlation(usize, usize),
    FirstSeen(usize),
}

/// What a detection rule is for: alerting alone, feeding others, or both.
struct DetectionSlot {
    rule: DetectionRule,
    /// `mcpsiem_detect_rule_matches_total{rule}`, registered once: per match it is hot.
    matches: metrics::Counter,
    filters: Vec<usize>,
    /// The fields the keyword selections of the rule and its filters can match.
    keywords: KeywordReach,
    consumers: Vec<Consumer>,
    /// The name the consumers use for it (for aliases).
    reference: Vec<String>,
    alerts: bool,
}

struct CorrelationSlot {
    state: WindowState,
    consumers: Vec<Consumer>,
    reference: Vec<String>,
    alerts: bool,
}

struct FirstSeenSlot {
    rule: FirstSeenRule,
    state: FirstSeenState,
}

/// Counters of one engine, also exported as metrics.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct EngineStats {
    pub events: u64,
    /// Detection rules evaluated, summed over events: what the trigger index let through.
    pub candidates: u64,
    /// Events copied whole for sigma-rust because a candidate has keyword selections.
    pub whole_copies: u64,
    pub matches: u64,
    pub alerts: u64,
    /// Firings folded into an open alert.
    pub repeats: u64,
    /// Repeat records written (several repeats each).
    pub repeat_records: u64,
    /// Open alerts somebody closed (their rule's next firing raises a new alert).
    pub closed: u64,
    pub late: u64,
    pub state_refused: u64,
}

pub struct Engine {
    config: EngineConfig,
    detections: Vec<DetectionSlot>,
    filters: Vec<FilterRule>,
    correlations: Vec<CorrelationSlot>,
    first_seen: Vec<FirstSeenSlot>,
    by_kind: HashMap<EventKind, std::sync::Arc<[usize]>>,
    /// Per kind, its rules indexed by trigger (positions in `by_kind`'s list).
    indexes: HashMap<EventKind, RuleIndex>,
    /// Whether candidates come from the index (else every rule of the kind is evaluated).
    use_index: bool,
    /// The fields the rules evaluated on each event kind read.
    fields: HashMap<EventKind, FieldSelection>,
    /// What each source (Kafka partition) delivered, for the watermark.
    sources: HashMap<i32, Source>,
    last_advance: Timestamp,
    /// Open alerts by (rule, group).
    open: HashMap<(String, String), OpenAlert>,
    /// The key in `open` of each open alert's id, for closes.
    open_by_id: HashMap<String, (String, String)>,
    /// Repeat records made and not taken yet ([`Engine::take_repeats`]).
    repeats: std::collections::VecDeque<AlertChange>,
    pending_first_seen: std::collections::BinaryHeap<std::cmp::Reverse<PendingObservation>>,
    pub stats: EngineStats,
    events_counter: metrics::Counter,
}

fn matches_counter(rule: &DetectionRule) -> metrics::Counter {
    metrics::counter!("mcpsiem_detect_rule_matches_total", "rule" => rule.meta.key().to_string())
}

/// A first-seen value waiting for the watermark.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct PendingObservation {
    time: Timestamp,
    event_id: String,
    rule: usize,
    group: Vec<String>,
    value: Vec<String>,
}

/// A caught-up source (its partition's end reached) that delivered nothing for this long
/// (wall clock) no longer holds the watermark: it is quiet, and windows must close. Until
/// then it does, since a producer may be writing hours of event time per second (a backfill,
/// a test) and its next event can be older than another partition's newest.
const IDLE_SOURCE: std::time::Duration = std::time::Duration::from_secs(30);
/// A source that has not reached its partition's end but delivered nothing for this long
/// holds the watermark no more: its partition is stalled, and windows must close. It should
/// be longer than [`IDLE_SOURCE`] (a detector reading a backlog serves one partition's fetch
/// at a time, and on a slow machine one partition waited more than 30 s), but with 300 s
/// the global detector of `scale_out` under the whole suite's load fell to a few events a
/// second while its state grew (open windows piling up behind the held watermark; the cost
/// per event that grows with them is not found yet). Kept at 30 s until it is.
const STALLED_SOURCE: std::time::Duration = std::time::Duration::from_secs(30);

/// One source of events (a Kafka partition) as the watermark sees it.
#[derive(Clone, Copy, Debug)]
struct Source {
    /// The newest event time it delivered, if any.
    newest: Option<Timestamp>,
    /// When it last delivered (or was announced).
    last_delivery: std::time::Instant,
    /// It delivered everything the broker holds (partition end reached) and nothing since.
    caught_up: bool,
}

impl Source {
    fn announced() -> Self {
        Self { newest: None, last_delivery: std::time::Instant::now(), caught_up: false }
    }

    fn holds_watermark(&self) -> bool {
        self.last_delivery.elapsed() < if self.caught_up { IDLE_SOURCE } else { STALLED_SOURCE }
    }
}

/// Who a detection alert is about, the first field the event has: its session, else its
/// token, else its end user, else where it came from, else the collector that saw it.
/// Stdio traffic has no session, token or address, so without the user and collector two
/// people's alerts would be one.
const DETECTION_SUBJECT_FIELDS: [&str; 5] =
    ["mcp.session.id", "auth.token.identity", "enduser.id", "client.address", "collector.id"];
/// Which server a detection alert is about: its name, else its address, else its command.
const DETECTION_SERVER_FIELDS: [&str; 3] = ["mcp.server.name", "server.address", "mcp.server.command"];
/// And which tool, when the event names one.
const DETECTION_TOOL_FIELD: &str = "gen_ai.tool.name";

/// The group of a detection alert: one value of each of the subject, the server and the
/// tool that the event has. An alert about another victim, server or tool is another group,
/// so suppression never hides it behind an earlier one.
fn detection_group(event: &McpEvent<'_>) -> BTreeMap<String, String> {
    let first = |names: &[&str]| {
        names.iter().find_map(|name| field_value(event, name).map(|v| (name.to_string(), v.to_text().into_owned())))
    };
    let mut group = BTreeMap::new();
    group.extend(first(&DETECTION_SUBJECT_FIELDS));
    group.extend(first(&DETECTION_SERVER_FIELDS));
    group.extend(first(&[DETECTION_TOOL_FIELD]));
    group
}

impl Engine {
    pub fn new(rules: RuleSet, config: EngineConfig) -> Self {
        let RuleSet { detections, filters, correlations, first_seen } = rules;
        let mut engine = Self {
            config,
            detections: Vec::new(),
            filters,
            correlations: Vec::new(),
            first_seen: Vec::new(),
            by_kind: HashMap::new(),
            indexes: HashMap::new(),
            use_index: true,
            fields: HashMap::new(),
            sources: HashMap::new(),
            last_advance: Timestamp::from_micros(i64::MIN),
            open: HashMap::new(),
            open_by_id: HashMap::new(),
            repeats: std::collections::VecDeque::new(),
            pending_first_seen: std::collections::BinaryHeap::new(),
            stats: EngineStats::default(),
            events_counter: metrics::counter!("mcpsiem_detect_events_total"),
        };
        for rule in detections {
            engine.detections.push(DetectionSlot {
                matches: matches_counter(&rule),
                rule,
                filters: Vec::new(),
                keywords: KeywordReach::NoKeywords,
                consumers: Vec::new(),
                reference: Vec::new(),
                alerts: true,
            });
        }
        for entry in first_seen {
            let index = engine.first_seen.len();
            if let Some(inline) = entry.inline {
                engine.detections.push(DetectionSlot {
                    matches: matches_counter(&inline),
                    rule: inline,
                    filters: Vec::new(),
                    keywords: KeywordReach::NoKeywords,
                    consumers: vec![Consumer::FirstSeen(index)],
                    reference: Vec::new(),
                    alerts: false,
                });
            }
            engine.first_seen.push(FirstSeenSlot { rule: entry.rule, state: FirstSeenState::default() });
        }
        for rule in correlations {
            engine.correlations.push(CorrelationSlot {
                state: WindowState::new(rule),
                consumers: Vec::new(),
                reference: Vec::new(),
                alerts: true,
            });
        }
        engine.wire();
        engine
    }

    /// Connects each rule to its consumers and decides which rules alert on their own.
    fn wire(&mut self) {
        for (ci, slot) in self.correlations.iter().enumerate() {
            let rule: &CorrelationRule = &slot.state.rule;
            for (position, reference) in rule.rules.clone().iter().enumerate() {
                if let Some(d) = self.detections.iter().position(|d| d.rule.meta.is_named(reference)) {
                    self.detections[d].consumers.push(Consumer::Correlation(ci, position));
                    self.detections[d].reference.push(reference.clone());
                }
            }
        }
        let links: Vec<(usize, usize, usize, String)> = self
            .correlations
            .iter()
            .enumerate()
            .flat_map(|(ci, slot)| {
                let rules = slot.state.rule.rules.clone();
                let all: Vec<&CorrelationSlot> = self.correlations.iter().collect();
                rules
                    .into_iter()
                    .enumerate()
                    .filter_map(|(position, reference)| {
                        all.iter()
                            .position(|c| c.state.rule.meta.is_named(&reference))
                            .map(|source| (source, ci, position, reference))
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        for (source, ci, position, reference) in links {
            self.correlations[source].consumers.push(Consumer::Correlation(ci, position));
            self.correlations[source].reference.push(reference);
        }
        for (fi, slot) in self.first_seen.iter().enumerate() {
            for reference in &slot.rule.rules {
                if let Some(d) = self.detections.iter().position(|d| d.rule.meta.is_named(reference)) {
                    self.detections[d].consumers.push(Consumer::FirstSeen(fi));
                    self.detections[d].reference.push(reference.clone());
                }
            }
        }
        // Sigma `generate`: a rule used by correlations alerts alone only if one of them says so.
        let generates = |consumers: &[Consumer], correlations: &[CorrelationSlot]| {
            consumers.is_empty()
                || consumers
                    .iter()
                    .any(|c| matches!(c, Consumer::Correlation(ci, _) if correlations[*ci].state.rule.generate))
        };
        for d in 0..self.detections.len() {
            if self.detections[d].alerts {
                self.detections[d].alerts = generates(&self.detections[d].consumers, &self.correlations);
            }
        }
        for c in 0..self.correlations.len() {
            self.correlations[c].alerts = generates(&self.correlations[c].consumers, &self.correlations);
        }
        for (fi, filter) in self.filters.iter().enumerate() {
            for slot in self.detections.iter_mut() {
                if filter.rules.iter().any(|r| slot.rule.meta.is_named(r)) {
                    slot.filters.push(fi);
                }
            }
        }
        for slot in self.detections.iter_mut() {
            slot.keywords = slot
                .filters
                .iter()
                .fold(slot.rule.keywords.clone(), |reach, f| reach.join(&self.filters[*f].detection.keywords));
        }
        let filter_fields: BTreeSet<String> =
            self.filters.iter().flat_map(|filter| filter.detection.fields.iter().cloned()).collect();
        for kind in EventKind::ALL {
            let rules: Vec<usize> = (0..self.detections.len())
                .filter(|d| self.detections[*d].rule.kinds.as_ref().is_none_or(|kinds| kinds.contains(kind)))
                .collect();
            // Per kind: a tool definition needs none of a tool call's kilobytes copied.
            let mut fields = filter_fields.clone();
            for d in &rules {
                fields.extend(self.detections[*d].rule.fields.iter().cloned());
            }
            self.fields.insert(*kind, FieldSelection::only(fields));
            let indexed = rules.iter().map(|d| (&self.detections[*d].rule.trigger, &self.detections[*d].keywords));
            self.indexes.insert(*kind, RuleIndex::new(indexed));
            self.by_kind.insert(*kind, rules.into());
        }
    }

    /// Evaluates every rule of each kind on every event, without the trigger index: the
    /// reference the index is compared with (benchmarks and tests).
    pub fn without_index(mut self) -> Self {
        self.use_index = false;
        self
    }

    /// The detection rules worth evaluating on `event`, in rule order, the sigma-rust event
    /// they read (`None` when there are none), and whether it holds every field.
    fn candidates(&self, event: &McpEvent<'_>) -> (Vec<usize>, Option<sigma_rust::Event>, bool) {
        let Some(rules) = self.by_kind.get(&event.kind) else { return (Vec::new(), None, false) };
        let computed = Derived::new(event);
        let (candidates, keyword_fields) = if self.use_index {
            let found = self.indexes[&event.kind].candidates_with(event, &computed);
            (found.rules.into_iter().map(|p| rules[p as usize]).collect(), found.keyword_fields)
        } else {
            (rules.to_vec(), Vec::new())
        };
        if candidates.is_empty() {
            return (candidates, None, false);
        }
        let reach = |want: fn(&KeywordReach) -> bool| candidates.iter().any(|d| want(&self.detections[*d].keywords));
        // Without the index (the reference), keyword rules read every field.
        let every_field =
            reach(|k| matches!(k, KeywordReach::AnyField)) || (!self.use_index && reach(KeywordReach::has_keywords));
        if every_field {
            return (candidates, Some(to_sigma_event(event, &FieldSelection::All, &computed)), true);
        }
        let mut sigma = to_sigma_event(event, &self.fields[&event.kind], &computed);
        if reach(|k| matches!(k, KeywordReach::FieldsHolding(_))) {
            insert_fields(&mut sigma, keyword_fields);
        }
        (candidates, Some(sigma), false)
    }

    /// The keys of the detection rules that match `event` (by its kind, filters applied,
    /// no state touched): to compare verdicts with another engine.
    pub fn detection_verdicts(&self, event: &McpEvent<'_>) -> Vec<String> {
        let (candidates, sigma, _) = self.candidates(event);
        let Some(sigma) = sigma else { return Vec::new() };
        candidates
            .iter()
            .map(|d| &self.detections[*d])
            .filter(|slot| slot.rule.sigma.is_match(&sigma))
            .filter(|slot| slot.filters.iter().all(|f| self.filters[*f].detection.sigma.is_match(&sigma)))
            .map(|slot| slot.rule.meta.key().to_string())
            .collect()
    }

    /// Whether detection rule `key` is evaluated on events of `kind` (its logsource).
    pub fn evaluates(&self, key: &str, kind: EventKind) -> bool {
        self.by_kind.get(&kind).is_some_and(|rules| rules.iter().any(|d| self.detections[*d].rule.meta.key() == key))
    }

    /// Window entries and first-seen values held.
    pub fn state_entries(&self) -> usize {
        self.correlations.iter().map(|c| c.state.entries()).sum::<usize>()
            + self.first_seen.iter().map(|f| f.state.entries()).sum::<usize>()
    }

    /// The newest event time less the allowed lateness. With several sources (partitions
    /// read in parallel, or a backlog read one partition ahead of another) it is the minimum
    /// over the sources that may still deliver something earlier: those that delivered within
    /// [`IDLE_SOURCE`], and those with a backlog (not caught up, see
    /// [`Engine::source_caught_up`]) within [`STALLED_SOURCE`]. A partition that is behind
    /// does not find its events "too late"; quiet partitions do not hold it back.
    fn watermark(&self) -> Timestamp {
        let lateness = (self.config.allowed_lateness_seconds as i64).saturating_mul(1_000_000);
        let mut oldest_active: Option<Timestamp> = None;
        for source in self.sources.values().filter(|s| s.holds_watermark()) {
            match source.newest {
                // A source that is expected but has not delivered yet may bring anything: hold.
                None => return Timestamp::from_micros(i64::MIN),
                Some(t) => oldest_active = Some(oldest_active.map_or(t, |o| o.min(t))),
            }
        }
        match oldest_active {
            Some(t) => Timestamp::from_micros(t.as_micros().saturating_sub(lateness)),
            // Every source is quiet: nothing late is on its way, release what is held.
            None => self.sources.values().filter_map(|s| s.newest).max().unwrap_or(Timestamp::from_micros(i64::MIN)),
        }
    }

    /// Announces a source (a partition just assigned) so the watermark waits for its first
    /// event or its end (see [`Engine::source_caught_up`]).
    pub fn expect_source(&mut self, source: i32) {
        self.sources.entry(source).or_insert_with(Source::announced);
    }

    /// Tells the engine that `source` delivered everything its broker holds (Kafka's
    /// partition end): once it has been quiet for [`IDLE_SOURCE`] the watermark no longer
    /// waits for it. Until then, or while it has a backlog, it does.
    pub fn source_caught_up(&mut self, source: i32) {
        self.sources.entry(source).or_insert_with(Source::announced).caught_up = true;
    }

    /// Forgets a source (a partition this instance no longer reads).
    pub fn forget_source(&mut self, source: i32) {
        self.sources.remove(&source);
    }

    /// Evaluates one event; returns the alerts it raised (or closed windows released).
    pub fn process(&mut self, event: &McpEvent<'_>) -> Vec<Alert> {
        self.process_from(0, event)
    }

    /// Evaluates one event read from `source` (a Kafka partition).
    pub fn process_from(&mut self, source: i32, event: &McpEvent<'_>) -> Vec<Alert> {
        self.stats.events += 1;
        self.events_counter.increment(1);
        let mut alerts = Vec::new();
        let now = std::time::Instant::now();
        let delivered = self.sources.entry(source).or_insert_with(Source::announced);
        delivered.newest = Some(delivered.newest.map_or(event.time, |t| t.max(event.time)));
        delivered.last_delivery = now;
        delivered.caught_up = false;
        let (candidates, sigma, whole) = self.candidates(event);
        self.stats.candidates += candidates.len() as u64;
        self.stats.whole_copies += u64::from(whole);
        if let Some(sigma) = sigma {
            for &d in candidates.iter() {
                let slot = &self.detections[d];
                if !slot.rule.sigma.is_match(&sigma) {
                    continue;
                }
                if !slot.filters.iter().all(|f| self.filters[*f].detection.sigma.is_match(&sigma)) {
                    metrics::counter!("mcpsiem_detect_filtered_total").increment(1);
                    continue;
                }
                self.stats.matches += 1;
                slot.matches.increment(1);
                self.on_detection(d, event, &mut alerts);
            }
        }
        let watermark = self.watermark();
        self.release_first_seen(watermark, &mut alerts);
        // Closing deferred windows once per second of event time keeps this off the hot path.
        if watermark.as_micros() >= self.last_advance.as_micros().saturating_add(1_000_000) {
            self.last_advance = watermark;
            self.advance(watermark, &mut alerts);
        }
        alerts
    }

    /// Releases what the watermark allows when no event arrives (call about once a second).
    pub fn tick(&mut self) -> Vec<Alert> {
        let mut alerts = Vec::new();
        let watermark = self.watermark();
        self.advance(watermark, &mut alerts);
        alerts
    }

    /// Closes every window (the end of a replay or of a test) and returns what fired.
    pub fn finish(&mut self) -> Vec<Alert> {
        let mut alerts = Vec::new();
        self.advance(Timestamp::from_micros(i64::MAX), &mut alerts);
        alerts
    }

    fn advance(&mut self, watermark: Timestamp, alerts: &mut Vec<Alert>) {
        self.release_first_seen(watermark, alerts);
        for slot in &mut self.first_seen {
            slot.state.settle(watermark);
        }
        for c in 0..self.correlations.len() {
            let fired = self.correlations[c].state.advance(watermark);
            for f in fired {
                self.on_correlation(c, f, alerts);
            }
        }
        self.settle_open(watermark);
        metrics::gauge!("mcpsiem_detect_state_entries").set(self.state_entries() as f64);
        metrics::gauge!("mcpsiem_detect_open_alerts").set(self.open.len() as f64);
    }

    /// Records the repeats gathered for `repeat_seconds`, and lets go of alerts whose rule
    /// was quiet for `suppress_seconds` (their repeats recorded first).
    fn settle_open(&mut self, watermark: Timestamp) {
        let window = (self.config.suppress_seconds as i64).saturating_mul(1_000_000);
        let gather = (self.config.repeat_seconds as i64).saturating_mul(1_000_000);
        let mut quiet = Vec::new();
        for (key, open) in &mut self.open {
            let over = open.last_time.as_micros().saturating_add(window) < watermark.as_micros();
            let due = open
                .pending
                .as_ref()
                .is_some_and(|p| p.first_time.as_micros().saturating_add(gather) <= watermark.as_micros());
            if (over || due)
                && let Some(pending) = open.pending.take()
            {
                keep_repeat(&mut self.repeats, pending.record(&open.alert_id));
            }
            if over {
                quiet.push(key.clone());
            }
        }
        for key in quiet {
            if let Some(open) = self.open.remove(&key) {
                self.open_by_id.remove(&open.alert_id);
            }
        }
    }

    /// Somebody closed `alert_id`: its repeats so far are recorded, and its rule's next
    /// firing for its group raises a new alert. Unknown ids (alerts no longer open here,
    /// or another instance's) are ignored.
    pub fn close_alert(&mut self, alert_id: &str) -> bool {
        let Some(key) = self.open_by_id.remove(alert_id) else { return false };
        if let Some(open) = self.open.remove(&key)
            && let Some(pending) = open.pending
        {
            keep_repeat(&mut self.repeats, pending.record(&open.alert_id));
        }
        self.stats.closed += 1;
        true
    }

    /// The repeat records made since the last call, oldest first: the live path takes
    /// them after every event.
    pub fn take_repeats(&mut self) -> Vec<AlertChange> {
        self.stats.repeat_records += self.repeats.len() as u64;
        std::mem::take(&mut self.repeats).into()
    }

    /// When the oldest open alert was raised (by the clock), if any is open.
    pub fn oldest_open_alert(&self) -> Option<Timestamp> {
        self.open.values().map(|o| o.raised_at).min()
    }

    fn on_detection(&mut self, d: usize, event: &McpEvent<'_>, alerts: &mut Vec<Alert>) {
        let event_id = event.id.to_string();
        if self.detections[d].alerts {
            let group = detection_group(event);
            let alert = crate::alert::raise(
                &self.detections[d].rule.meta,
                AlertSource::Detection,
                (event.time, event.time),
                group,
                1,
                vec![event_id.clone()],
            );
            self.emit(alert, alerts);
        }
        let consumers = self.detections[d].consumers.clone();
        for (i, consumer) in consumers.into_iter().enumerate() {
            let reference = self.detections[d].reference.get(i).cloned().unwrap_or_default();
            match consumer {
                Consumer::Correlation(ci, position) => {
                    let rule = &self.correlations[ci].state.rule;
                    let Some(group) = rule
                        .group_by
                        .iter()
                        .map(|name| {
                            field_value(event, rule.field_for(name, &reference)).map(|v| v.to_text().into_owned())
                        })
                        .collect::<Option<Vec<String>>>()
                    else {
                        // Without every group-by value the event cannot be correlated.
                        continue;
                    };
                    let value = rule.field.as_deref().and_then(|f| {
                        field_value(event, rule.field_for(f, &reference)).map(|v| v.to_text().into_owned())
                    });
                    let hit = Hit { rule: position, time: event.time, value, event_ids: vec![event_id.clone()] };
                    self.add_hit(ci, group, hit, alerts);
                }
                Consumer::FirstSeen(fi) => {
                    let slot = &self.first_seen[fi];
                    let values = |names: &[String]| -> Option<Vec<String>> {
                        names.iter().map(|n| field_value(event, n).map(|v| v.to_text().into_owned())).collect()
                    };
                    let (Some(group), Some(value)) = (values(&slot.rule.group_by), values(&slot.rule.fields)) else {
                        continue;
                    };
                    // Decided on arrival: a value is new or it is not, and waiting for the
                    // watermark made these alerts ~allowed_lateness_seconds late. The
                    // watermark only orders late events (first_seen.rs).
                    let observation =
                        PendingObservation { time: event.time, event_id: event_id.clone(), rule: fi, group, value };
                    self.observe_first_seen(observation, alerts);
                }
            }
        }
    }

    /// Observes the pending first-seen values up to `watermark`, oldest first: only those
    /// restored from a snapshot written before first-seen values were decided on arrival.
    fn release_first_seen(&mut self, watermark: Timestamp, alerts: &mut Vec<Alert>) {
        while self.pending_first_seen.peek().is_some_and(|p| p.0.time <= watermark) {
            let std::cmp::Reverse(pending) = self.pending_first_seen.pop().expect("peeked");
            self.observe_first_seen(pending, alerts);
        }
    }

    /// Learns one first-seen value, alerting when it is new for a known group.
    fn observe_first_seen(&mut self, pending: PendingObservation, alerts: &mut Vec<Alert>) {
        let fi = pending.rule;
        let cap =
            self.config.max_state_entries.saturating_sub(self.state_entries()) + self.first_seen[fi].state.entries();
        let slot = &mut self.first_seen[fi];
        let observation = Observation { time: pending.time, event_id: pending.event_id, value: pending.value };
        match slot.state.observe(&slot.rule, &pending.group, observation, cap) {
            Seen::Quiet => {}
            Seen::Full => {
                self.stats.state_refused += 1;
                metrics::counter!("mcpsiem_detect_state_refused_total").increment(1);
            }
            Seen::New(new) => {
                let names = slot.rule.group_by.iter().chain(&slot.rule.fields);
                let group_map = names.cloned().zip(pending.group.into_iter().chain(new.value)).collect();
                let alert = crate::alert::raise(
                    &slot.rule.meta,
                    AlertSource::FirstSeen,
                    (new.time, new.time),
                    group_map,
                    1,
                    vec![new.event_id],
                );
                self.emit(alert, alerts);
            }
        }
    }

    fn add_hit(&mut self, ci: usize, group: Vec<String>, hit: Hit, alerts: &mut Vec<Alert>) {
        let watermark = self.watermark();
        let cap =
            self.config.max_state_entries.saturating_sub(self.state_entries()) + self.correlations[ci].state.entries();
        match self.correlations[ci].state.add(group, hit, watermark, cap) {
            Added::Kept(Some(fired)) => self.on_correlation(ci, fired, alerts),
            Added::Kept(None) => {}
            Added::TooLate => {
                self.stats.late += 1;
                metrics::counter!("mcpsiem_detect_late_events_total").increment(1);
            }
            Added::Full => {
                self.stats.state_refused += 1;
                metrics::counter!("mcpsiem_detect_state_refused_total").increment(1);
            }
        }
    }

    fn on_correlation(&mut self, ci: usize, fired: Fired, alerts: &mut Vec<Alert>) {
        let mut ids = fired.event_ids.clone();
        ids.truncate(self.config.max_event_ids);
        let rule = &self.correlations[ci].state.rule;
        let group_map: BTreeMap<String, String> =
            rule.group_by.iter().cloned().zip(fired.group.iter().cloned()).collect();
        if self.correlations[ci].alerts {
            let alert = crate::alert::raise(
                &rule.meta,
                AlertSource::Correlation,
                (fired.first, fired.last),
                group_map.clone(),
                fired.count,
                ids,
            );
            self.emit(alert, alerts);
        }
        // Chained correlations see this firing as one match carrying the group values.
        let consumers = self.correlations[ci].consumers.clone();
        for (i, consumer) in consumers.into_iter().enumerate() {
            let Consumer::Correlation(next, position) = consumer else { continue };
            let reference = self.correlations[ci].reference.get(i).cloned().unwrap_or_default();
            let outer = &self.correlations[next].state.rule;
            let Some(group) = outer
                .group_by
                .iter()
                .map(|name| group_map.get(outer.field_for(name, &reference)).cloned())
                .collect::<Option<Vec<String>>>()
            else {
                continue;
            };
            let value = outer.field.as_deref().and_then(|f| group_map.get(outer.field_for(f, &reference)).cloned());
            let hit = Hit { rule: position, time: fired.last, value, event_ids: fired.event_ids.clone() };
            self.add_hit(next, group, hit, alerts);
        }
    }

    /// Sends an alert, or folds it into its rule's open alert for the same group when the
    /// rule matched for that group within the last `suppress_seconds` (event time).
    fn emit(&mut self, alert: Alert, alerts: &mut Vec<Alert>) {
        let window = (self.config.suppress_seconds as i64).saturating_mul(1_000_000);
        if window > 0 {
            let group_key = alert.group.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("\u{1f}");
            let key = (alert.rule_id.clone(), group_key);
            let gathered_until = self
                .watermark()
                .as_micros()
                .saturating_sub((self.config.repeat_seconds as i64).saturating_mul(1_000_000));
            if let Some(open) = self.open.get_mut(&key)
                && (alert.last_time.as_micros() - open.last_time.as_micros()).abs() < window
            {
                open.last_time = open.last_time.max(alert.last_time);
                // A record gathers `repeat_seconds`: one that is due goes before this joins.
                if open.pending.as_ref().is_some_and(|p| p.first_time.as_micros() <= gathered_until)
                    && let Some(due) = open.pending.take()
                {
                    keep_repeat(&mut self.repeats, due.record(&open.alert_id));
                }
                let pending = open.pending.get_or_insert_with(|| PendingRepeat {
                    count: 0,
                    first_time: alert.first_time,
                    last_time: alert.last_time,
                    event_ids: Vec::new(),
                });
                pending.count = pending.count.saturating_add(alert.count);
                pending.first_time = pending.first_time.min(alert.first_time);
                pending.last_time = pending.last_time.max(alert.last_time);
                let room = self.config.max_event_ids.saturating_sub(pending.event_ids.len());
                pending.event_ids.extend(alert.event_ids.into_iter().take(room));
                self.stats.repeats += 1;
                metrics::counter!("mcpsiem_detect_alert_repeats_total").increment(1);
                return;
            }
            // A quiet gap (or none open): a new alert, which takes over the group.
            if let Some(old) = self.open.remove(&key) {
                self.open_by_id.remove(&old.alert_id);
                if let Some(pending) = old.pending {
                    keep_repeat(&mut self.repeats, pending.record(&old.alert_id));
                }
            }
            self.open_by_id.insert(alert.id.clone(), key.clone());
            self.open.insert(
                key,
                OpenAlert {
                    alert_id: alert.id.clone(),
                    last_time: alert.last_time,
                    raised_at: Timestamp::now(),
                    pending: None,
                },
            );
        }
        self.stats.alerts += 1;
        metrics::counter!("mcpsiem_detect_alerts_total", "rule" => alert.rule_id.clone(), "level" => alert.level.as_str())
            .increment(1);
        alerts.push(alert);
    }
}

#[cfg(test)]
mod index_tests;
#[cfg(test)]
mod tests;
