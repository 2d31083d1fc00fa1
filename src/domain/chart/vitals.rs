//! Vitals as OpenEMR's vitals form keeps them: stored in US units, BMI and its status computed
//! on save (C_FormVitals::default_action_process), ranges from VitalsFieldRanges.

use std::collections::BTreeMap;

use crate::domain::validation::Issues;

/// The unit system of a request body or an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitSystem {
    Us,
    Metric,
}

impl UnitSystem {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "us" => Some(Self::Us),
            "metric" => Some(Self::Metric),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Us => "us",
            Self::Metric => "metric",
        }
    }

    /// OpenEMR's `units_of_measurement` global: 2 (both, metric first) and 4 (metric only) show
    /// metric; 1 (the default) and 3 show US.
    pub fn from_global(value: Option<&str>) -> Self {
        match value.map(str::trim) {
            Some("2" | "4") => Self::Metric,
            _ => Self::Us,
        }
    }
}

/// What a measurement's number means, for conversion (OpenEMR's MeasurementUtils factors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// lb ↔ kg
    Mass,
    /// in ↔ cm
    Length,
    /// °F ↔ °C
    Temperature,
    /// Same in both systems (mmHg, /min, %, L/min).
    Plain,
}

impl Kind {
    fn us_from_metric(self, v: f64) -> f64 {
        match self {
            Self::Mass => v / 0.45359237,
            Self::Length => v / 2.54,
            Self::Temperature => v * 9.0 / 5.0 + 32.0,
            Self::Plain => v,
        }
    }

    fn metric_from_us(self, v: f64) -> f64 {
        match self {
            Self::Mass => v * 0.45359237,
            Self::Length => v * 2.54,
            Self::Temperature => (v - 32.0) * 5.0 / 9.0,
            Self::Plain => v,
        }
    }
}

/// A numeric form_vitals column with its OpenEMR range (US, and metric where it converts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Measure {
    Weight,
    Height,
    Bps,
    Bpd,
    Pulse,
    Respiration,
    Temperature,
    OxygenSaturation,
    OxygenFlowRate,
    InhaledOxygenConcentration,
    HeadCirc,
    WaistCirc,
}

impl Measure {
    pub const ALL: [Self; 12] = [
        Self::Weight,
        Self::Height,
        Self::Bps,
        Self::Bpd,
        Self::Pulse,
        Self::Respiration,
        Self::Temperature,
        Self::OxygenSaturation,
        Self::OxygenFlowRate,
        Self::InhaledOxygenConcentration,
        Self::HeadCirc,
        Self::WaistCirc,
    ];

    /// The form_vitals column, which is also the request field.
    pub fn column(self) -> &'static str {
        match self {
            Self::Weight => "weight",
            Self::Height => "height",
            Self::Bps => "bps",
            Self::Bpd => "bpd",
            Self::Pulse => "pulse",
            Self::Respiration => "respiration",
            Self::Temperature => "temperature",
            Self::OxygenSaturation => "oxygen_saturation",
            Self::OxygenFlowRate => "oxygen_flow_rate",
            Self::InhaledOxygenConcentration => "inhaled_oxygen_concentration",
            Self::HeadCirc => "head_circ",
            Self::WaistCirc => "waist_circ",
        }
    }

    fn kind(self) -> Kind {
        match self {
            Self::Weight => Kind::Mass,
            Self::Height | Self::HeadCirc | Self::WaistCirc => Kind::Length,
            Self::Temperature => Kind::Temperature,
            _ => Kind::Plain,
        }
    }

    /// VitalsFieldRanges::getRanges(): (min, max) in US units, and in metric units.
    fn range(self, units: UnitSystem) -> (f64, f64) {
        let (us, metric) = match self {
            Self::Weight => ((0.0, 2000.0), (0.0, 910.0)),
            Self::Height => ((0.0, 150.0), (0.0, 381.0)),
            Self::Bps => ((0.0, 400.0), (0.0, 400.0)),
            Self::Bpd => ((0.0, 300.0), (0.0, 300.0)),
            Self::Pulse => ((0.0, 500.0), (0.0, 500.0)),
            Self::Respiration => ((0.0, 150.0), (0.0, 150.0)),
            Self::Temperature => ((0.0, 120.0), (0.0, 48.9)),
            Self::OxygenSaturation | Self::InhaledOxygenConcentration => ((0.0, 100.0), (0.0, 100.0)),
            Self::OxygenFlowRate => ((0.0, 200.0), (0.0, 200.0)),
            Self::HeadCirc => ((0.0, 75.0), (0.0, 190.0)),
            Self::WaistCirc => ((0.0, 150.0), (0.0, 381.0)),
        };
        match units {
            UnitSystem::Us => us,
            UnitSystem::Metric => metric,
        }
    }

    /// The unit a value of this measure is given in.
    pub fn unit(self, units: UnitSystem) -> &'static str {
        match (self.kind(), units) {
            (Kind::Mass, UnitSystem::Us) => "lb",
            (Kind::Mass, UnitSystem::Metric) => "kg",
            (Kind::Length, UnitSystem::Us) => "in",
            (Kind::Length, UnitSystem::Metric) => "cm",
            (Kind::Temperature, UnitSystem::Us) => "degF",
            (Kind::Temperature, UnitSystem::Metric) => "degC",
            (Kind::Plain, _) => match self {
                Self::Bps | Self::Bpd => "mm[Hg]",
                Self::Pulse | Self::Respiration => "/min",
                Self::OxygenFlowRate => "L/min",
                _ => "%",
            },
        }
    }

    pub fn parse(column: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.column() == column)
    }
}

