//! `prescriptions` rows as Prescription::persist() writes them (id from sequences, never
//! AUTO_INCREMENT), with a registered uuid and every NOT NULL column OpenEMR leaves to
//! `sql_mode=''` written explicitly; the mmt_ side tables for Australian extras and client keys.

use chrono::{NaiveDate, NaiveDateTime};
use sqlx::{MySql, MySqlConnection, MySqlPool, QueryBuilder};

use crate::storage::{
    StorageError,
    openemr::{sequences, uuid_registry},
};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PrescriptionRow {
    pub id: i64,
    pub uuid: Option<Vec<u8>>,
    pub patient_id: Option<i64>,
    pub date_added: Option<NaiveDateTime>,
    pub date_modified: Option<NaiveDateTime>,
    pub provider_id: Option<i64>,
    pub encounter: Option<i64>,
    pub start_date: Option<NaiveDate>,
    pub drug: Option<String>,
    pub drug_id: i32,
    pub rxnorm_drugcode: Option<String>,
    pub form: Option<i32>,
    pub dosage: Option<String>,
    pub quantity: Option<String>,
    pub size: Option<String>,
    pub unit: Option<i32>,
    pub route: Option<String>,
    pub interval: Option<i32>,
    pub substitute: Option<i32>,
    pub refills: Option<i32>,
    pub per_refill: Option<i32>,
    pub medication: Option<i32>,
    pub note: Option<String>,
    pub active: i32,
    pub external_id: Option<String>,
    pub usage_category: Option<String>,
    pub request_intent: Option<String>,
    pub drug_dosage_instructions: Option<String>,
    pub created_by: Option<i64>,
    pub updated_by: Option<i64>,
}

const SELECT: &str = "SELECT id, uuid, patient_id, date_added, date_modified, CAST(provider_id AS SIGNED) AS provider_id, \
     CAST(encounter AS SIGNED) AS encounter, start_date, drug, drug_id, rxnorm_drugcode, form, dosage, quantity, size, unit, route, \
     `interval`, substitute, refills, per_refill, medication, note, active, external_id, usage_category, request_intent, \
     drug_dosage_instructions, created_by, updated_by FROM prescriptions";

/// Every column the prescription screen edits, already validated.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PrescriptionValues {
    pub provider_id: i64,
    pub encounter: Option<i64>,
    pub start_date: NaiveDate,
    pub drug: String,
    /// The inventory drug (`drugs.drug_id`) prescribed, 0 for none; set on create only.
    pub drug_id: i32,
    pub rxnorm_drugcode: Option<String>,
    pub form: Option<i32>,
    pub dosage: String,
    pub quantity: String,
    pub size: Option<String>,
    pub unit: Option<i32>,
    pub route: Option<String>,
    pub interval: Option<i32>,
    pub substitute: Option<i32>,
    pub refills: i32,
    pub per_refill: i32,
    pub medication: bool,
    pub note: Option<String>,
    pub active: i32,
    pub usage_category: (String, String),
    pub request_intent: (String, String),
    pub drug_dosage_instructions: Option<String>,
}

