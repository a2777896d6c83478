//! Reading a Lambda's settings from environment variables, once, at init: the one helper both
//! Lambdas' `Config::from_env` use, so that every variable is read by the same rules.
//!
//! Rules: a value is trimmed, and an empty value counts as unset; a variable that is set must
//! parse, or the Lambda fails at init with `VAR="value" is invalid: expected …` (it never falls
//! back to a default silently). Tests read through a map instead of the process environment
//! ([`Env::from_lookup`]).
//!
//! Must not depend on anything but `thiserror`: the core crates' configs may use it.

use std::str::FromStr;

/// A setting that is missing or does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("{var}={value:?} is invalid: expected {expected}")]
    Invalid {
        var: &'static str,
        value: String,
        expected: &'static str,
    },
}

/// Where settings are read from.
pub struct Env<F> {
    var: F,
}

/// The process environment.
pub fn process() -> Env<fn(&str) -> Option<String>> {
    Env::from_lookup(|k| std::env::var(k).ok())
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    /// Settings read through `var` (a map in tests).
    pub fn from_lookup(var: F) -> Self {
        Self { var }
    }

    /// The trimmed value of `name`; `None` when unset or empty.
    pub fn get(&self, name: &str) -> Option<String> {
        (self.var)(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    /// The value of `name`, which must be set.
    pub fn required(&self, name: &'static str) -> Result<String, EnvError> {
        self.get(name).ok_or(EnvError::Missing(name))
    }

    /// `name` read by `parse` when set; `expected` says what it must be.
    pub fn parsed_with<T, E>(
        &self,
        name: &'static str,
        expected: &'static str,
        parse: impl Fn(&str) -> Result<T, E>,
    ) -> Result<Option<T>, EnvError> {
        self.get(name)
            .map(|v| {
                parse(&v).map_err(|_| EnvError::Invalid {
                    var: name,
                    value: v.clone(),
                    expected,
                })
            })
            .transpose()
    }

    /// `name` parsed as a `T` when set.
    pub fn parsed<T: FromStr>(
        &self,
        name: &'static str,
        expected: &'static str,
    ) -> Result<Option<T>, EnvError> {
        self.parsed_with(name, expected, str::parse::<T>)
    }

    /// `name` as a number greater than zero when set.
    pub fn positive<T>(
        &self,
        name: &'static str,
        expected: &'static str,
    ) -> Result<Option<T>, EnvError>
    where
        T: FromStr + PartialOrd + Default,
    {
        self.parsed_with(name, expected, |v| match v.parse::<T>() {
            Ok(n) if n > T::default() => Ok(n),
            _ => Err(()),
        })
    }

    /// `name` as `true|1|yes` or `false|0|no` (any case) when set.
    pub fn boolean(&self, name: &'static str) -> Result<Option<bool>, EnvError> {
        self.parsed_with(name, "true or false", |v| {
            match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Ok(true),
                "false" | "0" | "no" => Ok(false),
                _ => Err(()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> Env<impl Fn(&str) -> Option<String>> {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Env::from_lookup(move |k| m.get(k).cloned())
    }

    #[test]
    fn values_are_trimmed_and_empty_ones_are_unset() {
        let e = env(&[("A", "  x "), ("B", "   ")]);
        assert_eq!(e.get("A").as_deref(), Some("x"));
        assert_eq!(e.get("B"), None);
        assert_eq!(e.required("B"), Err(EnvError::Missing("B")));
        assert_eq!(e.required("B").unwrap_err().to_string(), "B is not set");
    }

    #[test]
    fn set_values_must_parse() {
        let e = env(&[("N", "0"), ("M", "12"), ("T", "Yes"), ("F", "maybe")]);
        assert_eq!(e.positive::<u64>("M", "n >= 1"), Ok(Some(12)));
        assert_eq!(e.positive::<u64>("UNSET", "n >= 1"), Ok(None));
        assert_eq!(
            e.positive::<u64>("N", "n >= 1").unwrap_err().to_string(),
            r#"N="0" is invalid: expected n >= 1"#
        );
        assert_eq!(e.boolean("T"), Ok(Some(true)));
        assert!(e.boolean("F").is_err());
        assert_eq!(e.parsed::<f64>("M", "a number"), Ok(Some(12.0)));
    }
}
