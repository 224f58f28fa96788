//! `pg_catalog` with object ids that stay the same from one query to the next.
//!
//! Why: psql's `\d events` is two queries. The first finds the table's OID in `pg_class`,
//! the second reads `pg_attribute WHERE attrelid = <that OID>`. Every query runs in a fresh
//! session, and `datafusion-pg-catalog` numbers tables in the order the session's catalog
//! lists them: hash-map order, and a set of tables that depends on the query (views and
//! `alert_deliveries` are registered only for the queries naming them, `audit_log` only
//! for admins). So the second query saw other OIDs and `\d` showed no columns, or another
//! table's. Here the catalog is listed in one fixed order that names every table mcpsiem
//! can register, present or not, so each name gets the same OID in every session.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{CatalogProviderList, SchemaProvider};
use datafusion::datasource::TableType;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use datafusion_pg_catalog::pg_catalog::catalog_info::CatalogInfo;
use datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use datafusion_pg_catalog::pg_catalog::{PgCatalogSchemaProvider, PgCatalogStaticTables};

use crate::QueryError;

/// The schema every mcpsiem table is in.
const PUBLIC: &str = "public";

/// Every table and view mcpsiem registers in some session, in the order their OIDs are
/// given. Append only: a name inserted in the middle renumbers the ones after it, which
/// breaks a client that cached OIDs across a restart of the service.
fn known_tables() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = mcpsiem_lake::Table::ALL.iter().map(|t| t.name()).collect();
    names.extend(["audit_log", "alert_deliveries"]);
    names.extend(crate::views::VIEWS.iter().map(|v| v.name));
    names
}

/// Whether a PostgreSQL-dialect query reads the catalog: such a query may be the second
/// half of a client's `\d`, naming the table only by OID, so its session registers every
/// table and view.
pub fn reads_catalog(sql: &str) -> bool {
    let sql = sql.to_ascii_lowercase();
    sql.contains("pg_") || sql.contains("information_schema")
}

/// Replaces the session's `pg_catalog` (set up by `datafusion_pg_catalog::setup_pg_catalog`,
/// which also registers its functions) with one that lists tables in [`known_tables`]'s order,
/// and numbers them before the query runs.
pub async fn use_stable_oids(ctx: &SessionContext, catalog_name: &str) -> Result<(), QueryError> {
    let listing = StableListing(ctx.state().catalog_list().clone());
    let static_tables = Arc::new(PgCatalogStaticTables::try_new()?);
    let provider = PgCatalogSchemaProvider::try_new(listing, static_tables, EmptyContextProvider)?;
    let catalog = ctx
        .catalog(catalog_name)
        .ok_or_else(|| DataFusionError::Configuration(format!("no catalog {catalog_name} to put pg_catalog in")))?;
    catalog.register_schema("pg_catalog", Arc::new(provider))?;
    // The catalog tables share one numbering, each numbering what it lists when first read:
    // `pg_class` lists the catalog and schemas before the tables, `pg_attribute` only tables.
    // A query reading `pg_attribute` first (the second half of `\d`) would number the tables
    // from where `pg_class` numbers the catalog. Reading `pg_class` first, always, fixes it.
    ctx.sql("SELECT oid FROM pg_catalog.pg_class").await?.collect().await?;
    Ok(())
}

/// The session's catalog, listed in a fixed order.
#[derive(Clone, Debug)]
struct StableListing(Arc<dyn CatalogProviderList>);

impl StableListing {
    fn schema(&self, catalog_name: &str, schema_name: &str) -> Option<Arc<dyn SchemaProvider>> {
        CatalogProviderList::catalog(self.0.as_ref(), catalog_name).and_then(|c| c.schema(schema_name))
    }
}

/// `present` in a fixed order: `known` first (all of them, present or not, so each keeps
/// its position), then any other names sorted.
fn stable_order(present: Vec<String>, known: &[&str]) -> Vec<String> {
    let mut others: Vec<String> = present.into_iter().filter(|name| !known.contains(&name.as_str())).collect();
    others.sort();
    known.iter().map(|name| name.to_string()).chain(others).collect()
}

fn sorted(mut names: Vec<String>) -> Vec<String> {
    names.sort();
    names
}

#[async_trait]
impl CatalogInfo for StableListing {
    async fn catalog_names(&self) -> Result<Vec<String>, DataFusionError> {
        Ok(sorted(CatalogProviderList::catalog_names(self.0.as_ref())))
    }

    async fn schema_names(&self, catalog_name: &str) -> Result<Option<Vec<String>>, DataFusionError> {
        Ok(CatalogProviderList::catalog(self.0.as_ref(), catalog_name).map(|c| sorted(c.schema_names())))
    }

    async fn table_names(&self, catalog_name: &str, schema_name: &str) -> Result<Option<Vec<String>>, DataFusionError> {
        let Some(schema) = self.schema(catalog_name, schema_name) else {
            return Ok(None);
        };
        let present = schema.table_names();
        Ok(Some(if schema_name == PUBLIC { stable_order(present, &known_tables()) } else { sorted(present) }))
    }

    async fn table_schema(
        &self,
        catalog_name: &str,
        schema_name: &str,
        table_name: &str,
    ) -> Result<Option<SchemaRef>, DataFusionError> {
        match self.schema(catalog_name, schema_name) {
            // A known name not registered in this session is skipped after taking its OID.
            Some(schema) => Ok(schema.table(table_name).await?.map(|t| t.schema())),
            None => Ok(None),
        }
    }

    async fn table_type(
        &self,
        catalog_name: &str,
        schema_name: &str,
        table_name: &str,
    ) -> Result<Option<TableType>, DataFusionError> {
        match self.schema(catalog_name, schema_name) {
            Some(schema) => schema.table_type(table_name).await,
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_names_keep_their_places_whatever_is_present() {
        let known = ["events", "alerts", "audit_log"];
        let one = stable_order(vec!["zeta".into(), "alerts".into(), "events".into()], &known);
        let two = stable_order(vec!["events".into(), "audit_log".into(), "alpha".into()], &known);
        assert_eq!(one, ["events", "alerts", "audit_log", "zeta"]);
        assert_eq!(two, ["events", "alerts", "audit_log", "alpha"]);
    }

    #[test]
    fn every_table_and_view_is_known_once() {
        let names = known_tables();
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len());
        assert!(names.contains(&"events") && names.contains(&"token_activity"));
    }

    #[test]
    fn catalog_queries_are_told_apart_from_others() {
        assert!(reads_catalog("SELECT a.attname FROM pg_catalog.pg_attribute a WHERE a.attrelid = '16390'"));
        assert!(reads_catalog("select * from INFORMATION_SCHEMA.columns"));
        assert!(!reads_catalog("SELECT count(*) FROM events"));
    }
}
