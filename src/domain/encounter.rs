//! Encounters as OpenEMR records them: numbered from `sequences`, one `form_encounter` row and a
//! `newpatient` form.

use chrono::{NaiveDate, NaiveDateTime};

use crate::domain::{patient::Pid, validation::Issues};

#[derive(Debug, Clone, Default)]
pub struct NewEncounterInput {
    pub pid: Option<i64>,
    /// `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM[:SS]`; defaults to now.
    pub date: Option<String>,
    pub reason: Option<String>,
    pub facility_id: Option<i64>,
    pub billing_facility_id: Option<i64>,
    pub provider_id: Option<i64>,
    pub pc_catid: Option<i64>,
    pub class_code: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewEncounter {
    pub pid: Pid,
    pub date: NaiveDateTime,
    pub reason: String,
    pub facility_id: i64,
    pub billing_facility_id: i64,
    pub provider_id: i64,
    pub pc_catid: i64,
    pub class_code: String,
    pub sensitivity: String,
}

/// OpenEMR's default visit category, "Office Visit".
pub const OFFICE_VISIT: i64 = 5;

impl NewEncounterInput {
    /// Shape checks; whether the patient, facility, provider, category and class exist is checked
    /// against the database by the caller. The provider defaults to `caller`.
    pub fn validate(self, caller: i64, now: NaiveDateTime) -> Result<NewEncounter, Issues> {
        let mut issues = Issues::default();
        let pid = self.pid.filter(|p| *p > 0);
        if pid.is_none() {
            issues.add("pid", "is required");
        }
        let facility_id = self.facility_id.filter(|f| *f > 0);
        if facility_id.is_none() {
            issues.add("facility_id", "is required");
        }
        let reason = self.reason.map(|r| issues.text("reason", &r, 0, 65_535)).unwrap_or_default();
        let date = match self.date.as_deref() {
            None => Some(now),
            Some(raw) => parse_when(raw).or_else(|| {
                issues.add("date", "must be YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS");
                None
            }),
        };
        let class_code =
            self.class_code.map(|c| issues.text("class_code", &c, 1, 10)).unwrap_or_else(|| "AMB".into());
        // form_encounter.provider_id is an int(11).
        if self.provider_id.is_some_and(|id| id <= 0 || id > i64::from(i32::MAX)) {
            issues.add("provider_id", "must be an OpenEMR user id");
        }
        issues.into_result(())?;
        let facility_id = facility_id.unwrap_or_default();
        Ok(NewEncounter {
            pid: Pid(pid.unwrap_or_default()),
            date: date.unwrap_or(now),
            reason,
            facility_id,
            billing_facility_id: self.billing_facility_id.unwrap_or(facility_id),
            provider_id: self.provider_id.unwrap_or(caller),
            pc_catid: self.pc_catid.unwrap_or(OFFICE_VISIT),
            class_code,
            sensitivity: "normal".into(),
        })
    }
}

/// A date, or a date and time, as clients send them (`YYYY-MM-DD`, `YYYY-MM-DDTHH:MM[:SS]`).
pub fn parse_when(raw: &str) -> Option<NaiveDateTime> {
    let raw = raw.trim();
    ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(raw, f).ok())
        .or_else(|| NaiveDate::parse_from_str(raw, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 11, 23).unwrap().and_hms_opt(9, 30, 0).unwrap()
    }

    #[test]
    fn defaults_follow_openemrs_new_encounter_screen() {
        let e = NewEncounterInput { pid: Some(4), facility_id: Some(3), ..Default::default() }
            .validate(8, now())
            .unwrap();
        assert_eq!(
            (e.provider_id, e.pc_catid, e.class_code.as_str(), e.billing_facility_id),
            (8, 5, "AMB", 3)
        );
        assert_eq!(e.date, now());
        assert_eq!(e.sensitivity, "normal");
    }

    #[test]
    fn reports_missing_and_malformed_fields() {
        let issues = NewEncounterInput { date: Some("yesterday".into()), ..Default::default() }
            .validate(8, now())
            .unwrap_err();
        let fields: Vec<_> = issues.0.iter().map(|i| i.field.as_str()).collect();
        assert_eq!(fields, ["pid", "facility_id", "date"]);
    }

    #[test]
    fn accepts_dates_with_or_without_time() {
        let base = NewEncounterInput { pid: Some(1), facility_id: Some(3), ..Default::default() };
        for (raw, expected) in
            [("2026-01-02", "2026-01-02 00:00:00"), ("2026-01-02T08:15", "2026-01-02 08:15:00")]
        {
            let e = NewEncounterInput { date: Some(raw.into()), ..base.clone() }.validate(1, now()).unwrap();
            assert_eq!(e.date.to_string(), expected);
        }
    }
}
