//! Feature flags: a client's `feature_flags` map, read by code. Only the flags named here may be
//! set (anything else is a 422), each with its default for a client that never set it.
//!
//! - `booking`: the booking API (services, staff, availability, appointments) and the widget's
//!   Book tab. Off: those routes answer 403 `feature_disabled` and the widget shows no tab.
//! - `widget_leads`: the widget's lead form. Off: its submissions answer 403 `feature_disabled`
//!   and the config says so.

use serde_json::{Map, Value};

use crate::platform::error::{ApiError, ApiResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    Booking,
    WidgetLeads,
}

impl Flag {
    pub const ALL: [Flag; 2] = [Flag::Booking, Flag::WidgetLeads];

    pub fn name(self) -> &'static str {
        match self {
            Flag::Booking => "booking",
            Flag::WidgetLeads => "widget_leads",
        }
    }

    fn default(self) -> bool {
        true
    }
}

/// Whether a flag is on, given a client's stored `feature_flags` JSON.
pub fn enabled(stored: &str, flag: Flag) -> bool {
    crate::platform::body::parse::<Map<String, Value>>(stored.as_bytes(), "feature_flags")
        .ok()
        .and_then(|m| m.get(flag.name()).and_then(Value::as_bool))
        .unwrap_or_else(|| flag.default())
}

/// The refusal for a route behind a flag that is off.
pub fn require(stored: &str, flag: Flag) -> ApiResult<()> {
    if enabled(stored, flag) {
        return Ok(());
    }
    Err(disabled(flag))
}

/// 403 `feature_disabled`, naming the flag.
pub fn disabled(flag: Flag) -> ApiError {
    ApiError::Forbidden("feature_disabled", format!("`{}` is turned off for this client", flag.name()))
}

/// A patch of flags merged over the stored ones: known names only, booleans only.
pub fn patch(stored: &str, patch: &Map<String, Value>) -> ApiResult<String> {
    let mut current: Map<String, Value> =
        crate::platform::body::parse(stored.as_bytes(), "feature_flags").unwrap_or_default();
    for (k, v) in patch {
        if !Flag::ALL.iter().any(|f| f.name() == k) {
            return Err(ApiError::invalid(
                "invalid_feature_flags",
                format!("`{k}` is not a feature flag; the flags are {}", Flag::ALL.map(Flag::name).join(", ")),
            ));
        }
        if !v.is_boolean() {
            return Err(ApiError::invalid("invalid_feature_flags", format!("`{k}` must be true or false")));
        }
        current.insert(k.clone(), v.clone());
    }
    Ok(Value::Object(current).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flags_default_on_and_only_known_booleans_are_taken() {
        assert!(enabled("{}", Flag::Booking));
        assert!(!enabled(r#"{"booking":false}"#, Flag::Booking));
        assert!(enabled(r#"{"booking":false}"#, Flag::WidgetLeads));
        assert!(enabled("not json", Flag::Booking));
        let p = |v: Value| patch(r#"{"booking":false}"#, v.as_object().unwrap());
        assert_eq!(p(json!({"widget_leads": false})).unwrap(), r#"{"booking":false,"widget_leads":false}"#);
        assert_eq!(p(json!({"booking": true})).unwrap(), r#"{"booking":true}"#);
        assert!(p(json!({"bookings": true})).is_err());
        assert!(p(json!({"booking": "yes"})).is_err());
        assert_eq!(require(r#"{"booking":false}"#, Flag::Booking).unwrap_err().code(), "feature_disabled");
    }
}
