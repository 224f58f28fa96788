//! Columns the PostgreSQL protocol has no type for, sent as text.
//!
//! Why: `arrow-pg` encodes Arrow's types as PostgreSQL's, but has no type for a map (the
//! alerts' `group_values`, say), so `SELECT * FROM alerts` from psql failed as a whole with
//! "Unsupported Datatype Map". Such a column is sent as `text` instead: a map of strings as
//! a JSON object (so `::json` works on it), anything else as Arrow's display of it.

use std::sync::Arc;

use arrow_pg::datatypes::into_pg_type;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

/// Which columns of an answer go out as text, and the schema clients are told.
#[derive(Debug)]
pub struct TextColumns {
    schema: SchemaRef,
    as_text: Vec<usize>,
}

impl TextColumns {
    pub fn for_schema(schema: &SchemaRef) -> Self {
        let as_text: Vec<usize> = schema
            .fields()
            .iter()
            .enumerate()
            .filter(|(_, field)| into_pg_type(field.data_type()).is_err())
            .map(|(i, _)| i)
            .collect();
        let fields: Vec<Field> = schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, field)| {
                if as_text.contains(&i) {
                    Field::new(field.name(), DataType::Utf8, true)
                } else {
                    field.as_ref().clone()
                }
            })
            .collect();
        Self { schema: Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone())), as_text }
    }

    /// The schema as clients see it.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// `batch` with its text columns rendered.
    pub fn convert(&self, batch: RecordBatch) -> Result<RecordBatch, ArrowError> {
        if self.as_text.is_empty() {
            return Ok(batch);
        }
        let mut columns = batch.columns().to_vec();
        for &i in &self.as_text {
            columns[i] = as_text(&columns[i])?;
        }
        RecordBatch::try_new(self.schema.clone(), columns)
    }
}

fn as_text(array: &ArrayRef) -> Result<ArrayRef, ArrowError> {
    let mut out = StringBuilder::with_capacity(array.len(), array.len() * 16);
    if let Some(map) = array.as_map_opt()
        && map.keys().data_type() == &DataType::Utf8
        && map.values().data_type() == &DataType::Utf8
    {
        for row in 0..map.len() {
            if map.is_null(row) {
                out.append_null();
                continue;
            }
            let entries = map.value(row);
            let (keys, values) = (entries.column(0).as_string::<i32>(), entries.column(1).as_string::<i32>());
            let object: serde_json::Map<String, serde_json::Value> = (0..entries.len())
                .map(|j| {
                    let value = if values.is_null(j) { serde_json::Value::Null } else { values.value(j).into() };
                    (keys.value(j).to_string(), value)
                })
                .collect();
            out.append_value(serde_json::Value::Object(object).to_string());
        }
    } else {
        let formatter = ArrayFormatter::try_new(array.as_ref(), &FormatOptions::default())?;
        for row in 0..array.len() {
            if array.is_null(row) {
                out.append_null();
            } else {
                out.append_value(formatter.value(row).to_string());
            }
        }
    }
    Ok(Arc::new(out.finish()))
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Int64Array, MapBuilder, StringArray};

    use super::*;

    #[test]
    fn a_map_of_strings_goes_out_as_a_json_object_and_other_columns_unchanged() {
        let mut maps = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
        maps.keys().append_value("user");
        maps.values().append_value("alice \"the\" admin");
        maps.keys().append_value("server");
        maps.values().append_null();
        maps.append(true).unwrap();
        maps.append(false).unwrap();
        let maps = maps.finish();
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, false),
            Field::new("group_values", maps.data_type().clone(), true),
        ]));
        let batch =
            RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(vec![1, 2])), Arc::new(maps)]).unwrap();
        let columns = TextColumns::for_schema(&schema);
        assert_eq!(columns.as_text, [1]);
        assert_eq!(columns.schema().field(1).data_type(), &DataType::Utf8);
        let out = columns.convert(batch).unwrap();
        let text = out.column(1).as_any().downcast_ref::<StringArray>().unwrap();
        let object: serde_json::Value = serde_json::from_str(text.value(0)).unwrap();
        assert_eq!(object, serde_json::json!({"user": "alice \"the\" admin", "server": null}));
        assert!(text.is_null(1));
        assert_eq!(out.column(0).len(), 2);
    }
}
