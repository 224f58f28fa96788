//! The list of event fields: JSON names, column names, kinds and descriptions.
//!
//! Generated from the [`crate::McpEvent`] definition, so the schema document, the Arrow
//! schema and the decoder all read the same list.

use std::sync::{Arc, LazyLock};

use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};

use crate::value::ValueKind;

/// One field of the event model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldSpec {
    /// The dotted name used in JSON and in Sigma rules, such as `mcp.method.name`.
    pub json_name: &'static str,
    /// The column name in Arrow, Parquet and SQL: the JSON name with `.` replaced by `_`,
    /// so analysts need no quoting (`mcp_method_name`).
    pub column_name: String,
    pub kind: ValueKind,
    pub required: bool,
    pub description: String,
}

/// The JSON key and column that keep unknown fields.
pub const ATTRIBUTES_COLUMN: &str = "attributes";

/// The JSON name to column name rule, in one place.
pub fn column_name_for(json_name: &str) -> String {
    json_name.replace('.', "_")
}

/// Every field in schema order.
pub fn fields() -> &'static [FieldSpec] {
    static FIELDS: LazyLock<Vec<FieldSpec>> = LazyLock::new(crate::McpEvent::<'static>::field_specs);
    &FIELDS
}

/// Looks a field up by its JSON (Sigma) name.
pub fn field_by_json_name(json_name: &str) -> Option<&'static FieldSpec> {
    fields().iter().find(|f| f.json_name == json_name)
}

/// Looks a field up by its column (SQL) name.
pub fn field_by_column_name(column_name: &str) -> Option<&'static FieldSpec> {
    fields().iter().find(|f| f.column_name == column_name)
}

/// The Arrow type of the attributes column: string keys to JSON text values.
pub fn attributes_data_type() -> DataType {
    let entries =
        Fields::from(vec![Field::new("keys", DataType::Utf8, false), Field::new("values", DataType::Utf8, true)]);
    DataType::Map(Arc::new(Field::new("entries", DataType::Struct(entries), false)), false)
}

/// The Arrow schema of the `events` table, derived from the field list.
pub fn arrow_schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        let mut columns: Vec<Field> =
            fields().iter().map(|f| Field::new(&f.column_name, f.kind.data_type(), !f.required)).collect();
        columns.push(Field::new(ATTRIBUTES_COLUMN, attributes_data_type(), true));
        Arc::new(Schema::new(columns))
    });
    SCHEMA.clone()
}

/// The field table of `docs/schema.md`, in Markdown. A test keeps the document equal to it.
pub fn markdown_field_table() -> String {
    let mut out =
        String::from("| JSON / Sigma field | SQL column | type | required | meaning |\n|---|---|---|---|---|\n");
    for f in fields() {
        let description = f.description.trim().replace('\n', " ").replace('|', "\\|");
        out.push_str(&format!(
            "| `{}` | `{}` | {} | {} | {} |\n",
            f.json_name,
            f.column_name,
            f.kind.json_name(),
            if f.required { "yes" } else { "no" },
            description
        ));
    }
    out.push_str(&format!(
        "| *(any other key)* | `{ATTRIBUTES_COLUMN}` | map of key to JSON text | no | Unknown fields, kept verbatim: the key and the value's JSON text. |\n"
    ));
    out
}

/// The Arrow schema of the `deadletters` table.
pub fn deadletter_schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        let time = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        Arc::new(Schema::new(vec![
            Field::new("received_time", time.clone(), false),
            Field::new("topic", DataType::Utf8, false),
            Field::new("partition", DataType::Int32, false),
            Field::new("offset", DataType::Int64, false),
            Field::new("kafka_key", DataType::Binary, true),
            Field::new("kafka_time", time, true),
            Field::new("reason", DataType::Utf8, false),
            Field::new("error", DataType::Utf8, false),
            Field::new("field", DataType::Utf8, true),
            Field::new("raw", DataType::Binary, false),
        ]))
    });
    SCHEMA.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_document_lists_every_field_as_the_model_defines_it() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/schema.md");
        let document = std::fs::read_to_string(path).expect("docs/schema.md exists");
        assert!(
            document.contains(&markdown_field_table()),
            "docs/schema.md is out of date: paste the output of `mcpsiem schema` into its field table"
        );
    }

    #[test]
    fn column_names_are_unique_and_sql_friendly() {
        let mut names: Vec<&str> = fields().iter().map(|f| f.column_name.as_str()).collect();
        assert!(names.iter().all(|n| n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')));
        names.sort();
        names.dedup();
        assert_eq!(names.len(), fields().len());
        assert_eq!(field_by_json_name("mcp.method.name").unwrap().column_name, "mcp_method_name");
        assert_eq!(field_by_column_name("event_time").unwrap().json_name, "event.time");
    }
}
