//! The signed-in user's own `users` row, read and changed field by field.

use sqlx::{MySql, MySqlConnection, MySqlPool, QueryBuilder};

use crate::{
    domain::{dashboard::profile::Field, user::UserId},
    storage::StorageError,
};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProfileRow {
    pub id: i64,
    pub username: String,
    pub title: Option<String>,
    pub fname: Option<String>,
    pub mname: Option<String>,
    pub lname: Option<String>,
    pub suffix: Option<String>,
    pub valedictory: Option<String>,
    pub specialty: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub phonew1: Option<String>,
    pub phonecell: Option<String>,
    pub fax: Option<String>,
    pub npi: Option<String>,
    pub taxonomy: String,
    pub state_license_number: Option<String>,
    pub facility_id: i64,
    pub facility: Option<String>,
    pub authorized: bool,
}

impl ProfileRow {
    pub fn value(&self, field: Field) -> Option<&str> {
        match field {
            Field::Fname => self.fname.as_deref(),
            Field::Mname => self.mname.as_deref(),
            Field::Lname => self.lname.as_deref(),
            Field::Suffix => self.suffix.as_deref(),
            Field::Valedictory => self.valedictory.as_deref(),
            Field::Specialty => self.specialty.as_deref(),
            Field::Npi => self.npi.as_deref(),
            Field::Taxonomy => Some(self.taxonomy.as_str()),
            Field::StateLicenseNumber => self.state_license_number.as_deref(),
            Field::Email => self.email.as_deref(),
            Field::Phone => self.phone.as_deref(),
            Field::PhoneWork => self.phonew1.as_deref(),
            Field::PhoneCell => self.phonecell.as_deref(),
            Field::Fax => self.fax.as_deref(),
        }
    }
}

const SELECT: &str = "SELECT id, CAST(username AS CHAR) AS username, title, fname, mname, lname, suffix, \
     valedictory, specialty, email, phone, phonew1, phonecell, fax, npi, taxonomy, state_license_number, \
     facility_id, facility, COALESCE(authorized, 0) <> 0 AS authorized FROM users WHERE id = ?";

pub async fn get(pool: &MySqlPool, id: UserId) -> Result<Option<ProfileRow>, StorageError> {
    sqlx::query_as(SELECT).bind(id.0).fetch_optional(pool).await.map_err(StorageError::from_sqlx)
}

/// The row as it is, locked until the transaction ends.
pub async fn lock(conn: &mut MySqlConnection, id: UserId) -> Result<Option<ProfileRow>, StorageError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} FOR UPDATE")))
        .bind(id.0)
        .fetch_optional(conn)
        .await
        .map_err(StorageError::from_sqlx)
}

/// `UPDATE users SET <column> = ?, … WHERE id = ?`, as `usergroup_admin.php` sets each field.
pub async fn update(
    conn: &mut MySqlConnection,
    id: UserId,
    changes: &[(Field, String)],
) -> Result<(), StorageError> {
    let mut q: QueryBuilder<MySql> = QueryBuilder::new("UPDATE users SET ");
    let mut set = q.separated(", ");
    for (field, value) in changes {
        set.push(field.column()).push_unseparated(" = ").push_bind_unseparated(value.clone());
    }
    q.push(" WHERE id = ").push_bind(id.0);
    q.build().execute(conn).await.map_err(StorageError::from_sqlx)?;
    Ok(())
}
