//! form_vitals as VitalsService::saveVitalsArray writes it, its `forms` row as addForm writes it,
//! form_vital_details per interpretation, and the FHIR `uuid_mapping` rows.

use chrono::NaiveDateTime;
use sqlx::{MySql, MySqlConnection, MySqlPool, QueryBuilder};

use crate::{
    domain::{
        chart::vitals::{self, Measure, Measurements},
        patient::Pid,
    },
    storage::{
        StorageError,
        openemr::{encounters::Scope, uuid_registry},
    },
};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct VitalsRow {
    pub id: i64,
    pub uuid: Option<Vec<u8>>,
    pub date: Option<NaiveDateTime>,
    pub pid: i64,
    pub encounter: i64,
    pub user: Option<String>,
    pub bps: Option<String>,
    pub bpd: Option<String>,
    pub weight: Option<f64>,
    pub height: Option<f64>,
    pub temperature: Option<f64>,
    pub temp_method: Option<String>,
    pub pulse: Option<f64>,
    pub respiration: Option<f64>,
    pub note: Option<String>,
    pub bmi: Option<f64>,
    pub bmi_status: Option<String>,
    pub waist_circ: Option<f64>,
    pub head_circ: Option<f64>,
    pub oxygen_saturation: Option<f64>,
    pub oxygen_flow_rate: Option<f64>,
    pub inhaled_oxygen_concentration: Option<f64>,
    pub last_updated: NaiveDateTime,
}

impl VitalsRow {
    /// OpenEMR writes 0 for a measurement not taken (the column default) and shows nothing.
    pub fn measurements(&self) -> Measurements {
        let number = |s: &Option<String>| s.as_deref().and_then(|v| v.trim().parse::<f64>().ok());
        let values = [
            (Measure::Weight, self.weight),
            (Measure::Height, self.height),
            (Measure::Bps, number(&self.bps)),
            (Measure::Bpd, number(&self.bpd)),
            (Measure::Pulse, self.pulse),
            (Measure::Respiration, self.respiration),
            (Measure::Temperature, self.temperature),
            (Measure::OxygenSaturation, self.oxygen_saturation),
            (Measure::OxygenFlowRate, self.oxygen_flow_rate),
            (Measure::InhaledOxygenConcentration, self.inhaled_oxygen_concentration),
            (Measure::HeadCirc, self.head_circ),
            (Measure::WaistCirc, self.waist_circ),
        ];
        Measurements(
            values.into_iter().filter_map(|(m, v)| v.filter(|v| *v != 0.0).map(|v| (m, v))).collect(),
        )
    }
}

const SELECT: &str = "SELECT v.id, v.uuid, v.date, v.pid, f.encounter, v.user, v.bps, v.bpd, \
     CAST(v.weight AS DOUBLE) AS weight, CAST(v.height AS DOUBLE) AS height, \
     CAST(v.temperature AS DOUBLE) AS temperature, v.temp_method, CAST(v.pulse AS DOUBLE) AS pulse, \
     CAST(v.respiration AS DOUBLE) AS respiration, v.note, CAST(v.BMI AS DOUBLE) AS bmi, v.BMI_status AS bmi_status, \
     CAST(v.waist_circ AS DOUBLE) AS waist_circ, CAST(v.head_circ AS DOUBLE) AS head_circ, \
     CAST(v.oxygen_saturation AS DOUBLE) AS oxygen_saturation, CAST(v.oxygen_flow_rate AS DOUBLE) AS oxygen_flow_rate, \
     CAST(v.inhaled_oxygen_concentration AS DOUBLE) AS inhaled_oxygen_concentration, v.last_updated \
     FROM form_vitals v \
     JOIN forms f ON f.form_id = v.id AND f.formdir = 'vitals' AND f.deleted = 0 AND f.pid = v.pid";

/// Who writes the form: the session user OpenEMR would take `user`, `groupname` and
/// `authorized` from.
pub struct Author<'a> {
    pub username: &'a str,
    pub groupname: &'a str,
    pub authorized: bool,
}

/// Everything form_vitals holds that the sidecar sets, in US units.
pub struct VitalsValues<'a> {
    pub date: NaiveDateTime,
    pub measurements: &'a Measurements,
    pub temp_method: &'a str,
    pub note: &'a str,
}

fn bp(m: &Measurements, which: Measure) -> Option<String> {
    m.get(which).map(|v| v.to_string())
}

