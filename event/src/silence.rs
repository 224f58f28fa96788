//! Silences: "do not deliver alerts like these until then", as Alertmanager has them. A
//! silence is a set of [`Matcher`]s on an alert's rule, tags, level and group values, a time
//! span, an author and a reason. The query service writes each version of a silence (made,
//! then perhaps expired early) to the silences topic; the delivery stage follows the topic
//! and records a matching alert as silenced instead of delivering it; the ingester keeps
//! every version in the lake's `silences` table. A silence is never edited in place: it
//! ends, and another is made.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, LazyLock};

use arrow_array::builder::{ListBuilder, StringBuilder, TimestampMicrosecondBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use regex::Regex;

use crate::alert_change::{MAX_COMMENT_BYTES, MAX_NAME_BYTES};
use crate::{Alert, Timestamp};

/// Most matchers one silence has: a silence names a narrow set of alerts.
pub const MAX_MATCHERS: usize = 16;
/// Longest matcher value (a regular expression included), in bytes.
pub const MAX_MATCHER_VALUE_BYTES: usize = 1024;
/// The compiled size a matcher's regular expression may take.
const REGEX_SIZE_LIMIT: usize = 256 << 10;

/// What a matcher compares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MatchTarget {
    RuleId,
    RuleTitle,
    /// Any of the rule's tags (`attack.t1528`).
    Tag,
    Level,
    /// One group-by value of the alert (`group.enduser.id`); a missing one is empty text.
    Group(String),
}

impl MatchTarget {
    fn parse(name: &str) -> Result<Self, SilenceError> {
        Ok(match name {
            "rule_id" => Self::RuleId,
            "rule_title" => Self::RuleTitle,
            "tag" => Self::Tag,
            "level" => Self::Level,
            _ => match name.strip_prefix("group.") {
                Some(field) if !field.is_empty() => Self::Group(field.to_owned()),
                _ => {
                    return Err(SilenceError::Matcher(format!(
                        "unknown field `{name}`: a matcher compares rule_id, rule_title, tag, level or group.<field> (such as group.enduser.id)"
                    )));
                }
            },
        })
    }

    fn name(&self) -> String {
        match self {
            Self::RuleId => "rule_id".into(),
            Self::RuleTitle => "rule_title".into(),
            Self::Tag => "tag".into(),
            Self::Level => "level".into(),
            Self::Group(field) => format!("group.{field}"),
        }
    }
}

/// How a matcher compares: Alertmanager's four operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchOp {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~`, a regular expression matching the whole value
    Regex,
    /// `!~`
    NotRegex,
}

impl MatchOp {
    fn as_str(self) -> &'static str {
        match self {
            Self::Equal => "=",
            Self::NotEqual => "!=",
            Self::Regex => "=~",
            Self::NotRegex => "!~",
        }
    }

    fn negated(self) -> bool {
        matches!(self, Self::NotEqual | Self::NotRegex)
    }
}

/// One condition of a silence, written `field=value`, `field!=value`, `field=~regex` or
/// `field!~regex` (the value may be in double quotes).
#[derive(Clone, Debug)]
pub struct Matcher {
    pub target: MatchTarget,
    pub op: MatchOp,
    pub value: String,
    regex: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        (&self.target, self.op, &self.value) == (&other.target, other.op, &other.value)
    }
}

impl Eq for Matcher {}

