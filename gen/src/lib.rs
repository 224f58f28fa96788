//! `mcpsiem gen`: realistic MCP audit traffic with labelled, injected attacks.
//!
//! The output is deterministic for a seed. Every event carries the attribute
//! `mcpsiem.scenario` (`benign` or the attack's name) and, for attacks,
//! `mcpsiem.scenario.instance`, so tests can count what was detected and what was missed.

pub mod attacks;
pub mod benign;
pub mod real_world;
pub mod session;
pub mod world;

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap, VecDeque};

use chrono::{Datelike, Timelike, Weekday};
use mcpsiem_event::token::TokenFingerprinter;
use mcpsiem_event::{OwnedEvent, Timestamp};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use attacks::Scenario;
use session::{Session, Token};
use world::{ServerSpec, Transport, User};

const HOUR_US: i64 = 3_600_000_000;
/// Events per benign session, measured on `gen --events 200000 --days 7` (13,902 sessions);
/// sizes the simulation so a run reaches its event count.
const EVENTS_PER_SESSION: f64 = 14.4;

/// How long before `now` a period must end for none of its events to land after `now`:
/// when its sessions fall short of the event count, the simulation runs on past the period
/// at full activity, about an hour at most.
pub const OVERRUN_MARGIN_MICROS: i64 = 2 * HOUR_US;

/// What to generate.
#[derive(Clone, Debug)]
pub struct GenOptions {
    pub seed: u64,
    /// How many events to generate. The simulation runs past `days` when that period is too
    /// short to hold them.
    pub events: u64,
    pub start: Timestamp,
    pub days: u32,
    pub users: usize,
    /// Attacks to inject, each `attack_repeats` times.
    pub attacks: Vec<Scenario>,
    pub attack_repeats: u32,
    /// The site key tokens are fingerprinted with, as collectors do.
    pub token_key: String,
    pub profile: TrafficProfile,
}

/// How close to what collectors see in real deployments the benign traffic is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TrafficProfile {
    /// The curated catalogue: every event names its user, every HTTP call carries a
    /// fingerprinted token and every call its result.
    #[default]
    Catalog,
    /// Also the tool lists of public MCP servers (arbitrary tool names, one name on two
    /// servers, imperative descriptions), stdio sessions seen by a local proxy (the account
    /// name, no address, no token), HTTP sessions seen only in a gateway's access log (no
    /// token to fingerprint, no results, no tool definitions), pings, resources, prompts,
    /// cancellations and failing calls.
    RealWorld,
}

impl TrafficProfile {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "catalog" => Some(Self::Catalog),
            "real-world" => Some(Self::RealWorld),
            _ => None,
        }
    }
}

impl Default for GenOptions {
    fn default() -> Self {
        Self {
            seed: 1,
            events: 10_000,
            start: Timestamp::parse("2026-11-02T00:00:00Z").expect("constant"),
            days: 1,
            users: 50,
            attacks: Vec::new(),
            attack_repeats: 1,
            token_key: "mcpsiem-gen-site-key".into(),
            profile: TrafficProfile::Catalog,
        }
    }
}

/// Everything the simulation knows about the company.
pub struct World {
    pub users: Vec<User>,
    pub servers: Vec<ServerSpec>,
    /// An unregistered server some attacks use.
    pub rogue_server: ServerSpec,
    pub fingerprinter: TokenFingerprinter,
    tokens: RefCell<HashMap<(String, &'static str, i64), Token>>,
}

impl World {
    fn new(rng: &mut impl Rng, options: &GenOptions) -> Self {
        let mut servers = world::approved_servers();
        if options.profile == TrafficProfile::RealWorld {
            servers.extend(real_world::servers());
        }
        let users = world::make_users(rng, options.users.max(1), servers.len(), &world::client_apps());
        Self {
            users,
            rogue_server: rogue_server(),
            servers,
            fingerprinter: TokenFingerprinter::new(&options.token_key),
            tokens: RefCell::new(HashMap::new()),
        }
    }

