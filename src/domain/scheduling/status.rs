//! Appointment status: OpenEMR's `apptstat` list codes, what each means, and the one place that
//! decides which change of status is allowed.

use std::fmt;

/// A code from OpenEMR's `apptstat` list (`pc_apptstatus`, at most 15 characters). Sites add their
/// own codes, so the code stays text; its meaning is its [`Phase`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StatusCode(String);

impl StatusCode {
    pub fn new(code: &str) -> Self {
        Self(code.to_string())
    }

    pub fn none() -> Self {
        Self::new("-")
    }

    pub fn pending() -> Self {
        Self::new("^")
    }

    pub fn arrived() -> Self {
        Self::new("@")
    }

    pub fn no_show() -> Self {
        Self::new("?")
    }

    pub fn canceled() -> Self {
        Self::new("x")
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where an appointment is in its life, as OpenEMR's FHIR Appointment service maps the codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// `-`: nothing said yet (FHIR proposed).
    Proposed,
    /// `^`, `#` and unknown codes: awaiting confirmation, e.g. an unpaid hold.
    Pending,
    /// `*`, `AVM`, `SMS`, `EMAIL`: confirmed.
    Booked,
    /// `CALL`: callback requested.
    Waitlist,
    /// `@`, `~` (and any code with `toggle_setting_1`): the patient is here.
    Arrived,
    /// `<`, `+`: in the exam room, chart pulled.
    CheckedIn,
    /// `>`, `$` (and any code with `toggle_setting_2` other than `!`): seen and checked out.
    Fulfilled,
    /// `?`.
    NoShow,
    /// `x`, `%`, `!`.
    Cancelled,
}

/// A code with the list's flags, as `list_options` holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusOption {
    pub code: StatusCode,
    pub title: String,
    /// `toggle_setting_1`: setting this code checks the patient in.
    pub checks_in: bool,
    /// `toggle_setting_2`: setting this code checks the patient out.
    pub checks_out: bool,
}

impl StatusOption {
    pub fn phase(&self) -> Phase {
        phase_of(self.code.as_str(), self.checks_in, self.checks_out)
    }
}

pub fn phase_of(code: &str, checks_in: bool, checks_out: bool) -> Phase {
    match code {
        "-" => Phase::Proposed,
        "*" | "AVM" | "SMS" | "EMAIL" => Phase::Booked,
        "CALL" => Phase::Waitlist,
        "@" | "~" => Phase::Arrived,
        "<" | "+" => Phase::CheckedIn,
        ">" | "$" => Phase::Fulfilled,
        "?" => Phase::NoShow,
        "x" | "%" | "!" => Phase::Cancelled,
        _ if checks_in => Phase::Arrived,
        _ if checks_out => Phase::Fulfilled,
        _ => Phase::Pending,
    }
}

impl Phase {
    pub fn fhir(self) -> &'static str {
        match self {
            Self::Proposed => "proposed",
            Self::Pending => "pending",
            Self::Booked => "booked",
            Self::Waitlist => "waitlist",
            Self::Arrived => "arrived",
            Self::CheckedIn => "checked-in",
            Self::Fulfilled => "fulfilled",
            Self::NoShow => "noshow",
            Self::Cancelled => "cancelled",
        }
    }

    /// Whether an appointment in this phase takes its provider's time. Cancelled and no-show
    /// appointments free it (OpenEMR's own "find available" still counts them).
    pub fn occupies_time(self) -> bool {
        !matches!(self, Self::Cancelled | Self::NoShow)
    }

    fn is_scheduled(self) -> bool {
        matches!(self, Self::Proposed | Self::Pending | Self::Booked | Self::Waitlist)
    }

    /// The one rule for status changes. Before the visit anything goes; once the patient is here
    /// the visit only moves forward (or ends with "left without visit"); a checked-out visit only
    /// changes between checked-out codes; a cancelled one stays cancelled (book again instead); a
    /// no-show may still arrive late or be reinstated.
    pub fn may_become(self, next: Self) -> bool {
        use Phase::*;
        match self {
            _ if self == next => true,
            Proposed | Pending | Booked | Waitlist => true,
            Arrived => matches!(next, CheckedIn | Fulfilled | Cancelled),
            CheckedIn => matches!(next, Arrived | Fulfilled | Cancelled),
            Fulfilled | Cancelled => false,
            NoShow => next.is_scheduled() || matches!(next, Arrived | Cancelled),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase(code: &str) -> Phase {
        phase_of(code, false, false)
    }

    #[test]
    fn codes_map_as_openemr_fhir_maps_them() {
        for (code, fhir) in [
            ("-", "proposed"),
            ("^", "pending"),
            ("#", "pending"),
            ("*", "booked"),
            ("SMS", "booked"),
            ("CALL", "waitlist"),
            ("@", "arrived"),
            ("~", "arrived"),
            ("<", "checked-in"),
            (">", "fulfilled"),
            ("$", "fulfilled"),
            ("?", "noshow"),
            ("x", "cancelled"),
            ("%", "cancelled"),
            ("!", "cancelled"),
            ("ZZ", "pending"),
        ] {
            assert_eq!(phase(code).fhir(), fhir, "{code}");
        }
        assert_eq!(phase_of("IN", true, false), Phase::Arrived);
        assert_eq!(phase_of("OUT", false, true), Phase::Fulfilled);
    }

    #[test]
    fn a_visit_moves_forward_once_the_patient_is_here() {
        assert!(phase("-").may_become(phase("@")));
        assert!(phase("@").may_become(phase("<")));
        assert!(phase("<").may_become(phase(">")));
        assert!(phase(">").may_become(phase("$")));
        assert!(!phase("@").may_become(phase("-")));
        assert!(!phase(">").may_become(phase("@")));
        assert!(!phase("<").may_become(phase("?")));
    }

    #[test]
    fn cancelled_is_final_and_no_show_may_still_arrive() {
        assert!(!phase("x").may_become(phase("-")));
        assert!(!phase("x").may_become(phase("@")));
        assert!(phase("x").may_become(phase("%")));
        assert!(phase("?").may_become(phase("~")));
        assert!(phase("?").may_become(phase("*")));
        assert!(!phase("?").may_become(phase(">")));
    }

    #[test]
    fn only_cancelled_and_no_show_free_the_slot() {
        for code in ["-", "^", "*", "@", "<", ">", "CALL"] {
            assert!(phase(code).occupies_time(), "{code}");
        }
        for code in ["x", "%", "!", "?"] {
            assert!(!phase(code).occupies_time(), "{code}");
        }
    }
}
