//! What a user may change in their own OpenEMR `users` row. OpenEMR has no self-service screen
//! for it: `usergroup_admin.php` (Administration > Users, `admin|users`) sets names, specialty and
//! provider identifiers, and the address book (`admin|practice`) sets email and phone numbers.
//! A user holding that permission may change those fields of their own row here; nothing else.

use crate::domain::{
    acl::Aco,
    validation::{Issues, looks_like_email},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Fname,
    Mname,
    Lname,
    Suffix,
    Valedictory,
    Specialty,
    Npi,
    Taxonomy,
    StateLicenseNumber,
    Email,
    Phone,
    PhoneWork,
    PhoneCell,
    Fax,
}

impl Field {
    pub const ALL: [Self; 14] = [
        Self::Fname,
        Self::Mname,
        Self::Lname,
        Self::Suffix,
        Self::Valedictory,
        Self::Specialty,
        Self::Npi,
        Self::Taxonomy,
        Self::StateLicenseNumber,
        Self::Email,
        Self::Phone,
        Self::PhoneWork,
        Self::PhoneCell,
        Self::Fax,
    ];

    /// The request field, which is the column name except for the work phone.
    pub fn name(self) -> &'static str {
        match self {
            Self::PhoneWork => "phone_work",
            Self::PhoneCell => "phone_cell",
            other => other.column(),
        }
    }

    pub fn column(self) -> &'static str {
        match self {
            Self::Fname => "fname",
            Self::Mname => "mname",
            Self::Lname => "lname",
            Self::Suffix => "suffix",
            Self::Valedictory => "valedictory",
            Self::Specialty => "specialty",
            Self::Npi => "npi",
            Self::Taxonomy => "taxonomy",
            Self::StateLicenseNumber => "state_license_number",
            Self::Email => "email",
            Self::Phone => "phone",
            Self::PhoneWork => "phonew1",
            Self::PhoneCell => "phonecell",
            Self::Fax => "fax",
        }
    }

    /// The column's length in characters (`users` in OpenEMR's schema).
    fn max_chars(self) -> usize {
        match self {
            Self::Npi => 15,
            Self::Taxonomy => 30,
            Self::StateLicenseNumber => 25,
            Self::Phone | Self::PhoneWork | Self::PhoneCell | Self::Fax => 30,
            _ => 255,
        }
    }

    /// OpenEMR's user editor refuses an empty first or last name; taxonomy is NOT NULL.
    fn required(self) -> bool {
        matches!(self, Self::Fname | Self::Lname | Self::Taxonomy)
    }

    /// The OpenEMR permission of the screen that edits this field.
    pub fn grant(self) -> Aco {
        match self {
            Self::Email | Self::Phone | Self::PhoneWork | Self::PhoneCell | Self::Fax => Aco::ADMIN_PRACTICE,
            _ => Aco::ADMIN_USERS,
        }
    }
}

/// Validates the requested changes, naming each bad field; values are trimmed.
pub fn validate(requested: Vec<(Field, String)>) -> Result<Vec<(Field, String)>, Issues> {
    let mut issues = Issues::default();
    let changes = requested
        .into_iter()
        .map(|(field, value)| {
            let min = usize::from(field.required());
            let value = issues.text(field.name(), &value, min, field.max_chars());
            if field == Field::Email && !value.is_empty() && !looks_like_email(&value) {
                issues.add(field.name(), "must be an email address such as name@example.org");
            }
            (field, value)
        })
        .collect();
    issues.into_result(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_field_is_named_and_good_values_are_trimmed() {
        let err = validate(vec![
            (Field::Fname, " ".into()),
            (Field::Npi, "1".repeat(16)),
            (Field::Email, "not-an-address".into()),
        ])
        .unwrap_err();
        let named: Vec<&str> = err.0.iter().map(|i| i.field.as_str()).collect();
        assert_eq!(named, ["fname", "npi", "email"]);
        let ok = validate(vec![(Field::PhoneCell, " (217) 555-0100 ".into())]).unwrap();
        assert_eq!(ok, vec![(Field::PhoneCell, "(217) 555-0100".into())]);
    }

    #[test]
    fn contact_fields_belong_to_the_address_book_and_the_rest_to_user_administration() {
        assert_eq!(Field::Email.grant(), Aco::ADMIN_PRACTICE);
        assert_eq!(Field::Npi.grant(), Aco::ADMIN_USERS);
        assert_eq!(Field::PhoneWork.column(), "phonew1");
    }
}