/// A GenID value no row holds yet: a REST-created (AUTO_INCREMENT) row may already sit on the
/// number, and ORDataObject's upsert would overwrite it. Autocommit, as GenID runs.
pub async fn next_free_id(conn: &mut MySqlConnection) -> Result<i64, StorageError> {
    loop {
        let id = sequences::next_id(conn).await?;
        let taken: Option<i64> = sqlx::query_scalar("SELECT id FROM prescriptions WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(StorageError::from_sqlx)?;
        if taken.is_none() {
            return Ok(id);
        }
    }
}

/// The columns the prescription screen edits, as `SET` assignments: the same for a new row and
/// an edit.
fn push_values(q: &mut QueryBuilder<MySql>, v: &PrescriptionValues, user_id: i64) {
    let mut set = q.separated(", ");
    set.push("provider_id = ").push_bind_unseparated(v.provider_id);
    set.push("encounter = ").push_bind_unseparated(v.encounter);
    set.push("start_date = ").push_bind_unseparated(v.start_date);
    set.push("drug = ").push_bind_unseparated(v.drug.clone());
    set.push("rxnorm_drugcode = ").push_bind_unseparated(v.rxnorm_drugcode.clone());
    set.push("form = ").push_bind_unseparated(v.form);
    set.push("dosage = ").push_bind_unseparated(v.dosage.clone());
    set.push("quantity = ").push_bind_unseparated(v.quantity.clone());
    set.push("size = ").push_bind_unseparated(v.size.clone());
    set.push("unit = ").push_bind_unseparated(v.unit);
    set.push("route = ").push_bind_unseparated(v.route.clone());
    set.push("`interval` = ").push_bind_unseparated(v.interval);
    set.push("substitute = ").push_bind_unseparated(v.substitute);
    set.push("refills = ").push_bind_unseparated(v.refills);
    set.push("per_refill = ").push_bind_unseparated(v.per_refill);
    set.push("medication = ").push_bind_unseparated(i32::from(v.medication));
    set.push("note = ").push_bind_unseparated(v.note.clone());
    set.push("active = ").push_bind_unseparated(v.active);
    set.push("usage_category = ").push_bind_unseparated(v.usage_category.0.clone());
    set.push("usage_category_title = ").push_bind_unseparated(v.usage_category.1.clone());
    set.push("request_intent = ").push_bind_unseparated(v.request_intent.0.clone());
    set.push("request_intent_title = ").push_bind_unseparated(v.request_intent.1.clone());
    set.push("drug_dosage_instructions = ").push_bind_unseparated(v.drug_dosage_instructions.clone());
    set.push("updated_by = ").push_bind_unseparated(user_id);
}

pub async fn insert(
    conn: &mut MySqlConnection,
    id: i64,
    pid: i64,
    v: &PrescriptionValues,
    external_id: Option<&str>,
    user_id: i64,
    now: NaiveDateTime,
) -> Result<(), StorageError> {
    let uuid = uuid_registry::create(conn, "prescriptions", "id").await?;
    let mut q = QueryBuilder::new("INSERT INTO prescriptions SET id = ");
    q.push_bind(id).push(", uuid = ").push_bind(uuid.to_vec()).push(", patient_id = ").push_bind(pid);
    q.push(", date_added = ").push_bind(now).push(", date_modified = ").push_bind(now);
    q.push(", drug_id = ").push_bind(v.drug_id);
    q.push(", erx_source = 0, erx_uploaded = 0, external_id = ").push_bind(external_id.map(str::to_string));
    // txDate is NOT NULL without a default and the UI never sets it: the start date is its meaning.
    q.push(", txDate = ").push_bind(v.start_date).push(", created_by = ").push_bind(user_id).push(", ");
    push_values(&mut q, v, user_id);
    q.build().execute(conn).await.map_err(StorageError::from_sqlx)?;
    Ok(())
}

/// The edit screen's save: every edited column, date_modified and updated_by.
pub async fn update(
    conn: &mut MySqlConnection,
    id: i64,
    v: &PrescriptionValues,
    user_id: i64,
    now: NaiveDateTime,
) -> Result<(), StorageError> {
    let mut q = QueryBuilder::new("UPDATE prescriptions SET date_modified = ");
    q.push_bind(now).push(", ");
    push_values(&mut q, v, user_id);
    q.push(" WHERE id = ").push_bind(id);
    q.build().execute(conn).await.map_err(StorageError::from_sqlx)?;
    Ok(())
}

/// The prescription OpenEMR's FHIR API knows by `uuid`.
pub async fn id_by_uuid(pool: &MySqlPool, uuid: &[u8; 16]) -> Result<Option<i64>, StorageError> {
    sqlx::query_scalar("SELECT id FROM prescriptions WHERE uuid = ?")
        .bind(&uuid[..])
        .fetch_optional(pool)
        .await
        .map_err(StorageError::from_sqlx)
}

pub async fn get(pool: &MySqlPool, id: i64) -> Result<Option<PrescriptionRow>, StorageError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE id = ?")))
        .bind(id)
        .fetch_optional(pool)
        .await
        .map_err(StorageError::from_sqlx)
}

