use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use poem::web::Data;
use poem_openapi::{ApiResponse, Object, OpenApi, param::Path, param::Query, payload::Json};

use crate::{
    app::AppState,
    domain::{
        chart::vitals::{Measure, UnitSystem},
        patient::Pid,
    },
    http::{ApiTags, auth::Auth, problem::ApiError},
    service::chart::vitals::{self, Reading, VitalsInput},
    storage::openemr::uuid_registry,
};

/// A vitals measurement set. Values are in `units` (`us`: lb, in, °F; `metric`: kg, cm, °C);
/// blood pressure in mmHg, pulse and respiration per minute, oxygen saturation and inhaled
/// concentration in %, oxygen flow in L/min. Only these fields exist.
#[derive(Object, Default)]
#[oai(deny_unknown_fields)]
pub struct VitalsBody {
    /// `us` (the default) or `metric`. OpenEMR stores US units; metric values are converted.
    pub units: Option<String>,
    /// When measured: YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS]; defaults to now.
    pub date: Option<String>,
    pub weight: Option<f64>,
    pub height: Option<f64>,
    /// Systolic blood pressure.
    pub bps: Option<f64>,
    /// Diastolic blood pressure.
    pub bpd: Option<f64>,
    pub pulse: Option<f64>,
    pub respiration: Option<f64>,
    pub temperature: Option<f64>,
    /// Where the temperature was taken, e.g. Oral.
    pub temp_method: Option<String>,
    pub oxygen_saturation: Option<f64>,
    pub oxygen_flow_rate: Option<f64>,
    pub inhaled_oxygen_concentration: Option<f64>,
    pub head_circ: Option<f64>,
    pub waist_circ: Option<f64>,
    pub note: Option<String>,
    /// Measurement (e.g. `bps`, `BMI`) → option of OpenEMR's `vitals-interpretation` list
    /// (`N`, `H`, `L`, `A`, `AA`, `HH`, `LL`, `HU`, `LU`); an empty value clears it.
    #[oai(validator(max_properties = 16))]
    pub interpretations: Option<BTreeMap<String, String>>,
}

impl VitalsBody {
    fn into_input(self) -> VitalsInput {
        let values = [
            (Measure::Weight, self.weight),
            (Measure::Height, self.height),
            (Measure::Bps, self.bps),
            (Measure::Bpd, self.bpd),
            (Measure::Pulse, self.pulse),
            (Measure::Respiration, self.respiration),
            (Measure::Temperature, self.temperature),
            (Measure::OxygenSaturation, self.oxygen_saturation),
            (Measure::OxygenFlowRate, self.oxygen_flow_rate),
            (Measure::InhaledOxygenConcentration, self.inhaled_oxygen_concentration),
            (Measure::HeadCirc, self.head_circ),
            (Measure::WaistCirc, self.waist_circ),
        ];
        VitalsInput {
            units: self.units,
            date: self.date,
            values: values.into_iter().filter_map(|(m, v)| v.map(|v| (m, v))).collect(),
            temp_method: self.temp_method,
            note: self.note,
            interpretations: self.interpretations.unwrap_or_default(),
        }
    }
}

#[derive(Object)]
pub struct InterpretationOut {
    /// Option id in OpenEMR's `vitals-interpretation` list.
    pub code: String,
    pub title: String,
}

/// One vitals form. Measurements not taken are absent.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Vitals {
    /// form_vitals.id
    pub id: i64,
    pub uuid: Option<String>,
    pub pid: i64,
    pub encounter: i64,
    pub date: Option<NaiveDateTime>,
    /// The unit system of the values below.
    pub units: String,
    /// Unit of each measurement present, e.g. `weight` → `kg`.
    pub unit_of: BTreeMap<String, String>,
    pub weight: Option<f64>,
    pub height: Option<f64>,
    pub bps: Option<f64>,
    pub bpd: Option<f64>,
    pub pulse: Option<f64>,
    pub respiration: Option<f64>,
    pub temperature: Option<f64>,
    pub temp_method: Option<String>,
    pub oxygen_saturation: Option<f64>,
    pub oxygen_flow_rate: Option<f64>,
    pub inhaled_oxygen_concentration: Option<f64>,
    pub head_circ: Option<f64>,
    pub waist_circ: Option<f64>,
    /// Body mass index (kg/m²), computed by OpenEMR's formula.
    pub bmi: Option<f64>,
    /// OpenEMR's BMI status: Underweight, Normal, Normal BL, Overweight, Obesity I/II/III.
    pub bmi_status: Option<String>,
    pub note: Option<String>,
    pub interpretations: BTreeMap<String, InterpretationOut>,
    /// OpenEMR username of whoever last saved the form.
    pub recorded_by: Option<String>,
    pub last_updated: NaiveDateTime,
}

