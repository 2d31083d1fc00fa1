//! Patients as OpenEMR keys them, and the curated demographics the sidecar reads and writes.

use std::fmt;

use chrono::NaiveDate;

use crate::domain::validation::{Issues, looks_like_email};

/// OpenEMR's `patient_data.pid`: the patient key every other table uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pid(pub i64);

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The demographics a client may set. `None` leaves a field as it is on update.
#[derive(Debug, Clone, Default)]
pub struct DemographicsInput {
    pub first_name: Option<String>,
    pub middle_name: Option<String>,
    pub last_name: Option<String>,
    pub preferred_name: Option<String>,
    pub dob: Option<String>,
    pub sex: Option<String>,
    pub pubpid: Option<String>,
    pub phone_home: Option<String>,
    pub phone_cell: Option<String>,
    pub email: Option<String>,
    pub street: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    pub provider_id: Option<i64>,
}

/// Validated demographics, ready for `patient_data`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Demographics {
    pub first_name: Option<String>,
    pub middle_name: Option<String>,
    pub last_name: Option<String>,
    pub preferred_name: Option<String>,
    pub dob: Option<NaiveDate>,
    pub sex: Option<String>,
    pub pubpid: Option<String>,
    pub phone_home: Option<String>,
    pub phone_cell: Option<String>,
    pub email: Option<String>,
    pub street: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    pub provider_id: Option<i64>,
}

impl DemographicsInput {
    /// Checks every field as OpenEMR's PatientValidator does, plus a birth date not in the future.
    /// `creating` makes first name, last name, sex and birth date required. `sexes` is the live
    /// `sex` list.
    pub fn validate(
        self,
        creating: bool,
        today: NaiveDate,
        sexes: &[String],
    ) -> Result<Demographics, Issues> {
        let mut issues = Issues::default();
        let mut text = |field: &str, value: Option<String>, min: usize, max: usize| {
            value.map(|v| issues.text(field, &v, min, max))
        };
        let first_name = text("first_name", self.first_name, 1, 255);
        let middle_name = text("middle_name", self.middle_name, 0, 255);
        let last_name = text("last_name", self.last_name, 2, 255);
        let preferred_name = text("preferred_name", self.preferred_name, 0, 255);
        let pubpid = text("pubpid", self.pubpid, 1, 255);
        let phone_home = text("phone_home", self.phone_home, 0, 255);
        let phone_cell = text("phone_cell", self.phone_cell, 0, 255);
        let email = text("email", self.email, 0, 255);
        let street = text("street", self.street, 0, 255);
        let city = text("city", self.city, 0, 255);
        let state = text("state", self.state, 0, 255);
        let postal_code = text("postal_code", self.postal_code, 0, 255);
        let sex = self.sex.map(|s| s.trim().to_string());
        if let Some(sex) = &sex
            && !sexes.iter().any(|s| s == sex)
        {
            issues.add("sex", format!("must be one of: {}", sexes.join(", ")));
        }
        if let Some(email) = email.as_deref().filter(|e| !e.is_empty())
            && !looks_like_email(email)
        {
            issues.add("email", "must be an email address");
        }
        let dob = issues.optional_date("dob", self.dob);
        if dob.is_some_and(|d| d > today) {
            issues.add("dob", "must not be in the future");
        }
        // patient_data.providerID is an int(11).
        if self.provider_id.is_some_and(|id| id <= 0 || id > i64::from(i32::MAX)) {
            issues.add("provider_id", "must be an OpenEMR user id");
        }
        if creating {
            for (field, missing) in [
                ("first_name", first_name.is_none()),
                ("last_name", last_name.is_none()),
                ("sex", sex.is_none()),
                ("dob", dob_missing(&dob, &issues)),
            ] {
                if missing {
                    issues.add(field, "is required");
                }
            }
        }
        issues.into_result(Demographics {
            first_name,
            middle_name,
            last_name,
            preferred_name,
            dob,
            sex,
            pubpid,
            phone_home,
            phone_cell,
            email,
            street,
            city,
            state,
            postal_code,
            provider_id: self.provider_id,
        })
    }
}

/// A birth date is missing only if none was given, not if the given one was invalid.
fn dob_missing(dob: &Option<NaiveDate>, issues: &Issues) -> bool {
    dob.is_none() && !issues.0.iter().any(|i| i.field == "dob")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sexes() -> Vec<String> {
        vec!["Female".into(), "Male".into(), "UNK".into()]
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()
    }

    fn valid() -> DemographicsInput {
        DemographicsInput {
            first_name: Some("Zoë".into()),
            last_name: Some("O'Brien".into()),
            dob: Some("1984-02-29".into()),
            sex: Some("Female".into()),
            ..Default::default()
        }
    }

    #[test]
    fn accepts_accents_apostrophes_and_leap_days() {
        let d = valid().validate(true, today(), &sexes()).unwrap();
        assert_eq!(d.last_name.as_deref(), Some("O'Brien"));
        assert_eq!(d.dob, NaiveDate::from_ymd_opt(1984, 2, 29));
    }

    #[test]
    fn names_every_bad_field() {
        let input = DemographicsInput {
            first_name: Some(" ".into()),
            last_name: Some("X".into()),
            dob: Some("2030-01-01".into()),
            sex: Some("F".into()),
            email: Some("not-an-email".into()),
            city: Some("y".repeat(256)),
            ..Default::default()
        };
        let issues = input.validate(true, today(), &sexes()).unwrap_err();
        let fields: Vec<_> = issues.0.iter().map(|i| i.field.as_str()).collect();
        assert_eq!(fields, ["first_name", "last_name", "city", "sex", "email", "dob"]);
        assert!(issues.0.iter().any(|i| i.message == "must not be in the future"));
        assert!(issues.0.iter().any(|i| i.message == "must be one of: Female, Male, UNK"));
    }

    #[test]
    fn creating_requires_the_core_fields_but_updating_does_not() {
        let issues = DemographicsInput::default().validate(true, today(), &sexes()).unwrap_err();
        let fields: Vec<_> = issues.0.iter().map(|i| i.field.as_str()).collect();
        assert_eq!(fields, ["first_name", "last_name", "sex", "dob"]);
        assert!(DemographicsInput::default().validate(false, today(), &sexes()).is_ok());
    }

    #[test]
    fn an_invalid_date_is_reported_once() {
        let mut input = valid();
        input.dob = Some("31/12/1990".into());
        let issues = input.validate(true, today(), &sexes()).unwrap_err();
        assert_eq!(issues.0.len(), 1);
        assert_eq!(issues.0[0].message, "must be a date as YYYY-MM-DD");
    }
}
