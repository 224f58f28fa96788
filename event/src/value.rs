//! The value types an event field can hold, and how each one maps to JSON and to Arrow.
//!
//! Every field of [`crate::McpEvent`] is one of these types (or an `Option` of one). The
//! trait keeps the JSON decoder, the JSON encoder, the Arrow builders and the Arrow reader
//! in step: a field's type decides all four, so they cannot disagree.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use arrow_array::builder::{
    ArrayBuilder, BooleanBuilder, Int64Builder, ListBuilder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, ArrayRef};
use arrow_schema::{DataType, Field, TimeUnit};
use serde::de::{self, Deserializer, Visitor};
use serde::ser::{SerializeSeq, Serializer};

use crate::time::Timestamp;

/// The kind of a field's value, as documented in `docs/schema.md` and seen by Sigma rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueKind {
    /// JSON string; Arrow `Utf8`.
    String,
    /// JSON string in RFC 3339; Arrow `Timestamp(Microsecond, "UTC")`.
    Timestamp,
    /// JSON integer; Arrow `Int64`.
    Integer,
    /// JSON `true`/`false`; Arrow `Boolean`.
    Boolean,
    /// JSON array of strings; Arrow `List<Utf8>`.
    StringList,
}

impl ValueKind {
    pub fn data_type(self) -> DataType {
        match self {
            Self::String => DataType::Utf8,
            Self::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Self::Integer => DataType::Int64,
            Self::Boolean => DataType::Boolean,
            Self::StringList => DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))),
        }
    }

    /// The word used in the schema document and in error messages.
    pub fn json_name(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Timestamp => "RFC 3339 timestamp string",
            Self::Integer => "integer",
            Self::Boolean => "boolean",
            Self::StringList => "array of strings",
        }
    }
}

/// A value an event field can hold. `'a` is the lifetime of the input it may borrow from
/// (the JSON bytes, or an Arrow array), so decoding does not copy strings that need no
/// unescaping.
pub trait FieldValue<'a>: Sized + Clone + PartialEq + fmt::Debug {
    type Builder: ArrayBuilder;
    /// The same value, owning its data.
    type Owned: FieldValue<'static>;
    const KIND: ValueKind;

    fn new_builder(capacity: usize) -> Self::Builder;
    fn append(builder: &mut Self::Builder, value: Option<&Self>);
    fn deserialize<D: Deserializer<'a>>(deserializer: D) -> Result<Self, D::Error>;
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error>;
    /// Reads row `row` of a column of this kind; `None` for null. The column's type was
    /// checked against the schema before, so a mismatch is a programming error.
    fn read(column: &'a ArrayRef, row: usize) -> Option<Self>;
    fn into_owned(self) -> Self::Owned;
    /// The value as rules and queries see it.
    fn as_field_ref(&self) -> FieldRef<'_>;
}

/// A borrowed view of one field's value, typed as the schema documents it: strings,
/// integers, booleans, timestamps and string lists. Rules match these types strictly, so
/// `http.response.status_code: 401` matches the integer and `'401'` does not.
#[derive(Clone, Debug)]
pub enum FieldRef<'v> {
    Text(Cow<'v, str>),
    Int(i64),
    Bool(bool),
    Time(crate::time::Timestamp),
    List(Vec<&'v str>),
    /// A field outside the model, as the raw JSON the collector sent.
    Json(&'v serde_json::value::RawValue),
}

impl FieldRef<'_> {
    /// The value as text, the way it reads in SQL and alert messages (timestamps in RFC 3339,
    /// lists comma-separated, foreign JSON verbatim except for the quotes of a string).
    pub fn to_text(&self) -> Cow<'_, str> {
        match self {
            FieldRef::Text(t) => Cow::Borrowed(t.as_ref()),
            FieldRef::Int(i) => Cow::Owned(i.to_string()),
            FieldRef::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
            FieldRef::Time(t) => Cow::Owned(t.to_string()),
            FieldRef::List(items) => Cow::Owned(items.join(",")),
            FieldRef::Json(raw) => match serde_json::from_str::<String>(raw.get()) {
                Ok(s) => Cow::Owned(s),
                Err(_) => Cow::Borrowed(raw.get()),
            },
        }
    }
}

/// A string that borrows from its input when it can.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Text<'a>(pub Cow<'a, str>);

impl<'a> Text<'a> {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::ops::Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<String> for Text<'static> {
    fn from(s: String) -> Self {
        Text(Cow::Owned(s))
    }
}

