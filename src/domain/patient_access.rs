//! Who may reach which patient beyond what OpenEMR's role-based ACL says: the assigned-patient
//! policy. OpenEMR lets any physician open any chart; with `assigned`, a clinician reaches only the
//! patients they care for, plus those they broke the glass for.

use std::time::Duration;

use chrono::NaiveDateTime;

/// `MMT_PATIENT_ACCESS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// OpenEMR's own behaviour: the ACL alone decides.
    All,
    Assigned(AssignedRule),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AssignedRule {
    /// An encounter or appointment with the patient this many days either side of today ties the
    /// clinician to them; `None` turns that tie off.
    pub recent_days: Option<u32>,
    /// How long one break-glass grant lasts.
    pub break_glass: Duration,
}

impl Policy {
    pub fn parse(policy: &str, recent_days: u32, break_glass_hours: u32) -> Result<Self, String> {
        match policy {
            "all" => Ok(Self::All),
            "assigned" if break_glass_hours == 0 => Err("break-glass hours must be at least 1".into()),
            "assigned" => Ok(Self::Assigned(AssignedRule {
                recent_days: (recent_days > 0).then_some(recent_days),
                break_glass: Duration::from_secs(u64::from(break_glass_hours) * 3600),
            })),
            _ => Err("expected 'all' or 'assigned'".into()),
        }
    }
}

/// Users the policy leaves to the ACL alone, whatever it says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exemption {
    /// `admin|super`.
    Administrator,
    /// OpenEMR's Emergency Login group (`breakglass`): reaches every chart, always audited as a
    /// break-glass access.
    EmergencyLogin,
}

/// OpenEMR's ARO group value for Emergency Login.
pub const EMERGENCY_LOGIN_GROUP: &str = "breakglass";

/// The window that counts as "recent" for encounters and appointments, around `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from: NaiveDateTime,
    pub until: NaiveDateTime,
}

impl AssignedRule {
    pub fn window(&self, now: NaiveDateTime) -> Option<Window> {
        let days = chrono::Days::new(u64::from(self.recent_days?));
        Some(Window { from: now.checked_sub_days(days)?, until: now.checked_add_days(days)? })
    }

    pub fn grant_expires(&self, now: NaiveDateTime) -> NaiveDateTime {
        now + chrono::Duration::from_std(self.break_glass).unwrap_or(chrono::Duration::hours(4))
    }
}

/// The text of a denial: it says how to get access and is the same whether or not the patient
/// exists, so it reveals nothing to a caller who may not see them.
pub fn denial(pid: i64) -> String {
    format!(
        "patient {pid} is not on your panel: ask for a place on the patient's care team \
         (GET /api/patients/{pid}/care-team/), or, in an emergency, break the glass with a reason \
         (POST /api/patients/{pid}/break-glass/)"
    )
}

/// A break-glass reason: mandatory, and short enough for an audit comment.
pub fn reason(text: &str) -> Result<String, String> {
    let text = text.trim();
    match text.chars().count() {
        0..10 => Err("say why you need this chart (at least 10 characters)".into()),
        10..=500 => Ok(text.to_string()),
        _ => Err("at most 500 characters".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    #[test]
    fn the_policy_is_off_unless_assigned_is_named() {
        assert_eq!(Policy::parse("all", 30, 4), Ok(Policy::All));
        assert!(Policy::parse("everyone", 30, 4).is_err());
        assert!(Policy::parse("assigned", 30, 0).is_err());
        let Ok(Policy::Assigned(rule)) = Policy::parse("assigned", 0, 2) else { panic!() };
        assert_eq!(rule.recent_days, None);
        assert_eq!(rule.break_glass, Duration::from_secs(7200));
    }

    #[test]
    fn the_recent_window_spans_the_days_either_side_and_none_when_off() {
        let Ok(Policy::Assigned(rule)) = Policy::parse("assigned", 30, 4) else { panic!() };
        let window = rule.window(at("2026-03-31 12:00")).unwrap();
        assert_eq!(window.from, at("2026-03-01 12:00"));
        assert_eq!(window.until, at("2026-04-30 12:00"));
        let Ok(Policy::Assigned(off)) = Policy::parse("assigned", 0, 4) else { panic!() };
        assert_eq!(off.window(at("2026-03-31 12:00")), None);
    }

    #[test]
    fn a_grant_lasts_the_configured_hours() {
        let Ok(Policy::Assigned(rule)) = Policy::parse("assigned", 30, 4) else { panic!() };
        assert_eq!(rule.grant_expires(at("2026-03-31 22:30")), at("2026-04-01 02:30"));
    }

    #[test]
    fn a_reason_is_required_and_bounded() {
        assert!(reason("   ").is_err());
        assert!(reason("because").is_err());
        assert_eq!(reason("  unconscious in ED, no ID  ").unwrap(), "unconscious in ED, no ID");
        assert!(reason(&"x".repeat(501)).is_err());
    }

    #[test]
    fn the_denial_names_both_ways_in_and_nothing_about_the_patient() {
        let text = denial(42);
        assert!(
            text.contains("/api/patients/42/care-team/") && text.contains("/api/patients/42/break-glass/")
        );
        assert!(!text.contains("exist"));
    }
}