impl Matcher {
    pub fn parse(text: &str) -> Result<Self, SilenceError> {
        let text = text.trim();
        let name_end =
            text.find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))).ok_or_else(|| {
                SilenceError::Matcher(format!(
                    "`{text}` has no operator: write field=value, field!=value, field=~regex or field!~regex"
                ))
            })?;
        let (name, rest) = text.split_at(name_end);
        let rest = rest.trim_start();
        let (op, value) = [MatchOp::Regex, MatchOp::NotRegex, MatchOp::NotEqual, MatchOp::Equal]
            .into_iter()
            .find_map(|op| rest.strip_prefix(op.as_str()).map(|value| (op, value)))
            .ok_or_else(|| SilenceError::Matcher(format!("`{text}`: the operator must be =, !=, =~ or !~")))?;
        let value = value.trim();
        let value = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value);
        Self::new(MatchTarget::parse(name)?, op, value)
    }

    pub fn new(target: MatchTarget, op: MatchOp, value: &str) -> Result<Self, SilenceError> {
        if value.len() > MAX_MATCHER_VALUE_BYTES {
            return Err(SilenceError::Matcher(format!(
                "the value of `{}` is {} bytes; at most {MAX_MATCHER_VALUE_BYTES} are accepted",
                target.name(),
                value.len()
            )));
        }
        let regex = match op {
            MatchOp::Regex | MatchOp::NotRegex => Some(
                regex::RegexBuilder::new(&format!("^(?:{value})$"))
                    .size_limit(REGEX_SIZE_LIMIT)
                    .build()
                    .map_err(|e| SilenceError::Matcher(format!("`{value}` is not a usable regular expression: {e}")))?,
            ),
            MatchOp::Equal | MatchOp::NotEqual => None,
        };
        Ok(Self { target, op, value: value.to_owned(), regex })
    }

    fn positive(&self, text: &str) -> bool {
        match &self.regex {
            Some(regex) => regex.is_match(text),
            None => text == self.value,
        }
    }

    /// Whether the alert satisfies this condition. For tags, `=`/`=~` want some tag to
    /// match, `!=`/`!~` want none to.
    pub fn matches(&self, alert: &Alert) -> bool {
        let found = match &self.target {
            MatchTarget::RuleId => self.positive(&alert.rule_id),
            MatchTarget::RuleTitle => self.positive(&alert.rule_title),
            MatchTarget::Level => self.positive(alert.level.as_str()),
            MatchTarget::Tag => alert.tags.iter().any(|tag| self.positive(tag)),
            MatchTarget::Group(field) => self.positive(alert.group.get(field).map(String::as_str).unwrap_or("")),
        };
        found != self.op.negated()
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{}", self.target.name(), self.op.as_str(), self.value)
    }
}

impl serde::Serialize for Matcher {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Matcher {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// What a version of a silence records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SilenceAction {
    Create,
    /// Ended before its time.
    Expire,
}

impl SilenceAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Expire => "expire",
        }
    }
}

/// Where a silence is in its span.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SilenceState {
    /// It starts later.
    Pending,
    Active,
    Expired,
}

impl SilenceState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Expired => "expired",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Pending, Self::Active, Self::Expired].into_iter().find(|s| s.as_str() == text)
    }
}

/// One version of one silence, as the silences topic carries it and the lake keeps it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Silence {
    /// A ULID, made when the silence was.
    pub silence_id: String,
    /// When this version was written; the latest version of a silence holds.
    pub version_at: Timestamp,
    /// The API key's name that wrote this version.
    pub actor: String,
    /// `api`, `cli`, `console`.
    pub interface: String,
    pub action: SilenceAction,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    pub reason: String,
    pub matchers: Vec<Matcher>,
}

/// Why a silence is refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SilenceError {
    #[error("not a silence: {0}")]
    Decode(String),
    #[error("bad matcher: {0}")]
    Matcher(String),
    #[error("{0}")]
    Invalid(String),
}

impl Silence {
    /// A new silence, written now.
    pub fn new(
        actor: &str,
        interface: &str,
        matchers: Vec<Matcher>,
        starts_at: Timestamp,
        ends_at: Timestamp,
        reason: &str,
    ) -> Result<Self, SilenceError> {
        let silence = Self {
            silence_id: ulid::Ulid::new().to_string(),
            version_at: Timestamp::now(),
            actor: actor.to_owned(),
            interface: interface.to_owned(),
            action: SilenceAction::Create,
            starts_at,
            ends_at,
            reason: reason.to_owned(),
            matchers,
        };
        silence.check()?;
        Ok(silence)
    }

    /// The version that ends this silence at `now` (or keeps its end, when that is sooner).
    pub fn expired(&self, actor: &str, interface: &str, now: Timestamp) -> Self {
        Self {
            version_at: now.max(self.version_at.plus_micros(1)),
            actor: actor.to_owned(),
            interface: interface.to_owned(),
            action: SilenceAction::Expire,
            starts_at: self.starts_at.min(now),
            ends_at: self.ends_at.min(now),
            ..self.clone()
        }
    }