fn bind_values(q: &mut QueryBuilder<MySql>, v: &VitalsValues<'_>, author: &Author<'_>) {
    let m = v.measurements;
    let number = |measure| m.get(measure).unwrap_or(0.0);
    let bmi = m.bmi();
    let mut s = q.separated(", ");
    s.push("date = ").push_bind_unseparated(v.date);
    s.push("user = ").push_bind_unseparated(author.username);
    s.push("groupname = ").push_bind_unseparated(author.groupname);
    s.push("authorized = ").push_bind_unseparated(i8::from(author.authorized));
    s.push("bps = ").push_bind_unseparated(bp(m, Measure::Bps));
    s.push("bpd = ").push_bind_unseparated(bp(m, Measure::Bpd));
    for measure in Measure::ALL.into_iter().filter(|x| !matches!(x, Measure::Bps | Measure::Bpd)) {
        s.push(measure.column()).push_unseparated(" = ").push_bind_unseparated(number(measure));
    }
    // C_FormVitals clears the method of an absent temperature.
    let method = if m.get(Measure::Temperature).is_some() { v.temp_method } else { "" };
    s.push("temp_method = ").push_bind_unseparated(method);
    s.push("note = ").push_bind_unseparated(v.note);
    s.push("BMI = ").push_bind_unseparated(bmi.unwrap_or(0.0));
    s.push("BMI_status = ").push_bind_unseparated(bmi.and_then(vitals::bmi_status).unwrap_or(""));
}

/// Inserts the form, its `forms` row and its FHIR mappings; returns form_vitals.id.
pub async fn insert(
    conn: &mut MySqlConnection,
    pid: Pid,
    encounter: i64,
    values: &VitalsValues<'_>,
    author: &Author<'_>,
) -> Result<i64, StorageError> {
    let uuid = uuid_registry::create(conn, "form_vitals", "id").await?;
    let mut q = QueryBuilder::new("INSERT INTO form_vitals SET uuid = ");
    q.push_bind(&uuid[..]).push(", pid = ").push_bind(pid.0).push(", activity = 1, ");
    bind_values(&mut q, values, author);
    let id = q.build().execute(&mut *conn).await.map_err(StorageError::from_sqlx)?.last_insert_id() as i64;
    sqlx::query(
        "INSERT INTO forms (date, encounter, form_name, form_id, pid, user, groupname, authorized, formdir, \
         therapy_group_id) VALUES (NOW(), ?, 'Vitals', ?, ?, ?, ?, ?, 'vitals', NULL)",
    )
    .bind(encounter)
    .bind(id)
    .bind(pid.0)
    .bind(author.username)
    .bind(author.groupname)
    .bind(i8::from(author.authorized))
    .execute(&mut *conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    insert_observation_mappings(conn, &uuid).await?;
    Ok(id)
}

/// What UuidMapping::createAllMissingResourceUuids would add later: one Observation uuid per
/// LOINC code, each registered with `mapped = 1`.
async fn insert_observation_mappings(
    conn: &mut MySqlConnection,
    target: &[u8; 16],
) -> Result<(), StorageError> {
    for code in vitals::OBSERVATION_LOINC_CODES {
        let path = vitals::observation_resource_path(code);
        uuid_registry::map(conn, "Observation", "form_vitals", target, Some(&path)).await?;
    }
    Ok(())
}

pub async fn update(
    conn: &mut MySqlConnection,
    id: i64,
    values: &VitalsValues<'_>,
    author: &Author<'_>,
) -> Result<(), StorageError> {
    let mut q = QueryBuilder::new("UPDATE form_vitals SET ");
    bind_values(&mut q, values, author);
    q.push(" WHERE id = ").push_bind(id);
    q.build().execute(conn).await.map_err(StorageError::from_sqlx)?;
    Ok(())
}

/// An interpretation from list `vitals-interpretation`, archived with its title as
/// C_FormVitals::populate_object does (option id doubles as the code); `None` clears it.
pub struct Interpretation<'a> {
    pub column: &'a str,
    pub option: Option<(&'a str, &'a str)>,
}

pub async fn set_interpretation(
    conn: &mut MySqlConnection,
    form_id: i64,
    i: &Interpretation<'_>,
) -> Result<(), StorageError> {
    let (list, option, title) = match i.option {
        Some((option, title)) => (Some("vitals-interpretation"), Some(option), Some(title)),
        None => (None, None, None),
    };
    let existing: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM form_vital_details WHERE form_id = ? AND vitals_column = ? LIMIT 1",
    )
    .bind(form_id)
    .bind(i.column)
    .fetch_optional(&mut *conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    let sql = match existing {
        Some(_) => {
            "UPDATE form_vital_details SET interpretation_list_id = ?, interpretation_option_id = ?, \
             interpretation_codes = ?, interpretation_title = ? WHERE id = ?"
        }
        None if list.is_none() => return Ok(()),
        None => {
            "INSERT INTO form_vital_details (interpretation_list_id, interpretation_option_id, interpretation_codes, \
             interpretation_title, form_id, vitals_column) VALUES (?, ?, ?, ?, ?, ?)"
        }
    };
    let mut q = sqlx::query(sql).bind(list).bind(option).bind(option).bind(title);
    q = match existing {
        Some(id) => q.bind(id),
        None => q.bind(form_id).bind(i.column),
    };
    q.execute(conn).await.map_err(StorageError::from_sqlx)?;
    Ok(())
}

