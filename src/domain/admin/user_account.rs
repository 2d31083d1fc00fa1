//! An OpenEMR staff account as Administration > Users edits it (`usergroup_admin.php`,
//! `AuthUtils::updatePassword`): its fields and their column limits, the password rules OpenEMR's
//! security globals set, and who may manage whom.

use std::collections::HashMap;

use crate::domain::{
    acl::AclLevel,
    admin::facility::npi_is_valid,
    validation::{Issues, looks_like_email},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    FirstName,
    MiddleName,
    LastName,
    Suffix,
    Email,
    /// OpenEMR's "Provider" box: may sign and be chosen as a provider.
    Provider,
    /// Shown in the calendar's provider list.
    Calendar,
    Active,
    FacilityId,
    BillingFacilityId,
    Npi,
    TaxId,
    Taxonomy,
    Specialty,
    StateLicense,
    Info,
    /// Whose authorizations the user sees: 1 none, 2 only mine, 3 all.
    SeeAuth,
}

/// What a field holds once validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Text(String),
    Flag(bool),
    Number(i64),
}

impl Field {
    /// The request field.
    pub fn name(self) -> &'static str {
        match self {
            Self::FirstName => "first_name",
            Self::MiddleName => "middle_name",
            Self::LastName => "last_name",
            Self::Provider => "provider",
            Self::TaxId => "tax_id",
            Self::StateLicense => "state_license_number",
            other => other.column(),
        }
    }

    /// The `users` column.
    pub fn column(self) -> &'static str {
        match self {
            Self::FirstName => "fname",
            Self::MiddleName => "mname",
            Self::LastName => "lname",
            Self::Suffix => "suffix",
            Self::Email => "email",
            Self::Provider => "authorized",
            Self::Calendar => "calendar",
            Self::Active => "active",
            Self::FacilityId => "facility_id",
            Self::BillingFacilityId => "billing_facility_id",
            Self::Npi => "npi",
            Self::TaxId => "federaltaxid",
            Self::Taxonomy => "taxonomy",
            Self::Specialty => "specialty",
            Self::StateLicense => "state_license_number",
            Self::Info => "info",
            Self::SeeAuth => "see_auth",
        }
    }

    /// The column's length in characters (`users` in OpenEMR's schema).
    fn max_chars(self) -> usize {
        match self {
            Self::Npi => 15,
            Self::Taxonomy => 30,
            Self::StateLicense => 25,
            _ => 255,
        }
    }
}

/// A requested value, as parsed at the edge.
pub enum Requested {
    Text(String),
    Flag(bool),
    Number(i64),
}

/// `gacl_aro.value` holds the username in 150 characters, the tightest of its columns.
const USERNAME_MAX: usize = 150;
/// `users.info` is a longtext; a bound keeps one request from storing megabytes of notes.
const INFO_MAX: usize = 10_000;

/// A login name OpenEMR's screens, phpGACL and LDAP binds all take: letters, digits and `._@-`.
pub fn username(issues: &mut Issues, raw: &str) -> String {
    let name = raw.trim();
    if name.is_empty() {
        issues.add("username", "is required");
    } else if name.chars().count() > USERNAME_MAX {
        issues.add("username", format!("must be at most {USERNAME_MAX} characters"));
    } else if !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-')) {
        issues.add("username", "may hold only letters, digits and . _ @ -");
    }
    name.to_string()
}

/// Validates a new account's or a change's fields, naming each bad one; text is trimmed. A new
/// account needs first and last names, and is listed in the calendar when it is a provider
/// unless asked otherwise (OpenEMR's form ticks one box with the other).
pub fn validate(requested: Vec<(Field, Requested)>, creating: bool) -> Result<Vec<(Field, Value)>, Issues> {
    let mut issues = Issues::default();
    for required in [Field::FirstName, Field::LastName] {
        if creating && !requested.iter().any(|(f, _)| *f == required) {
            issues.add(required.name(), "is required");
        }
    }
    let calendar_follows = creating && !requested.iter().any(|(f, _)| *f == Field::Calendar);
    let mut values: Vec<(Field, Value)> = requested
        .into_iter()
        .map(|(field, value)| {
            let value = match value {
                Requested::Text(text) => Value::Text(text_value(&mut issues, field, &text)),
                Requested::Flag(flag) => Value::Flag(flag),
                Requested::Number(n) => Value::Number(number(&mut issues, field, n)),
            };
            (field, value)
        })
        .collect();
    if calendar_follows {
        let provider = values.contains(&(Field::Provider, Value::Flag(true)));
        values.push((Field::Calendar, Value::Flag(provider)));
    }
    issues.into_result(values)
}