    /// The user's token for a server on the day of `at`: issued at 07:00 UTC, valid 14 h.
    pub fn token_for(&self, rng: &mut impl Rng, user: &User, server: &ServerSpec, at: Timestamp) -> Token {
        let day = at.as_micros().div_euclid(24 * HOUR_US);
        let key = (user.id.clone(), server.name, day);
        self.tokens
            .borrow_mut()
            .entry(key)
            .or_insert_with(|| {
                let issued = Timestamp::from_micros(day * 24 * HOUR_US + 7 * HOUR_US);
                let issued = if issued > at { at } else { issued };
                // Valid past the end of the day it serves, so benign traffic never uses an
                // expired token (that is the `token_expired` attack's signal).
                let lifetime_hours = ((day + 1) * 24 * HOUR_US + HOUR_US - issued.as_micros()) / HOUR_US + 1;
                Token::issue(
                    rng,
                    &self.fingerprinter,
                    &user.subject,
                    user.client.oauth_client_id,
                    server.location,
                    issued,
                    lifetime_hours,
                )
            })
            .clone()
    }
}

fn rogue_server() -> ServerSpec {
    let mut rogue = world::approved_servers().remove(0);
    rogue.name = "mcp-tools-pro";
    rogue.version = "0.0.3";
    rogue.transport = Transport::Http;
    rogue.location = "http://198.51.100.77:8080/mcp";
    rogue.tools.truncate(3);
    rogue
}

/// Working hours weigh 1, nights and weekends 0.03.
fn activity_weight(at: Timestamp) -> f64 {
    let t = at.to_datetime();
    let weekend = matches!(t.weekday(), Weekday::Sat | Weekday::Sun);
    if !weekend && (8..18).contains(&t.hour()) { 1.0 } else { 0.03 }
}

/// 02:30 UTC in the night after `at`: outside working hours, and early enough in a
/// simulated period that a run cut at its event count still reaches it.
pub fn next_night(at: Timestamp) -> Timestamp {
    let day_start = at.as_micros().div_euclid(24 * HOUR_US) * 24 * HOUR_US;
    Timestamp::from_micros(day_start + 24 * HOUR_US + 2 * HOUR_US + 30 * 60_000_000)
}

/// Streams generated events in time order.
pub struct Generator {
    rng: ChaCha8Rng,
    world: World,
    options: GenOptions,
    hour: i64,
    hours: i64,
    sessions_per_weight: f64,
    /// Attacks by the hour they start in.
    schedule: BTreeMap<i64, Vec<(Scenario, u32, Timestamp)>>,
    /// Generated events not yet released, earliest first (ties in generation order).
    pending: std::collections::BinaryHeap<Reverse<Pending>>,
    next_seq: u64,
    ready: VecDeque<OwnedEvent>,
    emitted: u64,
    /// How many events of each scenario were emitted.
    pub counts: BTreeMap<&'static str, u64>,
}

impl Generator {
    pub fn new(options: GenOptions) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
        let world = World::new(&mut rng, &options);
        let hours = i64::from(options.days.max(1)) * 24;
        let total_weight: f64 = (0..hours).map(|h| activity_weight(options.start.plus_micros(h * HOUR_US))).sum();
        let attack_events_guess = options.attacks.len() as f64 * f64::from(options.attack_repeats) * 60.0;
        // 8% more sessions than the average predicts, so the period holds at least `events` and
        // the run ends exactly there, cutting only the end of the period.
        let sessions = ((options.events as f64 - attack_events_guess).max(0.0) / EVENTS_PER_SESSION * 1.08).max(1.0);
        let mut schedule: BTreeMap<i64, Vec<_>> = BTreeMap::new();
        let mut instance = 0u32;
        for &scenario in &options.attacks {
            for _ in 0..options.attack_repeats {
                instance += 1;
                // Attacks land in working hours within the first half of the period, so a run cut
                // at `events` still holds them all.
                let mut at = options.start;
                for _ in 0..1000 {
                    at = options.start.plus_micros(rng.random_range(0..hours * HOUR_US / 2));
                    if activity_weight(at) == 1.0 {
                        break;
                    }
                }
                schedule.entry(offset_hour(options.start, at)).or_default().push((scenario, instance, at));
            }
        }
        Self {
            rng,
            world,
            hour: 0,
            hours,
            sessions_per_weight: sessions / total_weight,
            schedule,
            pending: Default::default(),
            next_seq: 0,
            ready: VecDeque::new(),
            emitted: 0,
            counts: BTreeMap::new(),
            options,
        }
    }

    fn push_pending(&mut self, events: Vec<OwnedEvent>) {
        for event in events {
            self.pending.push(Reverse(Pending { time: event.time, seq: self.next_seq, event }));
            self.next_seq += 1;
        }
    }