    pub fn state(&self, now: Timestamp) -> SilenceState {
        if now < self.starts_at {
            SilenceState::Pending
        } else if now < self.ends_at {
            SilenceState::Active
        } else {
            SilenceState::Expired
        }
    }

    /// Whether it silences `alert` at `now`: active, and every matcher holds.
    pub fn silences(&self, alert: &Alert, now: Timestamp) -> bool {
        self.state(now) == SilenceState::Active && self.matchers.iter().all(|m| m.matches(alert))
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a silence always serializes")
    }

    /// Decodes and checks a record of the silences topic.
    pub fn from_json(bytes: &[u8]) -> Result<Self, SilenceError> {
        let silence: Self = serde_json::from_slice(bytes).map_err(|e| SilenceError::Decode(e.to_string()))?;
        silence.check()?;
        Ok(silence)
    }

    /// The bounds every silence keeps, whoever wrote it.
    pub fn check(&self) -> Result<(), SilenceError> {
        for (field, value) in [("silence_id", &self.silence_id), ("actor", &self.actor), ("interface", &self.interface)]
        {
            if value.is_empty() || value.len() > MAX_NAME_BYTES {
                return Err(SilenceError::Invalid(format!("{field} must be 1 to {MAX_NAME_BYTES} bytes")));
            }
        }
        if self.reason.trim().is_empty() {
            return Err(SilenceError::Invalid(
                "give a reason: responders read it when they wonder why an alert was not sent".into(),
            ));
        }
        if self.reason.len() > MAX_COMMENT_BYTES {
            return Err(SilenceError::Invalid(format!(
                "the reason is {} bytes; at most {MAX_COMMENT_BYTES} are kept",
                self.reason.len()
            )));
        }
        if self.matchers.is_empty() {
            return Err(SilenceError::Invalid(
                "a silence needs at least one matcher (such as rule_id=mcp-token-replay); one that silences everything is refused".into(),
            ));
        }
        if self.matchers.len() > MAX_MATCHERS {
            return Err(SilenceError::Invalid(format!("{} matchers; at most {MAX_MATCHERS}", self.matchers.len())));
        }
        if self.ends_at < self.starts_at || (self.action == SilenceAction::Create && self.ends_at == self.starts_at) {
            return Err(SilenceError::Invalid("the silence must end after it starts".into()));
        }
        Ok(())
    }
}

/// The latest version of every silence, as the delivery stage and the query service hold
/// them.
#[derive(Clone, Debug, Default)]
pub struct SilenceSet {
    by_id: BTreeMap<String, Silence>,
}

impl SilenceSet {
    /// Keeps `silence` when it is newer than the version held (versions may arrive in any
    /// order, and again).
    pub fn apply(&mut self, silence: Silence) {
        match self.by_id.get(&silence.silence_id) {
            Some(held) if (held.version_at, held.action as u8) >= (silence.version_at, silence.action as u8) => {}
            _ => {
                self.by_id.insert(silence.silence_id.clone(), silence);
            }
        }
    }

    /// The silence that holds `alert` back at `now`, if any (the first by id).
    pub fn silencing(&self, alert: &Alert, now: Timestamp) -> Option<&Silence> {
        self.by_id.values().find(|s| s.silences(alert, now))
    }

    pub fn get(&self, silence_id: &str) -> Option<&Silence> {
        self.by_id.get(silence_id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Silence> {
        self.by_id.values()
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Forgets silences that ended before `before`: the lake keeps them.
    pub fn forget_ended_before(&mut self, before: Timestamp) {
        self.by_id.retain(|_, s| s.ends_at >= before);
    }
}

/// The Arrow schema of the lake's `silences` table, one row per version; `version_at`
/// partitions it.
pub fn silence_schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        let time = || DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        Arc::new(Schema::new(vec![
            Field::new("version_at", time(), false),
            Field::new("silence_id", DataType::Utf8, false),
            Field::new("actor", DataType::Utf8, false),
            Field::new("interface", DataType::Utf8, false),
            Field::new("action", DataType::Utf8, false),
            Field::new("starts_at", time(), false),
            Field::new("ends_at", time(), false),
            Field::new("reason", DataType::Utf8, false),
            Field::new("matchers", DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))), false),
        ]))
    });
    SCHEMA.clone()
}

