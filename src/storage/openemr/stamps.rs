//! InnoDB's change stamps of OpenEMR tables (`information_schema.TABLES.UPDATE_TIME`); what they
//! can be trusted for is `domain::table_stamp`'s to say.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use sqlx::{MySqlPool, QueryBuilder};

use crate::{domain::table_stamp::Stamp, storage::StorageError};

/// The stamps of `tables`, in their order (`None` for one the server has not seen change).
pub async fn of(pool: &MySqlPool, tables: &[&'static str]) -> Result<Vec<Stamp>, StorageError> {
    let mut q = QueryBuilder::new(
        "SELECT TABLE_NAME, UPDATE_TIME FROM information_schema.TABLES \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN (",
    );
    let mut listed = q.separated(", ");
    for table in tables {
        listed.push_bind(*table);
    }
    q.push(")");
    let rows: HashMap<String, Option<NaiveDateTime>> =
        q.build_query_as().fetch_all(pool).await.map_err(StorageError::from_sqlx)?.into_iter().collect();
    Ok(tables.iter().map(|t| rows.get(*t).copied().flatten()).collect())
}