/// Prescription::prescriptions_factory's order: active first, then most recently changed.
pub async fn list(pool: &MySqlPool, pid: i64) -> Result<Vec<PrescriptionRow>, StorageError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE patient_id = ? ORDER BY active DESC, date_modified DESC, date_added DESC, id DESC"
    )))
    .bind(pid)
    .fetch_all(pool)
    .await
    .map_err(StorageError::from_sqlx)
}

/// The patient's current medication-list entry for this drug, as set_medication matches it
/// (by lists_medication.prescription_id, else by title): (lists.id, activity).
pub async fn medication_entry(
    conn: &mut MySqlConnection,
    pid: i64,
    prescription_id: i64,
    drug: &str,
) -> Result<Option<(i64, i32)>, StorageError> {
    sqlx::query_as(
        "SELECT l.id, CAST(COALESCE(l.activity, 0) AS SIGNED) FROM lists l \
         WHERE l.pid = ? AND l.type = 'medication' AND (l.enddate IS NULL OR CAST(NOW() AS DATE) < l.enddate) \
         AND (EXISTS (SELECT 1 FROM lists_medication m WHERE m.list_id = l.id AND m.prescription_id = ?) \
              OR UPPER(TRIM(l.title)) = UPPER(TRIM(?))) \
         ORDER BY l.activity DESC, l.id LIMIT 1",
    )
    .bind(pid)
    .bind(prescription_id)
    .bind(drug)
    .fetch_optional(conn)
    .await
    .map_err(StorageError::from_sqlx)
}

/// set_medication's activity switch, stamped with the acting user as it does.
pub async fn set_medication_activity(
    conn: &mut MySqlConnection,
    list_id: i64,
    activity: i32,
    title: &str,
    username: &str,
    groupname: &str,
) -> Result<(), StorageError> {
    sqlx::query("UPDATE lists SET activity = ?, title = ?, user = ?, groupname = ? WHERE id = ?")
        .bind(activity)
        .bind(title)
        .bind(username)
        .bind(groupname)
        .bind(list_id)
        .execute(conn)
        .await
        .map_err(StorageError::from_sqlx)?;
    Ok(())
}

/// lists_medication.prescription_id, which the 8.x listing uses to pair the two rows.
pub async fn link_medication(
    conn: &mut MySqlConnection,
    list_id: i64,
    prescription_id: i64,
) -> Result<(), StorageError> {
    sqlx::query("UPDATE lists_medication SET prescription_id = ? WHERE list_id = ?")
        .bind(prescription_id)
        .bind(list_id)
        .execute(conn)
        .await
        .map_err(StorageError::from_sqlx)?;
    Ok(())
}

/// Australian prescriber and patient details kept beside a prescription.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct AustralianExtras {
    pub prescriber_number: Option<String>,
    pub prescriber_hpii: Option<String>,
    pub medicare_number: Option<String>,
    pub ihi: Option<String>,
    pub pbs: bool,
    pub controlled_schedule: Option<String>,
}

