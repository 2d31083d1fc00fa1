use sqlx::{MySqlConnection, MySqlPool};

use crate::{
    domain::acl::{AclGrant, AclGroup, AclLevel},
    storage::{StorageError, openemr::sequences},
};

/// The user's ARO groups plus all their ancestors in the nested set, as `acl_get_groups` finds them.
pub async fn groups(pool: &MySqlPool, username: &str) -> Result<Vec<AclGroup>, StorageError> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT DISTINCT g2.value, g2.name FROM gacl_aro o \
         JOIN gacl_groups_aro_map gm ON gm.aro_id = o.id \
         JOIN gacl_aro_groups g1 ON g1.id = gm.group_id \
         JOIN gacl_aro_groups g2 ON g2.lft <= g1.lft AND g2.rgt >= g1.rgt \
         WHERE o.section_value = 'users' AND BINARY o.value = ? \
         ORDER BY g2.value",
    )
    .bind(username)
    .fetch_all(pool)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(rows.into_iter().map(|(value, name)| AclGroup { value, name }).collect())
}

/// `(section, value, grant)` for every enabled ACL naming the user directly or any of the user's
/// groups (ancestors included), one row per ACO it covers.
pub async fn grants(
    pool: &MySqlPool,
    username: &str,
) -> Result<Vec<(String, String, AclGrant)>, StorageError> {
    let rows: Vec<(String, String, bool, Option<String>)> = sqlx::query_as(
        "SELECT ac.section_value, ac.value, a.allow <> 0 AS allow, a.return_value \
         FROM gacl_acl a \
         JOIN gacl_aco_map ac ON ac.acl_id = a.id \
         WHERE a.enabled = 1 AND ( \
           EXISTS (SELECT 1 FROM gacl_aro_map ar \
                   WHERE ar.acl_id = a.id AND ar.section_value = 'users' AND BINARY ar.value = ?) \
           OR EXISTS (SELECT 1 FROM gacl_aro_groups_map arg \
                      JOIN gacl_aro_groups g2 ON g2.id = arg.group_id \
                      JOIN gacl_aro_groups g1 ON g2.lft <= g1.lft AND g2.rgt >= g1.rgt \
                      JOIN gacl_groups_aro_map gm ON gm.group_id = g1.id \
                      JOIN gacl_aro o ON o.id = gm.aro_id \
                      WHERE arg.acl_id = a.id AND o.section_value = 'users' AND BINARY o.value = ?)) \
         ORDER BY ac.section_value, ac.value, a.id",
    )
    .bind(username)
    .bind(username)
    .fetch_all(pool)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(rows
        .into_iter()
        .map(|(section, value, allow, return_value)| {
            let level = return_value.as_deref().and_then(AclLevel::parse);
            (section, value, AclGrant { allow, level })
        })
        .collect())
}

/// `users.id` of the active users in ARO group `group` (directly or in a group below it).
pub async fn active_members(pool: &MySqlPool, group: &str) -> Result<Vec<i64>, StorageError> {
    sqlx::query_scalar(
        "SELECT DISTINCT u.id FROM gacl_aro_groups g2 \
         JOIN gacl_aro_groups g1 ON g2.lft <= g1.lft AND g2.rgt >= g1.rgt \
         JOIN gacl_groups_aro_map gm ON gm.group_id = g1.id \
         JOIN gacl_aro o ON o.id = gm.aro_id AND o.section_value = 'users' \
         JOIN users u ON BINARY u.username = o.value \
         WHERE g2.value = ? AND u.active = 1 ORDER BY u.id",
    )
    .bind(group)
    .fetch_all(pool)
    .await
    .map_err(StorageError::from_sqlx)
}

/// A phpGACL ARO group below the root: the roles users are put in.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RoleRow {
    pub id: i64,
    pub parent_id: i64,
    pub value: String,
    pub name: String,
    pub members: i64,
}

/// Every group but the root, in tree order, with its count of direct members.
pub async fn roles(pool: &MySqlPool) -> Result<Vec<RoleRow>, StorageError> {
    sqlx::query_as(
        "SELECT CAST(g.id AS SIGNED) AS id, CAST(g.parent_id AS SIGNED) AS parent_id, g.value, g.name, \
         (SELECT COUNT(*) FROM gacl_groups_aro_map gm WHERE gm.group_id = g.id) AS members \
         FROM gacl_aro_groups g WHERE g.parent_id <> 0 ORDER BY g.lft",
    )
    .fetch_all(pool)
    .await
    .map_err(StorageError::from_sqlx)
}

