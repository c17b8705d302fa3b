//! The `"vardiff"` object of `config.json`, global or on a bind entry:
//!
//! ```json
//! "vardiff": {"enabled": true, "target-time": 30, "min": 1000, "max": 0, "start": 0}
//! ```
//!
//! A bind's object is read over the global one key by key: a bind that says only
//! `{"target-time": 10}` keeps the global `enabled`, `min`, `max` and `start`. Difficulties
//! are numbers, not only integers, because stratum v1 pools use values like 0.004; a
//! CryptoNote port rounds them (see [`to_cryptonote`](super::to_cryptonote)).

use crate::config::ConfigError;
use serde_json::Value;

/// Longest time per share one may ask for, in seconds.
const MAX_TARGET_TIME: u64 = 3600;

/// Vardiff settings of a port.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VardiffConfig {
    /// Miners of the port get their own difficulty (off by default).
    pub enabled: bool,
    /// Seconds per share to aim at.
    pub target_time: u32,
    /// Lowest difficulty handed out (still capped by the pool's).
    pub min: f64,
    /// Highest difficulty handed out; 0 = the pool's.
    pub max: f64,
    /// First difficulty of a miner; 0 = the pool's.
    pub start: f64,
}

// Every value is a finite number (JSON has no NaN and the parser checks), so equality is
// an equivalence and a `Bind` holding this can stay `Eq`.
impl Eq for VardiffConfig {}

impl Default for VardiffConfig {
    fn default() -> Self {
        VardiffConfig { enabled: false, target_time: 30, min: 1000.0, max: 0.0, start: 0.0 }
    }
}

/// Reads a `"vardiff"` object at `path` (`"vardiff"`, `"bind[2].vardiff"`) over `base`
/// (the defaults for the global object, the global settings for a bind's). `null` keeps
/// `base`; unknown keys are ignored, as elsewhere in the config.
pub fn parse_vardiff(v: &Value, path: &str, base: &VardiffConfig) -> Result<VardiffConfig, ConfigError> {
    let obj = match v {
        Value::Null => return Ok(*base),
        Value::Object(o) => o,
        _ => return Err(err(path, "expected an object")),
    };
    let mut c = *base;
    for (k, v) in obj {
        let field = format!("{path}.{k}");
        match k.as_str() {
            "enabled" => {
                if let Some(b) = opt(v, &field, "a boolean", Value::as_bool)? {
                    c.enabled = b;
                }
            }
            "target-time" => {
                if let Some(t) = target_time(v, &field)? {
                    c.target_time = t;
                }
            }
            "min" => set_difficulty(&mut c.min, v, &field)?,
            "max" => set_difficulty(&mut c.max, v, &field)?,
            "start" => set_difficulty(&mut c.start, v, &field)?,
            _ => log::debug!("config: ignoring unknown key {field}"),
        }
    }
    // The relations between the three, naming a field this object set (the base was
    // already valid, so at least one of the pair comes from here).
    let here = |key: &str| obj.get(key).is_some_and(|v| !v.is_null());
    let blame = |first: &str, second: &str| format!("{path}.{}", if here(first) { first } else { second });
    if c.max > 0.0 && c.min > c.max {
        return Err(err(blame("max", "min"), format!("max ({}) must be 0 (the pool's) or at least min ({})", c.max, c.min)));
    }
    if c.start > 0.0 && c.start < c.min {
        return Err(err(blame("start", "min"), format!("start ({}) must be 0 (the pool's) or at least min ({})", c.start, c.min)));
    }
    if c.start > 0.0 && c.max > 0.0 && c.start > c.max {
        return Err(err(blame("start", "max"), format!("start ({}) must be 0 (the pool's) or at most max ({})", c.start, c.max)));
    }
    Ok(c)
}

fn err(field: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError { field: field.into(), reason: reason.into() }
}

/// `null` = unset; otherwise `get` must accept the value, else "expected <what>".
fn opt<T>(v: &Value, f: &str, what: &str, get: impl Fn(&Value) -> Option<T>) -> Result<Option<T>, ConfigError> {
    if v.is_null() { Ok(None) } else { get(v).map(Some).ok_or_else(|| err(f, format!("expected {what}"))) }
}

fn target_time(v: &Value, f: &str) -> Result<Option<u32>, ConfigError> {
    match opt(v, f, "a whole number of seconds", Value::as_u64)? {
        None => Ok(None),
        Some(0) => Err(err(f, "must be at least 1 second")),
        Some(t) if t > MAX_TARGET_TIME => Err(err(f, format!("must be at most {MAX_TARGET_TIME} seconds"))),
        Some(t) => Ok(Some(t as u32)),
    }
}