impl<'a> From<&'a str> for Text<'a> {
    fn from(s: &'a str) -> Self {
        Text(Cow::Borrowed(s))
    }
}

impl<'a> From<Cow<'a, str>> for Text<'a> {
    fn from(s: Cow<'a, str>) -> Self {
        Text(s)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Text(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Text(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Text(Cow::Owned(v)))
    }
}

impl<'de> serde::Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(TextVisitor)
    }
}

impl serde::Serialize for Text<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'a> FieldValue<'a> for Text<'a> {
    type Builder = StringBuilder;
    type Owned = Text<'static>;
    const KIND: ValueKind = ValueKind::String;

    fn new_builder(capacity: usize) -> StringBuilder {
        StringBuilder::with_capacity(capacity, capacity * 16)
    }
    fn append(b: &mut StringBuilder, v: Option<&Self>) {
        b.append_option(v.map(|t| t.as_str()));
    }
    fn deserialize<D: Deserializer<'a>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(TextVisitor)
    }
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
    fn read(column: &'a ArrayRef, row: usize) -> Option<Self> {
        let column = column.as_string::<i32>();
        column.is_valid(row).then(|| Text(Cow::Borrowed(column.value(row))))
    }
    fn as_field_ref(&self) -> FieldRef<'_> {
        FieldRef::Text(Cow::Borrowed(self.as_str()))
    }
    fn into_owned(self) -> Text<'static> {
        Text(Cow::Owned(self.0.into_owned()))
    }
}

impl<'a> FieldValue<'a> for Timestamp {
    type Builder = TimestampMicrosecondBuilder;
    type Owned = Timestamp;
    const KIND: ValueKind = ValueKind::Timestamp;

    fn new_builder(capacity: usize) -> Self::Builder {
        TimestampMicrosecondBuilder::with_capacity(capacity).with_timezone("UTC")
    }
    fn append(b: &mut Self::Builder, v: Option<&Self>) {
        b.append_option(v.map(|t| t.as_micros()));
    }
    fn deserialize<D: Deserializer<'a>>(d: D) -> Result<Self, D::Error> {
        struct TimeVisitor;
        impl Visitor<'_> for TimeVisitor {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an RFC 3339 timestamp string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Timestamp, E> {
                Timestamp::parse(v).map_err(|e| E::invalid_value(de::Unexpected::Str(&e.value), &self))
            }
        }
        d.deserialize_str(TimeVisitor)
    }
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
    fn read(column: &'a ArrayRef, row: usize) -> Option<Self> {
        let column = column.as_primitive::<TimestampMicrosecondType>();
        column.is_valid(row).then(|| Timestamp::from_micros(column.value(row)))
    }
    fn as_field_ref(&self) -> FieldRef<'_> {
        FieldRef::Time(*self)
    }
    fn into_owned(self) -> Self {
        self
    }
}

impl<'a> FieldValue<'a> for i64 {
    type Builder = Int64Builder;
    type Owned = i64;
    const KIND: ValueKind = ValueKind::Integer;

    fn new_builder(capacity: usize) -> Self::Builder {
        Int64Builder::with_capacity(capacity)
    }
    fn append(b: &mut Self::Builder, v: Option<&Self>) {
        b.append_option(v.copied());
    }
    fn deserialize<D: Deserializer<'a>>(d: D) -> Result<Self, D::Error> {
        <i64 as serde::Deserialize>::deserialize(d)
    }
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(*self)
    }
    fn read(column: &'a ArrayRef, row: usize) -> Option<Self> {
        let column = column.as_primitive::<Int64Type>();
        column.is_valid(row).then(|| column.value(row))
    }
    fn as_field_ref(&self) -> FieldRef<'_> {
        FieldRef::Int(*self)
    }
    fn into_owned(self) -> Self {
        self
    }
}

impl<'a> FieldValue<'a> for bool {
    type Builder = BooleanBuilder;
    type Owned = bool;
    const KIND: ValueKind = ValueKind::Boolean;

    fn new_builder(capacity: usize) -> Self::Builder {
        BooleanBuilder::with_capacity(capacity)
    }
    fn append(b: &mut Self::Builder, v: Option<&Self>) {
        b.append_option(v.copied());
    }
    fn deserialize<D: Deserializer<'a>>(d: D) -> Result<Self, D::Error> {
        <bool as serde::Deserialize>::deserialize(d)
    }
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bool(*self)
    }
    fn read(column: &'a ArrayRef, row: usize) -> Option<Self> {
        let column = column.as_boolean();
        column.is_valid(row).then(|| column.value(row))
    }
    fn as_field_ref(&self) -> FieldRef<'_> {
        FieldRef::Bool(*self)
    }
    fn into_owned(self) -> Self {
        self
    }
}

