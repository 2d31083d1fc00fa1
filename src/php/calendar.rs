//! The PHP-serialized columns of OpenEMR's calendar: `pc_recurrspec` (how an event repeats) and
//! `pc_location`, read as PHP's `unserialize()` reads them and written as `serialize()` writes them.

use muesli::{ArrayKey, Value};

use crate::domain::scheduling::recurrence::RecurrSpec;

/// `serialize()` of the spec OpenEMR's calendar saves for an event that does not repeat.
pub const NO_REPEAT: &str = concat!(
    r#"a:6:{s:17:"event_repeat_freq";s:0:"";s:22:"event_repeat_freq_type";s:0:"";"#,
    r#"s:19:"event_repeat_on_num";s:1:"1";s:19:"event_repeat_on_day";s:1:"0";"#,
    r#"s:20:"event_repeat_on_freq";s:1:"0";s:6:"exdate";s:0:"";}"#
);

/// `serialize()` of the empty location array the calendar saves with every event.
pub const EMPTY_LOCATION: &str = concat!(
    r#"a:6:{s:14:"event_location";s:0:"";s:13:"event_street1";s:0:"";s:13:"event_street2";s:0:"";"#,
    r#"s:10:"event_city";s:0:"";s:11:"event_state";s:0:"";s:12:"event_postal";s:0:"";}"#
);

/// The spec's values as strings (PHP stores them as strings, older rows as integers); anything
/// unreadable is an empty spec, which OpenEMR's `checkEvent()` then skips for repeating events.
pub fn recurrspec(raw: Option<&str>) -> RecurrSpec {
    let Some(Ok(Value::Array(items))) = raw.map(|r| muesli::unserialize(r.as_bytes())) else {
        return RecurrSpec::default();
    };
    let get = |name: &str| {
        items
            .iter()
            .rev()
            .find(|(k, _)| *k == ArrayKey::String(name.as_bytes()))
            .map(|(_, v)| scalar(v))
            .unwrap_or_default()
    };
    RecurrSpec {
        repeat_freq: get("event_repeat_freq"),
        repeat_freq_type: get("event_repeat_freq_type"),
        repeat_on_num: get("event_repeat_on_num"),
        repeat_on_day: get("event_repeat_on_day"),
        repeat_on_freq: get("event_repeat_on_freq"),
        exdate: get("exdate"),
        rt2_pf_flag: !matches!(get("rt2_pf_flag").as_str(), "" | "0"),
    }
}

fn scalar(value: &Value<'_>) -> String {
    match value {
        Value::String(s) => String::from_utf8_lossy(s).into_owned(),
        Value::Integer(i) => i.to_string(),
        Value::Boolean(b) => if *b { "1" } else { "" }.to_string(),
        Value::Decimal(f) => f.to_string(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_spec_openemr_writes_for_a_weekly_event() {
        let raw = r#"a:7:{s:17:"event_repeat_freq";s:1:"2";s:22:"event_repeat_freq_type";s:1:"1";s:19:"event_repeat_on_num";s:1:"1";s:19:"event_repeat_on_day";s:1:"0";s:20:"event_repeat_on_freq";s:1:"0";s:6:"exdate";s:17:"20261201,20261215";s:11:"rt2_pf_flag";s:1:"0";}"#;
        let spec = recurrspec(Some(raw));
        assert_eq!(spec.repeat_freq, "2");
        assert_eq!(spec.repeat_freq_type, "1");
        assert_eq!(spec.exdate, "20261201,20261215");
        assert!(!spec.rt2_pf_flag);
    }

    #[test]
    fn the_written_constants_parse_back() {
        let spec = recurrspec(Some(NO_REPEAT));
        assert_eq!((spec.repeat_on_num.as_str(), spec.exdate.as_str()), ("1", ""));
        assert!(
            matches!(muesli::unserialize(EMPTY_LOCATION.as_bytes()), Ok(Value::Array(items)) if items.len() == 6)
        );
    }

    #[test]
    fn garbage_is_an_empty_spec() {
        assert_eq!(recurrspec(Some("not php")), RecurrSpec::default());
        assert_eq!(recurrspec(None), RecurrSpec::default());
    }
}