/// Silence versions as one record batch of [`silence_schema`].
pub fn silence_batch(silences: &[Silence]) -> RecordBatch {
    let n = silences.len();
    let time = || TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let (mut version_at, mut starts_at, mut ends_at) = (time(), time(), time());
    let mut texts: [StringBuilder; 5] = std::array::from_fn(|_| StringBuilder::new());
    let mut matchers = ListBuilder::new(StringBuilder::new());
    for silence in silences {
        version_at.append_value(silence.version_at.as_micros());
        starts_at.append_value(silence.starts_at.as_micros());
        ends_at.append_value(silence.ends_at.as_micros());
        let values =
            [&silence.silence_id, &silence.actor, &silence.interface, silence.action.as_str(), &silence.reason];
        for (builder, value) in texts.iter_mut().zip(values) {
            builder.append_value(value);
        }
        for matcher in &silence.matchers {
            matchers.values().append_value(matcher.to_string());
        }
        matchers.append(true);
    }
    let [id, actor, interface, action, reason] = texts.map(|mut b| Arc::new(b.finish()) as ArrayRef);
    let arrays: Vec<ArrayRef> = vec![
        Arc::new(version_at.finish()),
        id,
        actor,
        interface,
        action,
        Arc::new(starts_at.finish()),
        Arc::new(ends_at.finish()),
        reason,
        Arc::new(matchers.finish()),
    ];
    RecordBatch::try_new(silence_schema(), arrays).expect("columns match the silence schema")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AlertSource, Level};

    fn alert() -> Alert {
        Alert {
            id: "01JD3K7W9Z8Y7X6V5T4S3R2Q1P".into(),
            rule_id: "mcp-token-replay".into(),
            rule_title: "Token replayed from a new address".into(),
            level: Level::High,
            tags: vec!["attack.credential_access".into(), "attack.t1528".into()],
            source: AlertSource::Correlation,
            first_time: Timestamp::from_micros(1),
            last_time: Timestamp::from_micros(2),
            group: [("enduser.id".to_string(), "ana".to_string())].into(),
            count: 3,
            event_ids: vec![],
            sql: String::new(),
        }
    }

    fn holds(matcher: &str) -> bool {
        Matcher::parse(matcher).unwrap().matches(&alert())
    }

    #[test]
    fn matchers_compare_rule_tags_level_and_group_values() {
        assert!(holds("rule_id=mcp-token-replay"));
        assert!(holds("rule_id = \"mcp-token-replay\""));
        assert!(!holds("rule_id=mcp-token"));
        assert!(holds("rule_id=~mcp-token.*"));
        assert!(!holds("rule_id=~token"), "a regular expression matches the whole value");
        assert!(holds("rule_id!=other"));
        assert!(holds("rule_title=~Token replayed.*"));
        assert!(holds("tag=attack.t1528"));
        assert!(!holds("tag!=attack.t1528"), "!= on tags: no tag may equal it");
        assert!(holds("tag!~attack\\.t9.*"));
        assert!(holds("level=~high|critical"));
        assert!(!holds("level=low"));
        assert!(holds("group.enduser.id=ana"));
        assert!(holds("group.client.address="), "a missing group value is empty text");
        assert!(!holds("group.client.address=~.+"));
        let matcher = Matcher::parse("group.enduser.id!~bo.*").unwrap();
        assert_eq!(matcher.to_string(), "group.enduser.id!~bo.*");
        assert_eq!(Matcher::parse(&matcher.to_string()).unwrap(), matcher);
    }

    #[test]
    fn bad_matchers_say_what_to_write() {
        for (text, says) in [
            ("rule_id", "no operator"),
            ("rule_id<3", "operator must be"),
            ("host=x", "unknown field `host`"),
            ("group.=x", "unknown field"),
            ("rule_id=~(", "not a usable regular expression"),
        ] {
            let error = Matcher::parse(text).unwrap_err().to_string();
            assert!(error.contains(says), "{text}: {error}");
        }
        let long = format!("rule_id={}", "x".repeat(MAX_MATCHER_VALUE_BYTES + 1));
        assert!(Matcher::parse(&long).unwrap_err().to_string().contains("at most"));
        // A regular expression whose compiled form is huge is refused, not built.
        assert!(Matcher::parse("rule_id=~(a{1,1000}){1,1000}").is_err());
    }

    fn silence(matchers: &[&str], from: i64, to: i64) -> Silence {
        let matchers = matchers.iter().map(|m| Matcher::parse(m).unwrap()).collect();
        Silence::new("ana", "api", matchers, Timestamp::from_micros(from), Timestamp::from_micros(to), "maintenance")
            .unwrap()
    }

    #[test]
    fn a_silence_holds_within_its_span_when_every_matcher_does() {
        let s = silence(&["rule_id=mcp-token-replay", "group.enduser.id=ana"], 100, 200);
        assert_eq!(s.state(Timestamp::from_micros(99)), SilenceState::Pending);
        assert!(!s.silences(&alert(), Timestamp::from_micros(99)));
        assert!(s.silences(&alert(), Timestamp::from_micros(100)));
        assert!(!s.silences(&alert(), Timestamp::from_micros(200)), "the end is exclusive");
        let other = silence(&["rule_id=mcp-token-replay", "group.enduser.id=bob"], 100, 200);
        assert!(!other.silences(&alert(), Timestamp::from_micros(150)));

        let ended = s.expired("bob", "cli", Timestamp::from_micros(150));
        assert_eq!(
            (ended.action, ended.ends_at, ended.actor.as_str()),
            (SilenceAction::Expire, Timestamp::from_micros(150), "bob")
        );
        assert!(!ended.silences(&alert(), Timestamp::from_micros(150)));
        // Expiring a pending silence ends it before it starts.
        let pending = silence(&["level=high"], 500, 900).expired("bob", "cli", Timestamp::from_micros(150));
        assert_eq!(pending.state(Timestamp::from_micros(150)), SilenceState::Expired);
        assert!(pending.check().is_ok());
    }

    #[test]
    fn the_latest_version_holds_whatever_order_versions_arrive_in() {
        let s = silence(&["level=high"], 0, i64::MAX / 2);
        let ended = s.expired("bob", "api", Timestamp::from_micros(10));
        for versions in [[s.clone(), ended.clone()], [ended.clone(), s.clone()]] {
            let mut set = SilenceSet::default();
            for version in versions {
                set.apply(version.clone());
                set.apply(version);
            }
            assert_eq!(set.len(), 1);
            assert_eq!(set.get(&s.silence_id).unwrap().action, SilenceAction::Expire);
            assert!(set.silencing(&alert(), Timestamp::from_micros(20)).is_none());
        }
        let mut set = SilenceSet::default();
        set.apply(s.clone());
        assert_eq!(
            set.silencing(&alert(), Timestamp::from_micros(20)).map(|s| s.silence_id.clone()),
            Some(s.silence_id)
        );
    }

    #[test]
    fn silences_keep_their_bounds_and_round_trip() {
        let at = Timestamp::from_micros;
        let refused = |matchers: Vec<Matcher>, from, to, reason: &str| {
            Silence::new("ana", "api", matchers, at(from), at(to), reason).unwrap_err().to_string()
        };
        let level = || vec![Matcher::parse("level=high").unwrap()];
        assert!(refused(vec![], 0, 10, "r").contains("at least one matcher"));
        assert!(refused(level(), 10, 10, "r").contains("end after it starts"));
        assert!(refused(level(), 0, 10, "  ").contains("reason"));
        assert!(refused(vec![Matcher::parse("level=high").unwrap(); MAX_MATCHERS + 1], 0, 10, "r").contains("at most"));
        let s = silence(&["rule_id=~mcp-.*", "tag=attack.t1528"], 0, 10);
        assert_eq!(Silence::from_json(s.to_json().as_bytes()).unwrap(), s);
        assert!(Silence::from_json(br#"{"silence_id":"x"}"#).is_err());
        let mut bad: serde_json::Value = serde_json::from_str(&s.to_json()).unwrap();
        bad["matchers"] = serde_json::json!(["nope"]);
        assert!(Silence::from_json(bad.to_string().as_bytes()).unwrap_err().to_string().contains("no operator"));
        let batch = silence_batch(&[s.clone(), s.expired("bob", "api", at(5))]);
        assert_eq!((batch.num_rows(), batch.schema()), (2, silence_schema()));
    }
}