    /// Simulates one hour and releases every event that no later hour can precede.
    fn simulate_hour(&mut self) {
        let hour_start = self.options.start.plus_micros(self.hour * HOUR_US);
        // Past the period (its sessions fell short of the event count) the rest comes at full
        // activity: at night weight, a period ending on a Friday evening ran on through the
        // weekend, into the future of a test or of `gen --kafka` started on a Saturday.
        let weight = if self.hour >= self.hours { 1.0 } else { activity_weight(hour_start) };
        let expected = self.sessions_per_weight * weight;
        let mut sessions = expected.floor() as u64;
        if self.rng.random_bool(expected.fract()) {
            sessions += 1;
        }
        for _ in 0..sessions {
            let user_index = self.rng.random_range(0..self.world.users.len());
            let user = &self.world.users[user_index];
            let server_index = user.servers[self.rng.random_range(0..user.servers.len())];
            let server = &self.world.servers[server_index];
            let start = hour_start.plus_micros(self.rng.random_range(0..HOUR_US));
            let token =
                (server.transport == Transport::Http).then(|| self.world.token_for(&mut self.rng, user, server, start));
            let mut session = Session::new(&mut self.rng, user, server, token);
            let real_world = self.options.profile == TrafficProfile::RealWorld;
            if real_world {
                session.vantage = match server.transport {
                    Transport::Stdio => session::Vantage::StdioProxy,
                    Transport::Http if self.rng.random_bool(0.3) => session::Vantage::GatewayLog,
                    Transport::Http => session::Vantage::Full,
                };
            }
            let events = benign::benign_session(&mut self.rng, &mut session, start, real_world);
            self.push_pending(events);
        }
        if let Some(attacks) = self.schedule.remove(&self.hour) {
            for (scenario, instance, at) in attacks {
                let events = scenario.inject(&self.world, &mut self.rng, at, instance);
                self.push_pending(events);
            }
        }
        self.hour += 1;
        self.release_until(Some(self.options.start.plus_micros(self.hour * HOUR_US)));
    }

    /// Moves pending events before `horizon` (all of them for `None`) to the ready queue.
    fn release_until(&mut self, horizon: Option<Timestamp>) {
        while let Some(Reverse(next)) = self.pending.peek() {
            if horizon.is_some_and(|h| next.time >= h) {
                break;
            }
            let Reverse(next) = self.pending.pop().expect("peeked");
            self.ready.push_back(next.event);
        }
    }

    pub fn world(&self) -> &World {
        &self.world
    }
}

/// An event waiting for its release, ordered by time then by generation order.
struct Pending {
    time: Timestamp,
    seq: u64,
    event: OwnedEvent,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        (self.time, self.seq) == (other.time, other.seq)
    }
}

impl Eq for Pending {}

impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Pending {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.time, self.seq).cmp(&(other.time, other.seq))
    }
}

fn offset_hour(start: Timestamp, at: Timestamp) -> i64 {
    (at.as_micros() - start.as_micros()).div_euclid(HOUR_US)
}

impl Iterator for Generator {
    type Item = OwnedEvent;

    fn next(&mut self) -> Option<OwnedEvent> {
        if self.emitted >= self.options.events {
            return None;
        }
        while self.ready.is_empty() {
            // The period is a minimum: simulation goes on past it until `events` are reached
            // (bounded, for periods so quiet they could never reach it).
            let period_done = self.hour >= self.hours && self.schedule.is_empty();
            if period_done && self.hour >= self.hours * 100 {
                self.release_until(None);
                if self.ready.is_empty() {
                    return None;
                }
            } else {
                self.simulate_hour();
            }
        }
        let event = self.ready.pop_front()?;
        self.emitted += 1;
        let scenario = scenario_of(&event);
        *self.counts.entry(scenario).or_default() += 1;
        Some(event)
    }
}

/// The scenario label of a generated event (`benign` when it has none).
pub fn scenario_of(event: &OwnedEvent) -> &'static str {
    event
        .attributes
        .get(session::SCENARIO_KEY)
        .and_then(|raw| serde_json::from_str::<&str>(raw.get()).ok())
        .and_then(Scenario::parse)
        .map_or(session::BENIGN, Scenario::name)
}

/// The names of the simulated company's approved MCP servers: the inventory the rule pack's
/// shadow-server rule expects in `[detect.lists] approved_servers` for generated traffic.
pub fn approved_server_names() -> Vec<String> {
    world::approved_servers().iter().map(|s| s.name.to_string()).collect()
}

