//! FHIR R4 rules that do not depend on storage or HTTP: how OpenEMR's values map to FHIR codes,
//! and how FHIR search parameter values are read.

use chrono::{Datelike, Months, NaiveDate, NaiveDateTime};

use super::chart::vitals::{Measure, UnitSystem};

/// One measurement of OpenEMR's vitals form as a vital-signs Observation, as OpenEMR's FHIR API
/// codes it (LOINC), with the UCUM unit of the US units OpenEMR stores.
pub struct VitalSign {
    pub code: &'static str,
    pub display: &'static str,
    pub measure: Measure,
    pub unit: &'static str,
}

pub const VITAL_SIGNS: [VitalSign; 7] = [
    VitalSign { code: "9279-1", display: "Respiratory rate", measure: Measure::Respiration, unit: "/min" },
    VitalSign { code: "8867-4", display: "Heart rate", measure: Measure::Pulse, unit: "/min" },
    VitalSign {
        code: "2708-6",
        display: "Oxygen saturation in Arterial blood",
        measure: Measure::OxygenSaturation,
        unit: "%",
    },
    VitalSign { code: "8310-5", display: "Body temperature", measure: Measure::Temperature, unit: "[degF]" },
    VitalSign { code: "8302-2", display: "Body height", measure: Measure::Height, unit: "[in_i]" },
    VitalSign {
        code: "9843-4",
        display: "Head Occipital-frontal circumference",
        measure: Measure::HeadCirc,
        unit: "[in_i]",
    },
    VitalSign { code: "29463-7", display: "Body weight", measure: Measure::Weight, unit: "[lb_av]" },
];

/// The vital signs panel, whose members are the form's other Observations.
pub const VITALS_PANEL: (&str, &str) =
    ("85353-1", "Vital signs, weight, height, head circumference, oxygen saturation and BMI panel");
pub const BMI: (&str, &str) = ("39156-5", "Body mass index (BMI) [Ratio]");
pub const BLOOD_PRESSURE: (&str, &str) = ("85354-9", "Blood pressure panel with all children optional");
pub const SYSTOLIC: (&str, &str) = ("8480-6", "Systolic blood pressure");
pub const DIASTOLIC: (&str, &str) = ("8462-4", "Diastolic blood pressure");

/// The vitals measure a vital-sign Observation with this LOINC code writes, and the unit system
/// its UCUM unit is in: OpenEMR's US units as it reads them back, or their metric counterparts.
pub fn written_measure(code: &str, unit: &str) -> Result<(Measure, UnitSystem), String> {
    let pressures = [(SYSTOLIC.0, Measure::Bps), (DIASTOLIC.0, Measure::Bpd)];
    let (measure, us) = VITAL_SIGNS
        .iter()
        .map(|s| (s.code, s.measure, s.unit))
        .chain(pressures.map(|(c, m)| (c, m, "mm[Hg]")))
        .find(|(c, _, _)| *c == code)
        .map(|(_, m, u)| (m, u))
        .ok_or_else(|| {
            let known: Vec<&str> = VITAL_SIGNS.iter().map(|s| s.code).chain([BLOOD_PRESSURE.0]).collect();
            format!("LOINC {code} is not a vital sign written here; these are: {}", known.join(", "))
        })?;
    let metric = match us {
        "[lb_av]" => "kg",
        "[in_i]" => "cm",
        "[degF]" => "Cel",
        same => same,
    };
    match unit {
        u if u == us => Ok((measure, UnitSystem::Us)),
        u if u == metric => Ok((measure, UnitSystem::Metric)),
        _ if us == metric => Err(format!("LOINC {code} is given in {us} (UCUM)")),
        _ => Err(format!("LOINC {code} is given in {us} or {metric} (UCUM)")),
    }
}

/// OpenEMR's `sex` list value as FHIR's administrative gender, as OpenEMR's FHIR API maps it.
pub fn gender_of(sex: &str) -> &'static str {
    match sex.trim().to_ascii_lowercase().as_str() {
        "male" => "male",
        "female" => "female",
        _ => "unknown",
    }
}

/// A `gender` token as the `sex` value OpenEMR stores.
pub fn sex_for(gender: &str) -> Result<&'static str, String> {
    match token_code(gender) {
        "male" => Ok("Male"),
        "female" => Ok("Female"),
        "unknown" => Ok("UNK"),
        other => Err(format!(
            "`{other}` is not an administrative gender this server stores (male, female, unknown)"
        )),
    }
}

/// The clinical status of an OpenEMR issue (`lists`): outcome 1 is resolved; an end date that has
/// come makes it inactive. The codes are shared by Condition and AllergyIntolerance.
pub fn clinical_status(outcome: i32, ended: Option<NaiveDate>, today: NaiveDate) -> &'static str {
    if outcome == 1 {
        "resolved"
    } else if ended.is_some_and(|end| end <= today) {
        "inactive"
    } else {
        "active"
    }
}