/// (column, option id, title) of a form's interpretations.
pub async fn interpretations(
    pool: &MySqlPool,
    form_ids: &[i64],
) -> Result<Vec<(i64, String, String, String)>, StorageError> {
    if form_ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut q = QueryBuilder::new(
        "SELECT form_id, vitals_column, interpretation_option_id, COALESCE(interpretation_title, '') \
         FROM form_vital_details WHERE interpretation_option_id IS NOT NULL AND form_id IN (",
    );
    let mut ids = q.separated(", ");
    for id in form_ids {
        ids.push_bind(*id);
    }
    q.push(") ORDER BY form_id, vitals_column");
    q.build_query_as().fetch_all(pool).await.map_err(StorageError::from_sqlx)
}

pub async fn get(pool: &MySqlPool, id: i64) -> Result<Option<VitalsRow>, StorageError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE v.id = ?")))
        .bind(id)
        .fetch_optional(pool)
        .await
        .map_err(StorageError::from_sqlx)
}

pub async fn for_encounter(pool: &MySqlPool, encounter: i64) -> Result<Vec<VitalsRow>, StorageError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE f.encounter = ? ORDER BY v.date, v.id")))
        .bind(encounter)
        .fetch_all(pool)
        .await
        .map_err(StorageError::from_sqlx)
}

/// The Observation uuids OpenEMR's FHIR API serves for these forms (by `form_vitals.uuid`): each
/// form's uuid with `resource_path` and the Observation's uuid.
pub async fn observation_ids(
    pool: &MySqlPool,
    forms: &[Vec<u8>],
) -> Result<Vec<(Vec<u8>, String, Vec<u8>)>, StorageError> {
    if forms.is_empty() {
        return Ok(Vec::new());
    }
    let mut q = QueryBuilder::new(
        "SELECT target_uuid, resource_path, uuid FROM uuid_mapping \
         WHERE resource = 'Observation' AND `table` = 'form_vitals' AND target_uuid IN (",
    );
    let mut listed = q.separated(", ");
    for form in forms {
        listed.push_bind(form.clone());
    }
    q.push(")");
    q.build_query_as().fetch_all(pool).await.map_err(StorageError::from_sqlx)
}

/// The vitals form and `resource_path` behind an Observation uuid.
pub async fn observation_target(
    pool: &MySqlPool,
    uuid: &[u8; 16],
) -> Result<Option<(i64, String)>, StorageError> {
    sqlx::query_as(
        "SELECT v.id, m.resource_path FROM uuid_mapping m JOIN form_vitals v ON v.uuid = m.target_uuid \
         WHERE m.uuid = ? AND m.resource = 'Observation' AND m.`table` = 'form_vitals'",
    )
    .bind(&uuid[..])
    .fetch_optional(pool)
    .await
    .map_err(StorageError::from_sqlx)
}

/// A patient's readings in encounters the caller may see, oldest first, within [from, to).
pub async fn trend(
    pool: &MySqlPool,
    pid: Pid,
    scope: &Scope,
    from: Option<NaiveDateTime>,
    to: Option<NaiveDateTime>,
    limit: u32,
) -> Result<Vec<VitalsRow>, StorageError> {
    let mut q = QueryBuilder::new(SELECT);
    q.push(" JOIN form_encounter fe ON fe.encounter = f.encounter");
    crate::storage::openemr::encounters::push_patient_filter(&mut q, pid, scope);
    q.push(" AND v.pid = ").push_bind(pid.0);
    if let Some(from) = from {
        q.push(" AND v.date >= ").push_bind(from);
    }
    if let Some(to) = to {
        q.push(" AND v.date < ").push_bind(to);
    }
    q.push(" ORDER BY v.date, v.id LIMIT ").push_bind(i64::from(limit));
    q.build_query_as().fetch_all(pool).await.map_err(StorageError::from_sqlx)
}

/// These patients' vitals forms (bulk export).
pub async fn for_patients(pool: &MySqlPool, pids: &[i64]) -> Result<Vec<VitalsRow>, StorageError> {
    crate::storage::of_patients(pool, SELECT, "v.pid", pids, "v.pid, v.date, v.id").await
}