/// The approved servers of both traffic profiles: the catalogue's and the public servers of
/// the `real-world` profile (for benchmarks that run either).
pub fn approved_server_names_all_profiles() -> Vec<String> {
    world::approved_servers().iter().chain(&real_world::servers()).map(|s| s.name.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(events: u64, attacks: Vec<Scenario>) -> GenOptions {
        GenOptions { events, attacks, days: 7, ..GenOptions::default() }
    }

    #[test]
    fn same_seed_same_events_other_seed_other_events() {
        let a: Vec<String> = Generator::new(options(500, vec![])).map(|e| e.to_json()).collect();
        let b: Vec<String> = Generator::new(options(500, vec![])).map(|e| e.to_json()).collect();
        let c: Vec<String> =
            Generator::new(GenOptions { seed: 2, ..options(500, vec![]) }).map(|e| e.to_json()).collect();
        assert_eq!(a.len(), 500);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn the_event_count_is_exact_whatever_the_period() {
        for (events, days) in [(1, 1), (1_000, 30), (5_000, 1)] {
            let generator =
                Generator::new(GenOptions { events, days, attacks: Scenario::ALL.to_vec(), ..GenOptions::default() });
            let times: Vec<Timestamp> = generator.map(|e| e.time).collect();
            assert_eq!(times.len() as u64, events, "{events} events over {days} days");
            assert!(times.windows(2).all(|w| w[0] <= w[1]));
        }
    }

    #[test]
    fn events_come_in_time_order_with_unique_ids() {
        let events: Vec<OwnedEvent> = Generator::new(options(20_000, Scenario::ALL.to_vec())).collect();
        assert!(events.windows(2).all(|w| w[0].time <= w[1].time));
        let ids: std::collections::HashSet<_> = events.iter().map(|e| e.id).collect();
        assert_eq!(ids.len(), events.len());
    }

    #[test]
    fn every_scenario_is_injected_and_labelled() {
        let mut generator = Generator::new(options(20_000, Scenario::ALL.to_vec()));
        let total = generator.by_ref().count();
        assert_eq!(total, 20_000);
        for scenario in Scenario::ALL {
            assert!(generator.counts.get(scenario.name()).copied().unwrap_or(0) > 0, "{} missing", scenario.name());
        }
        assert!(generator.counts["benign"] > 15_000);
    }

    #[test]
    fn no_raw_token_shape_reaches_an_event() {
        for event in Generator::new(options(3_000, Scenario::ALL.to_vec())) {
            assert!(!event.to_json().contains("eyJhbGci"), "a raw token leaked");
        }
    }

    #[test]
    fn the_real_world_profile_has_what_real_collectors_see() {
        let real_world = GenOptions { profile: TrafficProfile::RealWorld, ..options(20_000, vec![]) };
        let events: Vec<OwnedEvent> = Generator::new(real_world).collect();
        let count = |f: &dyn Fn(&OwnedEvent) -> bool| events.iter().filter(|e| f(e)).count();
        let format = |e: &OwnedEvent, name: &str| e.collector_format.as_deref() == Some(name);
        // Gateway logs: the subject without a token to fingerprint, no results, no definitions.
        let gateway = count(&|e| format(e, "agentgateway"));
        assert!(gateway > 500, "{gateway} gateway events");
        assert_eq!(count(&|e| format(e, "agentgateway") && e.token_fingerprint.is_some()), 0);
        assert_eq!(count(&|e| format(e, "agentgateway") && e.tool_result.is_some()), 0);
        assert_eq!(count(&|e| format(e, "agentgateway") && e.kind == mcpsiem_event::EventKind::ToolDefinition), 0);
        assert!(count(&|e| format(e, "agentgateway") && e.token_subject.is_some()) > 500);
        // Stdio proxies: the account name, the machine, no address.
        let stdio = count(&|e| format(e, "proxy_stdio"));
        assert!(stdio > 1_000, "{stdio} stdio events");
        assert_eq!(count(&|e| format(e, "proxy_stdio") && e.client_address.is_some()), 0);
        assert_eq!(count(&|e| format(e, "proxy_stdio") && e.user_id.as_deref().is_some_and(|u| u.contains('@'))), 0);
        // Public servers' tool names, a name two approved servers share, and what else clients send.
        let public_tools: std::collections::HashSet<&str> = events
            .iter()
            .filter_map(|e| e.tool_name.as_deref())
            .filter(|name| real_world::example_call(name).is_some())
            .collect();
        assert!(public_tools.len() >= 20, "{public_tools:?}");
        assert!(public_tools.contains("list_issues"));
        for method in ["ping", "resources/read", "prompts/get"] {
            assert!(count(&|e| e.method.as_deref() == Some(method)) > 0, "no {method}");
        }
        assert!(count(&|e| e.tool_result_is_error == Some(true)) > 0);
        // The catalogue profile has none of it.
        let catalog: Vec<OwnedEvent> = Generator::new(options(5_000, vec![])).collect();
        assert!(catalog.iter().all(|e| e.collector_format.as_deref() == Some("gen")));
    }

    #[test]
    fn the_next_night_is_half_past_two_the_day_after() {
        let t = next_night(Timestamp::parse("2026-11-04T15:00:00Z").unwrap());
        assert_eq!(t.to_string(), "2026-11-05T02:30:00.000000Z");
        assert_eq!(activity_weight(t), 0.03);
    }
}