/// `lists.verification` as a verification status code, when it is one of `allowed`.
pub fn verification<'a>(value: &str, allowed: &[&'a str]) -> Option<&'a str> {
    allowed.iter().copied().find(|code| *code == value.trim())
}

pub const CONDITION_VERIFICATION: &[&str] =
    &["unconfirmed", "provisional", "differential", "confirmed", "refuted", "entered-in-error"];
pub const ALLERGY_VERIFICATION: &[&str] = &["unconfirmed", "confirmed", "refuted", "entered-in-error"];

/// The codes in OpenEMR's `diagnosis` column (`ICD10:E11.9;SNOMED-CT:44054006`) with their FHIR
/// code systems; a code of a system FHIR has no URI for keeps `None`.
pub fn codings(diagnosis: &str) -> Vec<(Option<&'static str>, String)> {
    diagnosis
        .split(';')
        .filter_map(|code| code.split_once(':'))
        .filter(|(_, code)| !code.trim().is_empty())
        .map(|(kind, code)| {
            let system = match kind.trim().to_ascii_uppercase().as_str() {
                "ICD10" | "ICD10-CM" => Some("http://hl7.org/fhir/sid/icd-10-cm"),
                "SNOMED" | "SNOMED-CT" | "SNOMEDCT" => Some("http://snomed.info/sct"),
                "RXNORM" | "RXCUI" => Some("http://www.nlm.nih.gov/research/umls/rxnorm"),
                _ => None,
            };
            (system, code.trim().to_string())
        })
        .collect()
}

/// OpenEMR's `severity_ccda` option as FHIR's reaction severity.
pub fn reaction_severity(severity: &str) -> Option<&'static str> {
    match severity.trim() {
        "mild" => Some("mild"),
        "mild_to_moderate" | "moderate" => Some("moderate"),
        "moderate_to_severe" | "severe" | "life_threatening_severity" | "fatal" => Some("severe"),
        _ => None,
    }
}

/// The code of a token parameter (`system|code` or `code`).
pub fn token_code(value: &str) -> &str {
    value.rsplit('|').next().unwrap_or(value).trim()
}

/// OpenEMR's appointment status code as its FHIR API maps it (`FhirAppointmentService`); codes it
/// does not map, including a site's own, are `pending`.
pub fn appointment_status(code: &str) -> &'static str {
    match code.trim() {
        "-" => "proposed",
        ">" | "$" => "fulfilled",
        "AVM" | "SMS" | "EMAIL" | "*" => "booked",
        "%" | "!" | "x" => "cancelled",
        "?" => "noshow",
        "~" | "@" => "arrived",
        "<" | "+" => "checked-in",
        "CALL" => "waitlist",
        _ => "pending",
    }
}

/// The inclusive date range a `date` parameter (`[eq|ge|le|gt|lt]YYYY[-MM[-DD]]`) selects; an open
/// end is `None`.
pub fn date_range(value: &str) -> Result<(Option<NaiveDate>, Option<NaiveDate>), String> {
    let (prefix, date) = match value.get(..2) {
        Some(p @ ("eq" | "ge" | "le" | "gt" | "lt")) => (p, &value[2..]),
        _ => ("eq", value),
    };
    let (first, last) = period(date)
        .ok_or_else(|| format!("`{value}` is not a date of the form [eq|ge|le|gt|lt]YYYY[-MM[-DD]]"))?;
    Ok(match prefix {
        "ge" => (Some(first), None),
        "le" => (None, Some(last)),
        "gt" => (last.succ_opt(), None),
        "lt" => (None, first.pred_opt()),
        _ => (Some(first), Some(last)),
    })
}

/// The first and last day of a year, a month or a day.
fn period(date: &str) -> Option<(NaiveDate, NaiveDate)> {
    let parts: Vec<&str> = date.split('-').collect();
    let number = |s: &str, len: usize| {
        (s.len() == len && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse::<u32>().ok()).flatten()
    };
    let year = i32::try_from(number(parts.first()?, 4)?).ok()?;
    match parts.as_slice() {
        [_] => Some((NaiveDate::from_ymd_opt(year, 1, 1)?, NaiveDate::from_ymd_opt(year, 12, 31)?)),
        [_, m] => {
            let first = NaiveDate::from_ymd_opt(year, number(m, 2)?, 1)?;
            Some((first, first.checked_add_months(Months::new(1))?.pred_opt()?))
        }
        [_, m, d] => {
            let day = NaiveDate::from_ymd_opt(year, number(m, 2)?, number(d, 2)?)?;
            (day.year() == year).then_some((day, day))
        }
        _ => None,
    }
}

/// A free slot's id: nothing is stored, so the id carries what finds the slot again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotId {
    pub schedule: String,
    pub start: NaiveDateTime,
    pub category: i64,
    pub minutes: u32,
}

impl SlotId {
    const STAMP: &str = "%Y%m%d%H%M";

    /// `{schedule}.{YYYYMMDDhhmm}.{category}.{minutes}`, at most 64 characters for a uuid schedule.
    pub fn format(&self) -> String {
        format!("{}.{}.{}.{}", self.schedule, self.start.format(Self::STAMP), self.category, self.minutes)
    }