fn set_difficulty(slot: &mut f64, v: &Value, f: &str) -> Result<(), ConfigError> {
    match opt(v, f, "a number", Value::as_f64)? {
        None => Ok(()),
        Some(d) if d < 0.0 => Err(err(f, "must not be negative")),
        Some(d) if !d.is_finite() => Err(err(f, "expected a finite number")),
        Some(d) => {
            *slot = d;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<VardiffConfig, ConfigError> {
        parse_vardiff(&v, "vardiff", &VardiffConfig::default())
    }

    #[test]
    fn the_issue_example_and_defaults() {
        let c = parse(json!({"enabled": true, "target-time": 30, "min": 1000, "max": 0, "start": 0})).unwrap();
        assert_eq!(c, VardiffConfig { enabled: true, ..VardiffConfig::default() });
        assert_eq!(parse(json!(null)).unwrap(), VardiffConfig::default());
        assert_eq!(parse(json!({})).unwrap(), VardiffConfig::default());
        assert!(!VardiffConfig::default().enabled, "opt-in");
        let c = parse(json!({"min": 0.001, "max": 0.5, "start": 0.004, "enabled": null, "future-key": 1})).unwrap();
        assert_eq!((c.min, c.max, c.start, c.enabled), (0.001, 0.5, 0.004, false), "v1 difficulties are fractions");
    }

    #[test]
    fn a_bind_reads_over_the_global_object() {
        let global = parse(json!({"enabled": true, "target-time": 20, "min": 5000})).unwrap();
        let bind = parse_vardiff(&json!({"target-time": 10}), "bind[1].vardiff", &global).unwrap();
        assert_eq!(bind, VardiffConfig { target_time: 10, ..global });
        let off = parse_vardiff(&json!({"enabled": false}), "bind[0].vardiff", &global).unwrap();
        assert!(!off.enabled);
        assert_eq!(parse_vardiff(&json!(null), "bind[0].vardiff", &global).unwrap(), global);
    }

    #[test]
    fn every_bad_value_names_its_field() {
        let e = |field: &str, reason: &str| err(field, reason);
        for (v, want) in [
            (json!([]), e("vardiff", "expected an object")),
            (json!(true), e("vardiff", "expected an object")),
            (json!({"enabled": 1}), e("vardiff.enabled", "expected a boolean")),
            (json!({"enabled": "yes"}), e("vardiff.enabled", "expected a boolean")),
            (json!({"target-time": 0}), e("vardiff.target-time", "must be at least 1 second")),
            (json!({"target-time": -30}), e("vardiff.target-time", "expected a whole number of seconds")),
            (json!({"target-time": 2.5}), e("vardiff.target-time", "expected a whole number of seconds")),
            (json!({"target-time": "30"}), e("vardiff.target-time", "expected a whole number of seconds")),
            (json!({"target-time": 3601}), e("vardiff.target-time", "must be at most 3600 seconds")),
            (json!({"min": -1}), e("vardiff.min", "must not be negative")),
            (json!({"max": -0.5}), e("vardiff.max", "must not be negative")),
            (json!({"start": -1000}), e("vardiff.start", "must not be negative")),
            (json!({"min": "1000"}), e("vardiff.min", "expected a number")),
            (json!({"max": [1]}), e("vardiff.max", "expected a number")),
            (json!({"start": {}}), e("vardiff.start", "expected a number")),
            (json!({"min": 5000, "max": 2000}), e("vardiff.max", "max (2000) must be 0 (the pool's) or at least min (5000)")),
            (json!({"start": 500}), e("vardiff.start", "start (500) must be 0 (the pool's) or at least min (1000)")),
            (json!({"max": 2000, "start": 3000}), e("vardiff.start", "start (3000) must be 0 (the pool's) or at most max (2000)")),
        ] {
            assert_eq!(parse(v.clone()), Err(want), "{v}");
        }
        // min above max is fine while max is 0 (the pool's).
        assert!(parse(json!({"min": 1e9, "max": 0})).is_ok());
    }

    #[test]
    fn a_relation_broken_by_a_bind_blames_the_bind_key() {
        let global = parse(json!({"max": 100000, "start": 50000})).unwrap();
        let e = parse_vardiff(&json!({"min": 200000}), "bind[3].vardiff", &global).unwrap_err();
        assert_eq!(e.field, "bind[3].vardiff.min");
        let e = parse_vardiff(&json!({"max": 20000}), "bind[3].vardiff", &global).unwrap_err();
        assert_eq!(e.field, "bind[3].vardiff.max");
    }
}
