use sqlx::MySqlPool;

use crate::{
    domain::acl::{AclGrant, AclGroup, AclLevel},
    storage::StorageError,
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