    pub fn parse(id: &str) -> Option<Self> {
        let mut parts = id.split('.');
        let (schedule, start, category, minutes) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || schedule.is_empty() {
            return None;
        }
        Some(Self {
            schedule: schedule.to_string(),
            start: NaiveDateTime::parse_from_str(start, Self::STAMP).ok()?,
            category: category.parse().ok().filter(|c| *c > 0)?,
            minutes: minutes.parse().ok().filter(|m| (1..=1440).contains(m))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Option<NaiveDate> {
        Some(NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap())
    }

    #[test]
    fn dates_select_their_whole_period_and_prefixes_open_one_end() {
        assert_eq!(date_range("1980-02-03"), Ok((d("1980-02-03"), d("1980-02-03"))));
        assert_eq!(date_range("eq1980-02"), Ok((d("1980-02-01"), d("1980-02-29"))));
        assert_eq!(date_range("1981"), Ok((d("1981-01-01"), d("1981-12-31"))));
        assert_eq!(date_range("ge1980-02-03"), Ok((d("1980-02-03"), None)));
        assert_eq!(date_range("gt1980"), Ok((d("1981-01-01"), None)));
        assert_eq!(date_range("lt1980-03"), Ok((None, d("1980-02-29"))));
        assert_eq!(date_range("le1980"), Ok((None, d("1980-12-31"))));
    }

    #[test]
    fn malformed_dates_are_refused_with_the_value() {
        for bad in ["", "80", "1980-2-03", "1980-02-30", "ne1980", "1980-02-03T10:00", "1980--"] {
            assert!(date_range(bad).unwrap_err().contains(bad), "{bad}");
        }
    }

    #[test]
    fn issue_statuses_and_codes_map_as_openemr_stores_them() {
        let today = d("2026-11-30").unwrap();
        assert_eq!(clinical_status(1, None, today), "resolved");
        assert_eq!(clinical_status(0, d("2026-11-30"), today), "inactive");
        assert_eq!(clinical_status(0, d("2027-01-01"), today), "active");
        assert_eq!(verification(" confirmed", CONDITION_VERIFICATION), Some("confirmed"));
        assert_eq!(verification("provisional", ALLERGY_VERIFICATION), None);
        assert_eq!(
            codings("ICD10:E11.9;SNOMED-CT:44054006;LOCAL:x;ICD10:"),
            vec![
                (Some("http://hl7.org/fhir/sid/icd-10-cm"), "E11.9".to_string()),
                (Some("http://snomed.info/sct"), "44054006".to_string()),
                (None, "x".to_string()),
            ]
        );
        assert_eq!((reaction_severity("mild_to_moderate"), reaction_severity("")), (Some("moderate"), None));
    }

    #[test]
    fn genders_map_both_ways() {
        assert_eq!(
            (gender_of("Female"), gender_of("Male"), gender_of("UNK"), gender_of("")),
            ("female", "male", "unknown", "unknown")
        );
        assert_eq!(sex_for("http://hl7.org/fhir/administrative-gender|female"), Ok("Female"));
        assert!(sex_for("other").is_err());
    }

    #[test]
    fn a_slot_id_round_trips_and_refuses_what_it_did_not_make() {
        let id = SlotId {
            schedule: "9f3c2b1e-0000-4000-8000-1234567890ab".into(),
            start: NaiveDate::from_ymd_opt(2026, 12, 3).unwrap().and_hms_opt(9, 30, 0).unwrap(),
            category: 5,
            minutes: 15,
        };
        let text = id.format();
        assert_eq!(text, "9f3c2b1e-0000-4000-8000-1234567890ab.202612030930.5.15");
        assert!(text.len() <= 64, "a FHIR id is at most 64 characters");
        assert_eq!(SlotId::parse(&text), Some(id));
        for bad in [
            "",
            "x.202612030930.5",
            "x.202613030930.5.15",
            "x.202612030930.0.15",
            "x.202612030930.5.0",
            "x.1.5.15.9",
        ] {
            assert_eq!(SlotId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_written_vital_sign_takes_its_loinc_code_in_us_or_metric_ucum_units() {
        assert_eq!(written_measure("29463-7", "[lb_av]"), Ok((Measure::Weight, UnitSystem::Us)));
        assert_eq!(written_measure("29463-7", "kg"), Ok((Measure::Weight, UnitSystem::Metric)));
        assert_eq!(written_measure("8310-5", "Cel"), Ok((Measure::Temperature, UnitSystem::Metric)));
        assert_eq!(written_measure("8480-6", "mm[Hg]"), Ok((Measure::Bps, UnitSystem::Us)));
        assert!(written_measure("29463-7", "g").unwrap_err().contains("[lb_av] or kg"));
        assert!(written_measure("8867-4", "Hz").unwrap_err().contains("given in /min"));
        assert!(written_measure("2345-7", "mg/dL").unwrap_err().contains("not a vital sign"));
    }
}
