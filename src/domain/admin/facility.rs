//! An OpenEMR facility as Administration > Clinic > Facilities edits it (`facility_admin.php`,
//! `FacilityService::insertFacility` / `updateFacility`): which fields exist, their column limits,
//! and the rules OpenEMR's screen applies (a name is required; one primary business entity).

use crate::domain::validation::{Issues, looks_like_email};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Name,
    Phone,
    Fax,
    Street,
    City,
    State,
    PostalCode,
    CountryCode,
    Email,
    Website,
    TaxId,
    TaxIdType,
    Npi,
    Taxonomy,
    PosCode,
    ServiceLocation,
    BillingLocation,
    AcceptsAssignment,
    PrimaryBusinessEntity,
    Color,
    Active,
}

/// What a field holds once validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Text(String),
    Flag(bool),
    /// A CMS place-of-service code, or none.
    Code(Option<u8>),
}

impl Field {
    pub const ALL: [Self; 21] = [
        Self::Name,
        Self::Phone,
        Self::Fax,
        Self::Street,
        Self::City,
        Self::State,
        Self::PostalCode,
        Self::CountryCode,
        Self::Email,
        Self::Website,
        Self::TaxId,
        Self::TaxIdType,
        Self::Npi,
        Self::Taxonomy,
        Self::PosCode,
        Self::ServiceLocation,
        Self::BillingLocation,
        Self::AcceptsAssignment,
        Self::PrimaryBusinessEntity,
        Self::Color,
        Self::Active,
    ];

    /// What a replacement stores for a field it leaves out: empty text, no code, unticked boxes,
    /// and active (a facility is retired only on purpose).
    fn cleared(self) -> Value {
        match self {
            Self::PosCode => Value::Code(None),
            Self::Active => Value::Flag(true),
            Self::ServiceLocation
            | Self::BillingLocation
            | Self::AcceptsAssignment
            | Self::PrimaryBusinessEntity => Value::Flag(false),
            _ => Value::Text(String::new()),
        }
    }

    /// The request field.
    pub fn name(self) -> &'static str {
        match self {
            Self::TaxId => "tax_id",
            Self::Npi => "npi",
            Self::Taxonomy => "taxonomy",
            Self::Active => "active",
            other => other.column(),
        }
    }

    /// The `facility` column.
    pub fn column(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Phone => "phone",
            Self::Fax => "fax",
            Self::Street => "street",
            Self::City => "city",
            Self::State => "state",
            Self::PostalCode => "postal_code",
            Self::CountryCode => "country_code",
            Self::Email => "email",
            Self::Website => "website",
            Self::TaxId => "federal_ein",
            Self::TaxIdType => "tax_id_type",
            Self::Npi => "facility_npi",
            Self::Taxonomy => "facility_taxonomy",
            Self::PosCode => "pos_code",
            Self::ServiceLocation => "service_location",
            Self::BillingLocation => "billing_location",
            Self::AcceptsAssignment => "accepts_assignment",
            Self::PrimaryBusinessEntity => "primary_business_entity",
            Self::Color => "color",
            Self::Active => "inactive",
        }
    }

    /// The value stored for a flag: `active` is kept as OpenEMR's `inactive`.
    pub fn stored_flag(self, flag: bool) -> bool {
        if self == Self::Active { !flag } else { flag }
    }

    /// The column's length in characters (`facility` in OpenEMR's schema).
    fn max_chars(self) -> usize {
        match self {
            Self::Phone | Self::Fax | Self::CountryCode => 30,
            Self::State => 50,
            Self::PostalCode => 11,
            Self::TaxId | Self::Npi | Self::Taxonomy => 15,
            Self::TaxIdType => 31,
            Self::Color => 7,
            _ => 255,
        }
    }
}

/// A requested value, as parsed at the edge.
pub enum Requested {
    Text(String),
    Flag(bool),
    Code(Option<i64>),
}

/// Validates a create or a change, naming each bad field; text is trimmed. A create must name
/// the facility (OpenEMR's screen refuses a nameless one) and is not the primary business entity
/// unless asked (the schema's default says it is; the screen's checkbox starts unticked).
pub fn validate(requested: Vec<(Field, Requested)>, creating: bool) -> Result<Vec<(Field, Value)>, Issues> {
    let mut issues = Issues::default();
    if creating && !requested.iter().any(|(f, _)| *f == Field::Name) {
        issues.add(Field::Name.name(), "is required");
    }
    let unticked = creating && !requested.iter().any(|(f, _)| *f == Field::PrimaryBusinessEntity);
    let mut values: Vec<(Field, Value)> = requested
        .into_iter()
        .map(|(field, value)| {
            let value = match value {
                Requested::Text(text) => Value::Text(text_value(&mut issues, field, &text)),
                Requested::Flag(flag) => Value::Flag(flag),
                Requested::Code(code) => Value::Code(pos_code(&mut issues, field, code)),
            };
            (field, value)
        })
        .collect();
    if unticked {
        values.push((Field::PrimaryBusinessEntity, Value::Flag(false)));
    }
    issues.into_result(values)
}

