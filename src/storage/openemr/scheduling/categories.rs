use sqlx::MySqlPool;

use crate::{
    domain::scheduling::status::StatusCode, domain::scheduling::status::StatusOption, storage::StorageError,
};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CategoryRow {
    pub pc_catid: u32,
    pub pc_constant_id: Option<String>,
    pub pc_catname: Option<String>,
    pub pc_catcolor: Option<String>,
    /// Seconds.
    pub pc_duration: i64,
    /// 0 patient, 1 provider, 2 clinic, 3 therapy group.
    pub pc_cattype: i32,
    pub pc_active: i8,
    pub pc_end_all_day: i8,
}

/// Category type 2: clinic-wide holidays and closures.
pub const CLINIC: i32 = 2;
pub const PATIENT: i32 = 0;

pub async fn all(pool: &MySqlPool) -> Result<Vec<CategoryRow>, StorageError> {
    sqlx::query_as(
        "SELECT pc_catid, pc_constant_id, pc_catname, pc_catcolor, pc_duration, pc_cattype, pc_active, \
         pc_end_all_day FROM openemr_postcalendar_categories ORDER BY pc_seq, pc_catid",
    )
    .fetch_all(pool)
    .await
    .map_err(StorageError::from_sqlx)
}

#[derive(sqlx::FromRow)]
struct StatusRow {
    option_id: String,
    title: String,
    toggle_setting_1: i8,
    toggle_setting_2: i8,
}

/// The active codes of OpenEMR's `apptstat` list, in the list's order.
pub async fn statuses(pool: &MySqlPool) -> Result<Vec<StatusOption>, StorageError> {
    let rows: Vec<StatusRow> = sqlx::query_as(
        "SELECT option_id, title, toggle_setting_1, toggle_setting_2 FROM list_options \
         WHERE list_id = 'apptstat' AND activity = 1 ORDER BY seq, option_id",
    )
    .fetch_all(pool)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(rows
        .into_iter()
        .map(|r| StatusOption {
            code: StatusCode::new(&r.option_id),
            title: r.title,
            checks_in: r.toggle_setting_1 != 0,
            checks_out: r.toggle_setting_2 != 0,
        })
        .collect())
}