fn text_value(issues: &mut Issues, field: Field, text: &str) -> String {
    let required = matches!(field, Field::FirstName | Field::LastName);
    let max = if field == Field::Info { INFO_MAX } else { field.max_chars() };
    let value = if field == Field::Info {
        issues.prose(field.name(), text, 0, max)
    } else {
        issues.text(field.name(), text, usize::from(required), max)
    };
    if value.is_empty() {
        return value;
    }
    match field {
        Field::Npi if !npi_is_valid(&value) => {
            issues.add(field.name(), "must be a 10-digit NPI whose check digit is right");
        }
        Field::Email if !looks_like_email(&value) => {
            issues.add(field.name(), "must be an email address such as dr.garcia@clinic.example");
        }
        _ => {}
    }
    value
}

fn number(issues: &mut Issues, field: Field, n: i64) -> i64 {
    match field {
        Field::SeeAuth if !(1..=3).contains(&n) => {
            issues.add(field.name(), "must be 1 (none), 2 (only mine) or 3 (all)")
        }
        Field::FacilityId | Field::BillingFacilityId if n < 1 => {
            issues.add(field.name(), "must be a facility id")
        }
        _ => {}
    }
    n
}

/// OpenEMR's password rules (`AuthUtils::updatePassword`), from its security globals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordPolicy {
    /// In bytes, as PHP's `strlen` counts; 0 = no minimum.
    pub minimum: usize,
    /// In bytes; 0 = no maximum (bcrypt reads only the first 72).
    pub maximum: usize,
    /// A lowercase and an uppercase letter, a digit and a special character.
    pub strong: bool,
    /// How many earlier passwords (the current one first) may not come back, 0 to 5.
    pub history: usize,
}

impl PasswordPolicy {
    pub const GLOBALS: [&str; 4] =
        ["gbl_minimum_password_length", "gbl_maximum_password_length", "secure_password", "password_history"];

    /// OpenEMR's defaults (9, 72, strong, 5) for globals it stores no value for; a value that is
    /// not a whole number turns that rule off, as PHP's `check_integer` does.
    pub fn from_globals(globals: &HashMap<String, String>) -> Self {
        let number = |name: &str, default: usize| match globals.get(name) {
            None => default,
            Some(v) => v.trim().parse().unwrap_or(0),
        };
        Self {
            minimum: number("gbl_minimum_password_length", 9),
            maximum: number("gbl_maximum_password_length", 72),
            strong: globals.get("secure_password").is_none_or(|v| !matches!(v.trim(), "" | "0")),
            history: number("password_history", 5).min(5),
        }
    }

    /// OpenEMR's message for the first rule `password` breaks.
    pub fn check(&self, password: &str) -> Result<(), String> {
        if password.is_empty() || password == "0" {
            return Err("must not be empty".into());
        }
        if password.contains('\0') {
            return Err("must not contain a NUL character".into());
        }
        if self.minimum > 0 && password.len() < self.minimum {
            return Err(format!("is too short: at least {} characters are required", self.minimum));
        }
        if self.maximum > 0 && password.len() > self.maximum {
            return Err(format!("is too long: at most {} characters are allowed", self.maximum));
        }
        if self.strong && !is_strong(password) {
            return Err("must contain a number, a lowercase letter, an uppercase letter and a special \
                        character (not a letter or number)"
                .into());
        }
        Ok(())
    }
}

/// PHP's `/[a-z]+/`, `/[A-Z]+/`, `/\d+/` and `/[\W_]+/` without `/u`: byte classes, so any
/// non-ASCII byte counts as special.
fn is_strong(password: &str) -> bool {
    let bytes = password.as_bytes();
    bytes.iter().any(u8::is_ascii_lowercase)
        && bytes.iter().any(u8::is_ascii_uppercase)
        && bytes.iter().any(u8::is_ascii_digit)
        && bytes.iter().any(|b| !b.is_ascii_alphanumeric())
}

/// `AclExtended::iHavePermissionsOf`: an administrator without `admin|super` manages only users
/// whose every permission they hold at least as strongly, so nobody can widen their own reach.
pub fn holds_all_of(mine: &[(String, AclLevel)], theirs: &[(String, AclLevel)]) -> bool {
    theirs.iter().all(|(aco, level)| mine.iter().any(|(held, mine)| held == aco && mine >= level))
}