/// `(group id, section, value, grant)` for every enabled ACL reaching a group, through the group
/// itself or any ancestor.
pub async fn role_grants(pool: &MySqlPool) -> Result<Vec<(i64, String, String, AclGrant)>, StorageError> {
    let rows: Vec<(i64, String, String, bool, Option<String>)> = sqlx::query_as(
        "SELECT CAST(g1.id AS SIGNED), ac.section_value, ac.value, a.allow <> 0 AS allow, a.return_value \
         FROM gacl_aro_groups g1 \
         JOIN gacl_aro_groups g2 ON g2.lft <= g1.lft AND g2.rgt >= g1.rgt \
         JOIN gacl_aro_groups_map arg ON arg.group_id = g2.id \
         JOIN gacl_acl a ON a.id = arg.acl_id AND a.enabled = 1 \
         JOIN gacl_aco_map ac ON ac.acl_id = a.id \
         ORDER BY g1.id, ac.section_value, ac.value, a.id",
    )
    .fetch_all(pool)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(rows
        .into_iter()
        .map(|(group, section, value, allow, return_value)| {
            let level = return_value.as_deref().and_then(AclLevel::parse);
            (group, section, value, AclGrant { allow, level })
        })
        .collect())
}

/// The groups the user is put in directly (`aclGetGroupTitles`), by value.
pub async fn direct_groups(
    conn: &mut MySqlConnection,
    username: &str,
) -> Result<Vec<AclGroup>, StorageError> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT g.value, g.name FROM gacl_aro o \
         JOIN gacl_groups_aro_map gm ON gm.aro_id = o.id \
         JOIN gacl_aro_groups g ON g.id = gm.group_id \
         WHERE o.section_value = 'users' AND BINARY o.value = ? ORDER BY g.lft",
    )
    .bind(username)
    .fetch_all(conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    Ok(rows.into_iter().map(|(value, name)| AclGroup { value, name }).collect())
}

/// Puts the user's ARO in exactly `group_ids`, as `AclExtended::setUserAro` does through
/// phpGACL: the ARO (named after the user, order 10) is created with an id from
/// `gacl_aro_seq` or renamed, and its memberships replaced.
pub async fn set_groups(
    conn: &mut MySqlConnection,
    username: &str,
    full_name: &str,
    group_ids: &[i64],
) -> Result<(), StorageError> {
    let existing: Option<i64> = sqlx::query_scalar(
        "SELECT CAST(id AS SIGNED) FROM gacl_aro WHERE section_value = 'users' AND BINARY value = ? FOR UPDATE",
    )
    .bind(username)
    .fetch_optional(&mut *conn)
    .await
    .map_err(StorageError::from_sqlx)?;
    let aro = match existing {
        Some(aro) => {
            sqlx::query("UPDATE gacl_aro SET name = ?, order_value = 10, hidden = 0 WHERE id = ?")
                .bind(full_name)
                .bind(aro)
                .execute(&mut *conn)
                .await
                .map_err(StorageError::from_sqlx)?;
            sqlx::query("DELETE FROM gacl_groups_aro_map WHERE aro_id = ?")
                .bind(aro)
                .execute(&mut *conn)
                .await
                .map_err(StorageError::from_sqlx)?;
            aro
        }
        None => {
            let aro = sequences::next_aro_id(conn).await?;
            sqlx::query(
                "INSERT INTO gacl_aro (id, section_value, value, order_value, name, hidden) \
                 VALUES (?, 'users', ?, 10, ?, 0)",
            )
            .bind(aro)
            .bind(username)
            .bind(full_name)
            .execute(&mut *conn)
            .await
            .map_err(StorageError::from_sqlx)?;
            aro
        }
    };
    for group in group_ids {
        sqlx::query("INSERT INTO gacl_groups_aro_map (group_id, aro_id) VALUES (?, ?)")
            .bind(group)
            .bind(aro)
            .execute(&mut *conn)
            .await
            .map_err(StorageError::from_sqlx)?;
    }
    Ok(())
}