pub async fn save_extras(
    conn: &mut MySqlConnection,
    prescription_id: i64,
    x: &AustralianExtras,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO mmt_prescription_au (prescription_id, prescriber_number, prescriber_hpii, medicare_number, ihi, pbs, \
         controlled_schedule) VALUES (?, ?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE prescriber_number = VALUES(prescriber_number), \
         prescriber_hpii = VALUES(prescriber_hpii), medicare_number = VALUES(medicare_number), ihi = VALUES(ihi), \
         pbs = VALUES(pbs), controlled_schedule = VALUES(controlled_schedule)",
    )
    .bind(prescription_id)
    .bind(&x.prescriber_number)
    .bind(&x.prescriber_hpii)
    .bind(&x.medicare_number)
    .bind(&x.ihi)
    .bind(x.pbs)
    .bind(&x.controlled_schedule)
    .execute(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(())
}

pub async fn extras(
    pool: &MySqlPool,
    prescription_id: i64,
) -> Result<Option<AustralianExtras>, StorageError> {
    sqlx::query_as(
        "SELECT prescriber_number, prescriber_hpii, medicare_number, ihi, pbs <> 0 AS pbs, controlled_schedule \
         FROM mmt_prescription_au WHERE prescription_id = ?",
    )
    .bind(prescription_id)
    .fetch_optional(pool)
    .await
    .map_err(StorageError::from_sqlx)
}

/// Claims a client key inside the create's transaction. A concurrent claim of the same key waits
/// on the row lock and then sees the winner: `Some((fingerprint, prescription_id))`.
pub async fn claim_key(
    conn: &mut MySqlConnection,
    key: &str,
    pid: i64,
    fingerprint: &str,
    prescription_id: i64,
) -> Result<Option<(String, i64, i64)>, StorageError> {
    let claimed = sqlx::query(
        "INSERT INTO mmt_prescription_keys (external_id, pid, fingerprint, prescription_id) VALUES (?, ?, ?, ?)",
    )
    .bind(key)
    .bind(pid)
    .bind(fingerprint)
    .bind(prescription_id)
    .execute(&mut *conn)
    .await
    .map_err(StorageError::from_sqlx);
    match claimed {
        Ok(_) => Ok(None),
        Err(e) if e.is_duplicate_key() => claimed_key(conn, key).await,
        Err(e) => Err(e),
    }
}

/// (fingerprint, prescription_id, pid) stored under a client key.
pub async fn claimed_key(
    conn: &mut MySqlConnection,
    key: &str,
) -> Result<Option<(String, i64, i64)>, StorageError> {
    sqlx::query_as(
        "SELECT fingerprint, CAST(prescription_id AS SIGNED), pid FROM mmt_prescription_keys WHERE external_id = ?",
    )
    .bind(key)
    .fetch_optional(conn)
    .await
    .map_err(StorageError::from_sqlx)
}

/// What the PDF prints about the prescriber (users) and their facility.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct Prescriber {
    pub fname: Option<String>,
    pub mname: Option<String>,
    pub lname: Option<String>,
    pub suffix: Option<String>,
    pub npi: Option<String>,
    pub federaldrugid: Option<String>,
    pub state_license_number: Option<String>,
    pub facility: Option<String>,
    pub street: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    pub phone: Option<String>,
    pub fax: Option<String>,
}

/// multiprint_header's facility: the one named in users.facility.
pub async fn prescriber(pool: &MySqlPool, user_id: i64) -> Result<Option<Prescriber>, StorageError> {
    sqlx::query_as(
        "SELECT u.fname, u.mname, u.lname, u.suffix, u.npi, u.federaldrugid, u.state_license_number, \
         f.name AS facility, f.street, f.city, f.state, f.postal_code, f.phone, f.fax \
         FROM users u LEFT JOIN facility f ON f.name = u.facility WHERE u.id = ?",
    )
    .bind(user_id)
    .fetch_optional(pool)
    .await
    .map_err(StorageError::from_sqlx)
}

/// The e-mail address of the pharmacy the prescription names, else of the patient's preferred one.
pub async fn pharmacy_email(pool: &MySqlPool, id: i64) -> Result<Option<String>, StorageError> {
    let found: Option<(Option<String>,)> = sqlx::query_as(
        "SELECT ph.email FROM prescriptions p LEFT JOIN patient_data pd ON pd.pid = p.patient_id \
         JOIN pharmacies ph ON ph.id = COALESCE(NULLIF(p.pharmacy_id, 0), pd.pharmacy_id) WHERE p.id = ?",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(found.and_then(|(email,)| email).filter(|e| !e.trim().is_empty()))
}

/// These patients' prescriptions (bulk export).
pub async fn for_patients(pool: &MySqlPool, pids: &[i64]) -> Result<Vec<PrescriptionRow>, StorageError> {
    crate::storage::of_patients(pool, SELECT, "patient_id", pids, "patient_id, id").await
}