/// The user OpenEMR installs first, and any user marked `gacl_protect`, always stays an
/// administrator (`AclExtended::setUserAro`).
pub fn keeps_admin_group(username: &str, protected: bool) -> bool {
    protected || username == "admin"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn globals(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect()
    }

    #[test]
    fn the_policy_defaults_to_openemrs_and_follows_its_globals() {
        let default = PasswordPolicy::from_globals(&HashMap::new());
        assert_eq!(default, PasswordPolicy { minimum: 9, maximum: 72, strong: true, history: 5 });
        let relaxed = PasswordPolicy::from_globals(&globals(&[
            ("gbl_minimum_password_length", "0"),
            ("gbl_maximum_password_length", "0"),
            ("secure_password", "0"),
            ("password_history", "2"),
        ]));
        assert_eq!(relaxed, PasswordPolicy { minimum: 0, maximum: 0, strong: false, history: 2 });
        assert!(relaxed.check("a").is_ok());
    }

    #[test]
    fn each_rule_is_reported_with_its_limit() {
        let policy = PasswordPolicy::from_globals(&HashMap::new());
        assert!(policy.check("Short1!").unwrap_err().contains("at least 9"));
        assert!(policy.check(&format!("Aa1!{}", "x".repeat(69))).unwrap_err().contains("at most 72"));
        assert!(policy.check("alllowercase1!").unwrap_err().contains("uppercase"));
        assert!(policy.check("NoSpecial123").unwrap_err().contains("special"));
        assert!(policy.check("").is_err());
        assert!(policy.check("Correct-Horse-7").is_ok());
        assert!(policy.check("Under_score1A").is_ok(), "PHP's [\\W_] counts the underscore as special");
        assert!(policy.check("Umlautü1Abc").is_ok(), "a non-ASCII byte is special to PHP's byte regex");
    }

    #[test]
    fn lengths_are_counted_in_bytes_as_php_counts_them() {
        let policy = PasswordPolicy { minimum: 9, maximum: 10, strong: false, history: 0 };
        assert!(policy.check("üüüüü").is_ok(), "five two-byte letters are ten bytes");
        assert!(policy.check("üüüüüü").is_err());
    }

    #[test]
    fn usernames_take_only_characters_every_openemr_path_accepts() {
        for good in ["drgarcia", "j.doe-2", "nurse_ann@clinic"] {
            let mut issues = Issues::default();
            assert_eq!(username(&mut issues, &format!(" {good} ")), good);
            assert!(issues.0.is_empty(), "{good}");
        }
        for bad in ["", "two words", "semi;colon", &"a".repeat(151)] {
            let mut issues = Issues::default();
            username(&mut issues, bad);
            assert_eq!(issues.0.len(), 1, "{bad}");
        }
    }

    #[test]
    fn a_new_account_needs_names_and_lists_a_provider_in_the_calendar() {
        let issues = validate(vec![(Field::Npi, Requested::Text("1234567890".into()))], true).unwrap_err();
        let fields: Vec<&str> = issues.0.iter().map(|i| i.field.as_str()).collect();
        assert_eq!(fields, ["first_name", "last_name", "npi"]);
        let values = validate(
            vec![
                (Field::FirstName, Requested::Text("Ana".into())),
                (Field::LastName, Requested::Text("Ruiz".into())),
                (Field::Provider, Requested::Flag(true)),
            ],
            true,
        )
        .unwrap();
        assert!(values.contains(&(Field::Calendar, Value::Flag(true))));
        let change = validate(vec![(Field::SeeAuth, Requested::Number(4))], false).unwrap_err();
        assert_eq!(change.0[0].field, "see_auth");
    }

    #[test]
    fn an_administrator_manages_only_users_within_their_own_reach() {
        let mine =
            vec![("admin|users".to_string(), AclLevel::Write), ("patients|demo".to_string(), AclLevel::View)];
        assert!(holds_all_of(&mine, &[("patients|demo".to_string(), AclLevel::View)]));
        assert!(!holds_all_of(&mine, &[("patients|demo".to_string(), AclLevel::Write)]));
        assert!(!holds_all_of(&mine, &[("admin|super".to_string(), AclLevel::Write)]));
        assert!(holds_all_of(&mine, &[]));
    }

    #[test]
    fn the_installed_admin_and_protected_users_stay_administrators() {
        assert!(keeps_admin_group("admin", false));
        assert!(keeps_admin_group("drgarcia", true));
        assert!(!keeps_admin_group("drgarcia", false));
    }
}