/// A list of strings, such as token scopes or audiences.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct TextList<'a>(pub Vec<Text<'a>>);

impl fmt::Debug for TextList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.0).finish()
    }
}

impl<'a> TextList<'a> {
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|t| t.as_str())
    }
}

impl<S: Into<String>> FromIterator<S> for TextList<'static> {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        TextList(iter.into_iter().map(|s| Text::from(s.into())).collect())
    }
}

impl<'a> FieldValue<'a> for TextList<'a> {
    type Builder = ListBuilder<StringBuilder>;
    type Owned = TextList<'static>;
    const KIND: ValueKind = ValueKind::StringList;

    fn new_builder(capacity: usize) -> Self::Builder {
        ListBuilder::with_capacity(StringBuilder::new(), capacity)
    }
    fn append(b: &mut Self::Builder, v: Option<&Self>) {
        match v {
            Some(list) => {
                for item in &list.0 {
                    b.values().append_value(item.as_str());
                }
                b.append(true);
            }
            None => b.append(false),
        }
    }
    fn deserialize<D: Deserializer<'a>>(d: D) -> Result<Self, D::Error> {
        struct ListVisitor;
        impl<'de> Visitor<'de> for ListVisitor {
            type Value = TextList<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of strings")
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(2));
                while let Some(item) = seq.next_element::<Text<'de>>()? {
                    items.push(item);
                }
                Ok(TextList(items))
            }
        }
        d.deserialize_seq(ListVisitor)
    }
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for item in &self.0 {
            seq.serialize_element(item)?;
        }
        seq.end()
    }
    fn read(column: &'a ArrayRef, row: usize) -> Option<Self> {
        let lists = column.as_list::<i32>();
        if !lists.is_valid(row) {
            return None;
        }
        let offsets = lists.value_offsets();
        let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
        let items = lists.values().as_string::<i32>();
        Some(TextList((start..end).map(|i| Text(Cow::Borrowed(items.value(i)))).collect()))
    }
    fn as_field_ref(&self) -> FieldRef<'_> {
        FieldRef::List(self.iter().collect())
    }
    fn into_owned(self) -> TextList<'static> {
        TextList(self.0.into_iter().map(FieldValue::into_owned).collect())
    }
}

/// Declares a closed set of string values (an enum) stored as a plain string column.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl<'a> $crate::value::FieldValue<'a> for $name {
            type Builder = arrow_array::builder::StringBuilder;
            type Owned = $name;
            const KIND: $crate::value::ValueKind = $crate::value::ValueKind::String;

            fn new_builder(capacity: usize) -> Self::Builder {
                arrow_array::builder::StringBuilder::with_capacity(capacity, capacity * 8)
            }
            fn append(b: &mut Self::Builder, v: Option<&Self>) {
                b.append_option(v.map(|v| v.as_str()));
            }
            fn deserialize<D: serde::Deserializer<'a>>(d: D) -> Result<Self, D::Error> {
                struct EnumVisitor;
                impl serde::de::Visitor<'_> for EnumVisitor {
                    type Value = $name;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str(concat!("one of:", $(" ", $text),+))
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$name, E> {
                        $name::parse(v).ok_or_else(|| E::invalid_value(serde::de::Unexpected::Str(v), &self))
                    }
                }
                d.deserialize_str(EnumVisitor)
            }
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
            fn read(column: &'a arrow_array::ArrayRef, row: usize) -> Option<Self> {
                use arrow_array::Array;
                let column = arrow_array::cast::AsArray::as_string::<i32>(column.as_ref());
                // A value outside the set can only come from a file written by another
                // program; reading it as null keeps the row instead of failing the batch.
                column.is_valid(row).then(|| $name::parse(column.value(row))).flatten()
            }
                    fn as_field_ref(&self) -> $crate::value::FieldRef<'_> {
                $crate::value::FieldRef::Text(std::borrow::Cow::Borrowed(self.as_str()))
            }
    fn into_owned(self) -> Self {
                self
            }
        }
    };
}
pub(crate) use text_enum;
