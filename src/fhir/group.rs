//! Group: OpenEMR's provider groups, named and listed as its FHIR API lists them.

use super::{
    instant,
    model::{Group, GroupMember, Meta},
    patient_reference, text,
};
use crate::storage::openemr::{providers::GroupRow, uuid_registry};

pub fn group_of(row: &GroupRow, members: &[Vec<u8>]) -> Option<Group> {
    let id = uuid_registry::to_string(Some(&row.uuid))?;
    let provider: Vec<String> = [&row.fname, &row.mname, &row.lname]
        .into_iter()
        .filter_map(|n| n.as_deref().and_then(text))
        .collect();
    let provider =
        if provider.is_empty() { "(Provider Name Unknown)".to_string() } else { provider.join(" ") };
    let member: Vec<GroupMember> =
        members.iter().map(|uuid| GroupMember { entity: patient_reference(Some(uuid)) }).collect();
    Some(Group {
        resource_type: "Group".into(),
        id,
        meta: Meta {
            version_id: Some("1".into()),
            last_updated: row.created.and_then(instant),
            profile: Vec::new(),
        },
        kind: "person".into(),
        actual: true,
        name: Some(format!("{provider} Patients")),
        quantity: u32::try_from(member.len()).unwrap_or(u32::MAX),
        member,
    })
}