/// Validates a whole facility, as OpenEMR's editor saves every field of its form: what the
/// request leaves out is cleared (see [`Field::cleared`]), and the name is required.
pub fn replacement(requested: Vec<(Field, Requested)>) -> Result<Vec<(Field, Value)>, Issues> {
    let mut values = validate(requested, true)?;
    for field in Field::ALL {
        if !values.iter().any(|(f, _)| *f == field) {
            values.push((field, field.cleared()));
        }
    }
    Ok(values)
}

fn text_value(issues: &mut Issues, field: Field, text: &str) -> String {
    let min = if field == Field::Name { 2 } else { 0 };
    let value = issues.text(field.name(), text, min, field.max_chars());
    if value.is_empty() {
        return value;
    }
    match field {
        Field::Npi if !npi_is_valid(&value) => {
            issues.add(field.name(), "must be a 10-digit NPI whose check digit is right");
        }
        Field::Email if !looks_like_email(&value) => {
            issues.add(field.name(), "must be an email address such as office@clinic.example");
        }
        Field::Color if !is_hex_colour(&value) => {
            issues.add(field.name(), "must be a colour such as #1a7f37");
        }
        _ => {}
    }
    value
}

/// CMS place-of-service codes run from 01 to 99; `pos_code` is a tinyint.
fn pos_code(issues: &mut Issues, field: Field, code: Option<i64>) -> Option<u8> {
    let code = code?;
    match u8::try_from(code) {
        Ok(code @ 1..=99) => Some(code),
        _ => {
            issues.add(field.name(), "must be a place-of-service code from 1 to 99");
            None
        }
    }
}

/// The NPI check digit: Luhn over the ten digits prefixed with the card issuer code 80840.
pub fn npi_is_valid(npi: &str) -> bool {
    if npi.len() != 10 || !npi.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let digits = format!("80840{npi}");
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 { if d * 2 > 9 { d * 2 - 9 } else { d * 2 } } else { d }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn is_hex_colour(value: &str) -> bool {
    value.strip_prefix('#').is_some_and(|hex| hex.len() == 6 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npi_check_digits_follow_the_cms_luhn_rule() {
        assert!(npi_is_valid("1234567893"), "CMS's own example");
        assert!(!npi_is_valid("1234567890"));
        assert!(!npi_is_valid("123456789"));
        assert!(!npi_is_valid("12345678a3"));
    }

    #[test]
    fn a_create_needs_a_name_and_every_bad_field_is_named() {
        let requested = vec![
            (Field::Npi, Requested::Text("1234567890".into())),
            (Field::PostalCode, Requested::Text("123456789012".into())),
            (Field::PosCode, Requested::Code(Some(100))),
            (Field::Color, Requested::Text("red".into())),
            (Field::Email, Requested::Text("nobody".into())),
        ];
        let issues = validate(requested, true).unwrap_err();
        let fields: Vec<&str> = issues.0.iter().map(|i| i.field.as_str()).collect();
        assert_eq!(fields, ["name", "npi", "postal_code", "pos_code", "color", "email"]);
    }

    #[test]
    fn a_create_is_not_the_primary_business_entity_unless_asked() {
        let name = || (Field::Name, Requested::Text("Harbour Street Clinic".into()));
        let values = validate(vec![name()], true).unwrap();
        assert!(values.contains(&(Field::PrimaryBusinessEntity, Value::Flag(false))));
        let values =
            validate(vec![name(), (Field::PrimaryBusinessEntity, Requested::Flag(true))], true).unwrap();
        assert_eq!(values.iter().filter(|(f, _)| *f == Field::PrimaryBusinessEntity).count(), 1);
        assert!(values.contains(&(Field::PrimaryBusinessEntity, Value::Flag(true))));
    }

    #[test]
    fn a_replacement_sets_every_field_and_clears_those_left_out() {
        let requested = vec![
            (Field::Name, Requested::Text("Harbour Street Clinic".into())),
            (Field::Phone, Requested::Text("555-0100".into())),
        ];
        let values = replacement(requested).unwrap();
        assert_eq!(values.len(), Field::ALL.len());
        assert!(values.contains(&(Field::Phone, Value::Text("555-0100".into()))));
        assert!(values.contains(&(Field::Fax, Value::Text(String::new()))));
        assert!(values.contains(&(Field::PosCode, Value::Code(None))));
        assert!(values.contains(&(Field::Active, Value::Flag(true))));
        assert!(values.contains(&(Field::BillingLocation, Value::Flag(false))));
        assert!(replacement(vec![]).is_err(), "a replacement names the facility");
    }

    #[test]
    fn a_change_may_leave_the_name_and_clear_optional_text() {
        let requested = vec![
            (Field::Phone, Requested::Text("  ".into())),
            (Field::PosCode, Requested::Code(Some(11))),
            (Field::Active, Requested::Flag(false)),
        ];
        let values = validate(requested, false).unwrap();
        assert_eq!(values.len(), 3, "a change adds nothing");
        assert_eq!(values[0], (Field::Phone, Value::Text(String::new())));
        assert_eq!(values[1], (Field::PosCode, Value::Code(Some(11))));
    }
}
