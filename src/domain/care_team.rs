//! A patient's care team (`care_teams` + `care_team_member`), as OpenEMR 8.2's care team card keeps
//! it: which team a patient's chart shows, which members it lists, and the rules a member's
//! fields must meet. No SQL: the lists the values come from are passed in.

use chrono::NaiveDate;

use crate::domain::validation::Issues;

/// The name the API gives the team it creates on a patient's first member.
pub const DEFAULT_TEAM_NAME: &str = "Care Team";
/// `Care_Team_Status` option ids with a meaning of their own.
pub const ACTIVE: &str = "active";
pub const INACTIVE: &str = "inactive";
pub const ENTERED_IN_ERROR: &str = "entered-in-error";
/// OpenEMR's list of member roles and of team and member statuses.
pub const ROLES_LIST: &str = "care_team_roles";
pub const STATUS_LIST: &str = "Care_Team_Status";
/// `care_team_member.note` and `care_teams.note` are TEXT.
pub const NOTE_MAX_BYTES: usize = 65_535;

/// A team as `getCareTeamData` weighs it: its id and status (NULL in rows OpenEMR wrote early).
pub trait TeamStatus {
    fn status(&self) -> Option<&str>;
}

/// Whether a team is one the chart can show (`status IS NULL OR status != 'entered-in-error'`).
pub fn team_visible(status: Option<&str>) -> bool {
    status != Some(ENTERED_IN_ERROR)
}

/// The team the chart shows, among the patient's teams in the order found: the first active one,
/// else the first one at all; teams entered in error never count.
pub fn current_team<T: TeamStatus>(teams: Vec<T>) -> Option<T> {
    let mut visible: Vec<T> = teams.into_iter().filter(|t| team_visible(t.status())).collect();
    match visible.iter().position(|t| t.status() == Some(ACTIVE)) {
        Some(i) => Some(visible.swap_remove(i)),
        None => visible.into_iter().next(),
    }
}

/// Whether the card lists a member with this status (inactive and entered-in-error ones are
/// kept in the table but not shown).
pub fn member_listed(status: Option<&str>) -> bool {
    !matches!(status, Some(INACTIVE) | Some(ENTERED_IN_ERROR))
}

/// A member to add (or, for a user already in the team, the values to write over their row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMember {
    pub user_id: i64,
    pub role: String,
    pub provider_since: Option<NaiveDate>,
    pub status: String,
    pub note: String,
}

/// A member's fields as a client sent them, before validation.
#[derive(Debug, Clone, Default)]
pub struct MemberFields {
    pub role: Option<String>,
    /// `""` clears the date.
    pub provider_since: Option<String>,
    pub status: Option<String>,
    pub note: Option<String>,
}

/// The option ids of OpenEMR's two lists, as they stand.
pub struct Options<'a> {
    pub roles: &'a [String],
    pub statuses: &'a [String],
}

/// The stored member with `fields` applied; every field's problem is reported at once.
pub fn apply(
    mut member: NewMember,
    fields: &MemberFields,
    options: &Options<'_>,
    today: NaiveDate,
    issues: &mut Issues,
) -> NewMember {
    if let Some(role) = &fields.role {
        member.role = role.trim().to_string();
        if !options.roles.contains(&member.role) {
            issues.add(
                "role",
                format!("must be one of {} (OpenEMR list {ROLES_LIST})", options.roles.join(", ")),
            );
        }
    }
    if let Some(status) = &fields.status {
        member.status = status.trim().to_string();
        if !options.statuses.contains(&member.status) {
            issues.add(
                "status",
                format!("must be one of {} (OpenEMR list {STATUS_LIST})", options.statuses.join(", ")),
            );
        }
    }
    if let Some(since) = &fields.provider_since {
        member.provider_since = match since.trim() {
            "" => None,
            raw => {
                let date = issues.date("provider_since", raw);
                if date.is_some_and(|d| d > today) {
                    issues.add("provider_since", "must not be in the future");
                }
                date
            }
        };
    }
    if let Some(note) = &fields.note {
        member.note = issues.prose("note", note, 0, usize::MAX);
        issues.within_bytes("note", &member.note, NOTE_MAX_BYTES);
    }
    member
}

/// A new member: `role` is required, `status` defaults to active, the note to ''.
pub fn new_member(
    user_id: i64,
    fields: &MemberFields,
    options: &Options<'_>,
    today: NaiveDate,
    issues: &mut Issues,
) -> NewMember {
    if fields.role.is_none() {
        issues.add("role", "is required");
    }
    let blank = NewMember {
        user_id,
        role: String::new(),
        provider_since: None,
        status: ACTIVE.to_string(),
        note: String::new(),
    };
    apply(blank, fields, options, today, issues)
}

/// A team's name and status, for `PATCH …/care-team/`.
pub fn team_name(name: &str, issues: &mut Issues) -> String {
    issues.text("name", name, 1, 255)
}

pub fn team_status(status: &str, statuses: &[String], issues: &mut Issues) -> String {
    let status = status.trim().to_string();
    if !statuses.contains(&status) {
        issues.add("status", format!("must be one of {} (OpenEMR list {STATUS_LIST})", statuses.join(", ")));
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Team(i64, Option<&'static str>);
    impl TeamStatus for Team {
        fn status(&self) -> Option<&str> {
            self.1
        }
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_chart_shows_the_first_active_team_else_the_first_not_in_error() {
        let pick = |teams: Vec<Team>| current_team(teams).map(|t| t.0);
        assert_eq!(
            pick(vec![Team(1, Some("proposed")), Team(2, Some("active")), Team(3, Some("active"))]),
            Some(2)
        );
        assert_eq!(
            pick(vec![Team(1, Some("entered-in-error")), Team(2, None), Team(3, Some("inactive"))]),
            Some(2)
        );
        assert_eq!(pick(vec![Team(1, Some("entered-in-error"))]), None);
        assert_eq!(pick(vec![]), None);
        assert!(member_listed(None) && member_listed(Some("suspended")));
        assert!(!member_listed(Some("inactive")) && !member_listed(Some("entered-in-error")));
    }

    #[test]
    fn a_member_is_checked_against_openemrs_lists() {
        let roles = strings(&["nurse", "specialist"]);
        let statuses = strings(&["active", "inactive"]);
        let options = Options { roles: &roles, statuses: &statuses };
        let today = NaiveDate::from_ymd_opt(2025, 6, 1).unwrap();
        let mut issues = Issues::default();
        let fields = MemberFields {
            role: Some(" nurse ".into()),
            provider_since: Some("2024-02-03".into()),
            status: None,
            note: Some("  ".into()),
        };
        let m = new_member(4, &fields, &options, today, &mut issues);
        assert!(issues.0.is_empty(), "{issues:?}");
        assert_eq!((m.role.as_str(), m.status.as_str(), m.note.as_str()), ("nurse", "active", ""));
        assert_eq!(m.provider_since, NaiveDate::from_ymd_opt(2024, 2, 3));

        let bad = MemberFields {
            role: Some("surgeon".into()),
            provider_since: Some("2025-06-02".into()),
            status: Some("paused".into()),
            note: Some("x".repeat(NOTE_MAX_BYTES + 1)),
        };
        new_member(4, &bad, &options, today, &mut issues);
        let fields: Vec<_> = issues.0.iter().map(|i| i.field.as_str()).collect();
        assert_eq!(fields, ["role", "status", "provider_since", "note"]);

        let mut missing = Issues::default();
        new_member(4, &MemberFields::default(), &options, today, &mut missing);
        assert_eq!(missing.0[0].field, "role");
    }
}