/// One set of measurements, always in US units (as form_vitals stores them); absent ones are
/// not in the map.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Measurements(pub BTreeMap<Measure, f64>);

impl Measurements {
    /// Parses values given in `units`, checking each against OpenEMR's range for that unit.
    pub fn from_input(
        given: impl IntoIterator<Item = (Measure, f64)>,
        units: UnitSystem,
        issues: &mut Issues,
    ) -> Self {
        let mut out = BTreeMap::new();
        for (m, v) in given {
            let (min, max) = m.range(units);
            if !v.is_finite() || v < min || v > max {
                issues.add(m.column(), format!("must be between {min} and {max} {}", m.unit(units)));
                continue;
            }
            // DECIMAL(12,6) keeps six places, as the converted value would be stored.
            let us = match units {
                UnitSystem::Us => v,
                UnitSystem::Metric => m.kind().us_from_metric(v),
            };
            out.insert(m, round6(us));
        }
        Self(out)
    }

    pub fn get(&self, m: Measure) -> Option<f64> {
        self.0.get(&m).copied()
    }

    /// The value in `units`, for answers.
    pub fn shown(&self, m: Measure, units: UnitSystem) -> Option<f64> {
        self.get(m).map(|v| match units {
            UnitSystem::Us => v,
            UnitSystem::Metric => round6(m.kind().metric_from_us(v)),
        })
    }

    /// Body mass index as C_FormVitals computes it: weight / height / height * 703 (lb, in).
    pub fn bmi(&self) -> Option<f64> {
        match (self.get(Measure::Weight), self.get(Measure::Height)) {
            (Some(w), Some(h)) if w > 0.0 && h > 0.0 => Some(w / h / h * 703.0),
            _ => None,
        }
    }
}

fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

/// BMI_status as C_FormVitals sets it (OpenEMR's BmiCategory); none at or below 10.
pub fn bmi_status(bmi: f64) -> Option<&'static str> {
    [
        (42.0, "Obesity III"),
        (34.0, "Obesity II"),
        (30.0, "Obesity I"),
        (27.0, "Overweight"),
        (25.0, "Normal BL"),
        (18.5, "Normal"),
        (10.0, "Underweight"),
    ]
    .into_iter()
    .find(|(above, _)| bmi > *above)
    .map(|(_, status)| status)
}

/// The FHIR Observation codes OpenEMR maps every form_vitals row to
/// (FhirObservationVitalsService::COLUMN_MAPPINGS), one `uuid_mapping` row each.
pub const OBSERVATION_LOINC_CODES: [&str; 15] = [
    "85353-1", "9279-1", "8867-4", "2708-6", "59408-5", "8310-5", "8327-9", "8302-2", "9843-4", "29463-7",
    "39156-5", "85354-9", "8289-1", "59576-9", "77606-2",
];

/// `uuid_mapping.resource_path` for one code, as UuidMapping::createAllMissingResourceUuids builds it.
pub fn observation_resource_path(code: &str) -> String {
    format!("category=vital-signs&code={code}")
}

/// The LOINC code of a `resource_path` built by [`observation_resource_path`].
pub fn code_of_resource_path(path: &str) -> Option<&str> {
    path.strip_prefix("category=vital-signs&code=").filter(|code| OBSERVATION_LOINC_CODES.contains(code))
}

/// Columns a `form_vital_details` interpretation may annotate.
pub fn interpretable(column: &str) -> bool {
    Measure::parse(column).is_some() || column == "BMI"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bmi_status_matches_openemr_boundaries() {
        assert_eq!(bmi_status(42.1), Some("Obesity III"));
        assert_eq!(bmi_status(42.0), Some("Obesity II"));
        assert_eq!(bmi_status(34.0), Some("Obesity I"));
        assert_eq!(bmi_status(30.0), Some("Overweight"));
        assert_eq!(bmi_status(27.0), Some("Normal BL"));
        assert_eq!(bmi_status(25.0), Some("Normal"));
        assert_eq!(bmi_status(18.5), Some("Underweight"));
        assert_eq!(bmi_status(10.0), None);
    }

    #[test]
    fn metric_values_round_trip_through_us_storage() {
        let mut issues = Issues::default();
        let given = [(Measure::Weight, 70.0), (Measure::Height, 175.0), (Measure::Temperature, 37.0)];
        let m = Measurements::from_input(given, UnitSystem::Metric, &mut issues);
        assert!(issues.0.is_empty());
        assert_eq!(m.get(Measure::Temperature), Some(98.6));
        for (measure, v) in given {
            let back = m.shown(measure, UnitSystem::Metric).unwrap();
            assert!((back - v).abs() < 1e-5, "{measure:?}: {back} != {v}");
        }
    }

    #[test]
    fn out_of_range_names_the_field_in_the_callers_unit() {
        let mut issues = Issues::default();
        Measurements::from_input([(Measure::Temperature, 50.0)], UnitSystem::Metric, &mut issues);
        assert_eq!(issues.0[0].field, "temperature");
        assert!(issues.0[0].message.contains("48.9 degC"), "{}", issues.0[0].message);
    }
}