fn shown(r: Reading, units: UnitSystem) -> Vitals {
    let m = r.row.measurements();
    let value = |measure| m.shown(measure, units);
    let unit_of = m.0.keys().map(|k| (k.column().to_string(), k.unit(units).to_string())).collect();
    let row = r.row;
    let text = |s: Option<String>| s.filter(|s| !s.is_empty());
    Vitals {
        id: row.id,
        uuid: uuid_registry::to_string(row.uuid.as_deref()),
        pid: row.pid,
        encounter: row.encounter,
        date: row.date,
        units: units.as_str().into(),
        unit_of,
        weight: value(Measure::Weight),
        height: value(Measure::Height),
        bps: value(Measure::Bps),
        bpd: value(Measure::Bpd),
        pulse: value(Measure::Pulse),
        respiration: value(Measure::Respiration),
        temperature: value(Measure::Temperature),
        temp_method: text(row.temp_method),
        oxygen_saturation: value(Measure::OxygenSaturation),
        oxygen_flow_rate: value(Measure::OxygenFlowRate),
        inhaled_oxygen_concentration: value(Measure::InhaledOxygenConcentration),
        head_circ: value(Measure::HeadCirc),
        waist_circ: value(Measure::WaistCirc),
        bmi: row.bmi.filter(|b| *b != 0.0),
        bmi_status: text(row.bmi_status),
        note: text(row.note),
        interpretations: r
            .interpretations
            .into_iter()
            .map(|(column, (code, title))| (column, InterpretationOut { code, title }))
            .collect(),
        recorded_by: row.user,
        last_updated: row.last_updated,
    }
}

#[derive(Object)]
pub struct VitalsList {
    pub items: Vec<Vitals>,
}

#[derive(ApiResponse)]
pub enum ListResponse {
    #[oai(status = 200)]
    Ok(Json<VitalsList>),
}

#[derive(ApiResponse)]
pub enum VitalsResponse {
    #[oai(status = 200)]
    Ok(Json<Vitals>),
}

#[derive(ApiResponse)]
pub enum Created {
    /// Recorded: form_vitals, its `forms` row and its FHIR Observation mappings.
    #[oai(status = 201)]
    Created(Json<Vitals>, #[oai(header = "Location")] String),
}

#[derive(Default)]
pub struct VitalsApi;

fn list(rows: Vec<Reading>, units: UnitSystem) -> ListResponse {
    ListResponse::Ok(Json(VitalsList { items: rows.into_iter().map(|r| shown(r, units)).collect() }))
}

#[OpenApi(tag = "ApiTags::Chart")]
impl VitalsApi {
    /// The vitals forms of an encounter, oldest first.
    ///
    /// `units` (`us` or `metric`) defaults to OpenEMR's `units_of_measurement` setting.
    #[oai(path = "/encounters/:encounter/vitals/", method = "get", operation_id = "encounter_vitals")]
    async fn for_encounter(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        encounter: Path<i64>,
        units: Query<Option<String>>,
    ) -> Result<ListResponse, ApiError> {
        let units = vitals::answer_units(&state, units.0.as_deref()).await?;
        Ok(list(vitals::for_encounter(&state, &auth.0, encounter.0).await?, units))
    }

    /// Record vitals in an encounter as OpenEMR's vitals form does.
    ///
    /// Needs `encounters|notes` on the caller's own encounters (`notes_a` for others') and the
    /// encounter's sensitivity. Stores US units, computes BMI and its status, writes
    /// interpretations to `form_vital_details` and the FHIR Observation `uuid_mapping` rows.
    #[oai(path = "/encounters/:encounter/vitals/", method = "post", operation_id = "encounter_vitals_create")]
    async fn create(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        encounter: Path<i64>,
        units: Query<Option<String>>,
        body: Json<VitalsBody>,
    ) -> Result<Created, ApiError> {
        let answer = vitals::answer_units(&state, units.0.as_deref().or(body.0.units.as_deref())).await?;
        let reading = vitals::record(&state, &auth.0, encounter.0, body.0.into_input()).await?;
        let location = format!("/api/vitals/{}/", reading.row.id);
        Ok(Created::Created(Json(shown(reading, answer)), location))
    }

    /// A patient's vitals over time (oldest first) from the encounters the caller may see.
    ///
    /// `from` (inclusive) and `to` (exclusive) are dates or date-times.
    #[oai(path = "/patients/:pid/vitals/", method = "get", operation_id = "patient_vitals_trend")]
    async fn trend(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        pid: Path<i64>,
        from: Query<Option<String>>,
        to: Query<Option<String>>,
        units: Query<Option<String>>,
    ) -> Result<ListResponse, ApiError> {
        let units = vitals::answer_units(&state, units.0.as_deref()).await?;
        Ok(list(vitals::trend(&state, &auth.0, Pid(pid.0), from.0, to.0).await?, units))
    }

    /// One vitals form.
    #[oai(path = "/vitals/:id/", method = "get", operation_id = "vitals_get")]
    async fn get(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<i64>,
        units: Query<Option<String>>,
    ) -> Result<VitalsResponse, ApiError> {
        let units = vitals::answer_units(&state, units.0.as_deref()).await?;
        Ok(VitalsResponse::Ok(Json(shown(vitals::get(&state, &auth.0, id.0).await?, units))))
    }

    /// Change measurements of a vitals form; those not sent are kept, BMI is recomputed.
    #[oai(path = "/vitals/:id/", method = "patch", operation_id = "vitals_update")]
    async fn update(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<i64>,
        units: Query<Option<String>>,
        body: Json<VitalsBody>,
    ) -> Result<VitalsResponse, ApiError> {
        let answer = vitals::answer_units(&state, units.0.as_deref().or(body.0.units.as_deref())).await?;
        let reading = vitals::update(&state, &auth.0, id.0, body.0.into_input()).await?;
        Ok(VitalsResponse::Ok(Json(shown(reading, answer))))
    }
}
