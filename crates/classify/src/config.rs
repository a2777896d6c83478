//! Typed configuration, read once at cold start so that a bad deploy fails at init.

use master_csv::Layout;
use store::cas::RetryPolicy;

use crate::wire::WireFormat;

/// What the classify core needs, independent of where it runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where masters, labeled parts and watermarks live (`CALLTYPE_PREFIX`, default `calltype/`).
    pub layout: Layout,
    /// Partitions looked at per run, today included (`CALLTYPE_LOOKBACK_DAYS`, default 3).
    pub lookback_days: u32,
    /// Append the transcript as the last column of labeled parts
    /// (`CALLTYPE_INCLUDE_TRANSCRIPT`, default false).
    pub include_transcript: bool,
    /// Texts handed to the classifier per call (default 256).
    pub chunk_texts: usize,
    /// Master bytes labeled per part, at most (`CALLTYPE_MAX_PART_BYTES`, default 16 MiB);
    /// a single record longer than this still makes one part.
    pub max_part_bytes: u64,
    /// Compare-and-swap retries of the watermark.
    pub cas: RetryPolicy,
    /// No new range is started after this instant (`main` sets it from the Lambda deadline);
    /// what is left waits for the next run. `None`: no limit.
    pub deadline: Option<std::time::Instant>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            layout: Layout::default(),
            lookback_days: 3,
            include_transcript: false,
            chunk_texts: 256,
            max_part_bytes: 16 * 1024 * 1024,
            cas: RetryPolicy::default(),
            deadline: None,
        }
    }
}

/// Which classifier adapter the Lambda uses (`CALLTYPE_MODE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// A SageMaker real-time endpoint.
    Endpoint(EndpointSettings),
}

/// The endpoint adapter's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointSettings {
    /// `CALLTYPE_ENDPOINT_NAME` (required in endpoint mode).
    pub endpoint_name: String,
    /// `CALLTYPE_ENDPOINT_FORMAT`: `json` (default) or `jsonlines`.
    pub format: WireFormat,
    /// `CALLTYPE_MAX_BATCH_TEXTS`: texts per request (default 16).
    pub max_batch_texts: usize,
    /// `CALLTYPE_MAX_IN_FLIGHT`: requests at once (default 4).
    pub max_in_flight: usize,
}

impl EndpointSettings {
    /// The adapter options these settings make, with the adapter's default retry policy.
    pub fn options(&self) -> crate::EndpointOptions {
        let mut o = crate::EndpointOptions::new(self.endpoint_name.clone(), self.format);
        o.max_batch_texts = self.max_batch_texts;
        o.max_in_flight = self.max_in_flight;
        o
    }
}

/// The classify Lambda's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The data bucket (`CALLTYPE_BUCKET`, required).
    pub bucket: String,
    pub settings: Settings,
    pub mode: Mode,
}

/// A missing or malformed environment variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is required")]
    Missing(&'static str),
    #[error("{var}={value:?} is invalid: expected {expected}")]
    Invalid {
        var: &'static str,
        value: String,
        expected: &'static str,
    },
}

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads the configuration through `var` (the environment, or a map in tests).
    /// Empty values count as unset.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |k: &str| {
            var(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let bucket = get("CALLTYPE_BUCKET").ok_or(ConfigError::Missing("CALLTYPE_BUCKET"))?;
        let mut settings = Settings::default();
        if let Some(p) = get("CALLTYPE_PREFIX") {
            settings.layout = Layout::new(&p);
        }
        if let Some(v) = get("CALLTYPE_LOOKBACK_DAYS") {
            settings.lookback_days =
                positive(&v, "CALLTYPE_LOOKBACK_DAYS", "a whole number of days >= 1")?;
        }
        if let Some(v) = get("CALLTYPE_INCLUDE_TRANSCRIPT") {
            settings.include_transcript = boolean(&v, "CALLTYPE_INCLUDE_TRANSCRIPT")?;
        }
        if let Some(v) = get("CALLTYPE_MAX_PART_BYTES") {
            settings.max_part_bytes =
                positive(&v, "CALLTYPE_MAX_PART_BYTES", "a number of bytes >= 1")?;
        }
        let mode = get("CALLTYPE_MODE").unwrap_or_else(|| "endpoint".into());
        let mode = match mode.to_ascii_lowercase().as_str() {
            "endpoint" => {
                let endpoint_name = get("CALLTYPE_ENDPOINT_NAME")
                    .ok_or(ConfigError::Missing("CALLTYPE_ENDPOINT_NAME"))?;
                let format = match get("CALLTYPE_ENDPOINT_FORMAT") {
                    None => WireFormat::Json,
                    Some(v) => v.parse().map_err(|_| ConfigError::Invalid {
                        var: "CALLTYPE_ENDPOINT_FORMAT",
                        value: v,
                        expected: "json or jsonlines",
                    })?,
                };
                let max_batch_texts = match get("CALLTYPE_MAX_BATCH_TEXTS") {
                    None => 16,
                    Some(v) => positive(&v, "CALLTYPE_MAX_BATCH_TEXTS", "a number >= 1")?,
                };
                let max_in_flight = match get("CALLTYPE_MAX_IN_FLIGHT") {
                    None => 4,
                    Some(v) => positive(&v, "CALLTYPE_MAX_IN_FLIGHT", "a number >= 1")?,
                };
                Mode::Endpoint(EndpointSettings {
                    endpoint_name,
                    format,
                    max_batch_texts,
                    max_in_flight,
                })
            }
            "transform" => {
                return Err(ConfigError::Invalid {
                    var: "CALLTYPE_MODE",
                    value: mode,
                    expected: "endpoint (batch transform is not implemented yet)",
                })
            }
            _ => {
                return Err(ConfigError::Invalid {
                    var: "CALLTYPE_MODE",
                    value: mode,
                    expected: "endpoint",
                })
            }
        };
        Ok(Config {
            bucket,
            settings,
            mode,
        })
    }
}

fn positive<T>(v: &str, var: &'static str, expected: &'static str) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + Default,
{
    match v.parse::<T>() {
        Ok(n) if n > T::default() => Ok(n),
        _ => Err(ConfigError::Invalid {
            var,
            value: v.to_string(),
            expected,
        }),
    }
}

fn boolean(v: &str, var: &'static str) -> Result<bool, ConfigError> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(ConfigError::Invalid {
            var,
            value: v.to_string(),
            expected: "true or false",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn it_reads_defaults() {
        let c = cfg(&[("CALLTYPE_BUCKET", "b"), ("CALLTYPE_ENDPOINT_NAME", "ep")]).unwrap();
        assert_eq!(c.bucket, "b");
        assert_eq!(c.settings.layout.prefix(), "calltype/");
        assert_eq!(c.settings.lookback_days, 3);
        assert!(!c.settings.include_transcript);
        let Mode::Endpoint(e) = c.mode;
        assert_eq!(e.endpoint_name, "ep");
        assert_eq!(e.format, WireFormat::Json);
        assert_eq!((e.max_batch_texts, e.max_in_flight), (16, 4));
    }

    #[test]
    fn it_reads_every_variable() {
        let c = cfg(&[
            ("CALLTYPE_BUCKET", "b"),
            ("CALLTYPE_PREFIX", "x/y"),
            ("CALLTYPE_LOOKBACK_DAYS", "7"),
            ("CALLTYPE_MODE", "Endpoint"),
            ("CALLTYPE_ENDPOINT_NAME", "ep"),
            ("CALLTYPE_ENDPOINT_FORMAT", "jsonlines"),
            ("CALLTYPE_MAX_BATCH_TEXTS", "8"),
            ("CALLTYPE_MAX_IN_FLIGHT", "2"),
            ("CALLTYPE_INCLUDE_TRANSCRIPT", "true"),
            ("CALLTYPE_MAX_PART_BYTES", "1000"),
        ])
        .unwrap();
        assert_eq!(c.settings.layout.prefix(), "x/y/");
        assert_eq!(c.settings.lookback_days, 7);
        assert!(c.settings.include_transcript);
        assert_eq!(c.settings.max_part_bytes, 1000);
        let Mode::Endpoint(e) = c.mode;
        assert_eq!(e.format, WireFormat::JsonLines);
        assert_eq!((e.max_batch_texts, e.max_in_flight), (8, 2));
        assert_eq!(e.options().max_batch_texts, 8);
    }

    #[test]
    fn it_fails_without_bucket_or_endpoint() {
        assert_eq!(
            cfg(&[]).unwrap_err(),
            ConfigError::Missing("CALLTYPE_BUCKET")
        );
        assert_eq!(
            cfg(&[("CALLTYPE_BUCKET", "b")]).unwrap_err(),
            ConfigError::Missing("CALLTYPE_ENDPOINT_NAME")
        );
    }

    #[test]
    fn it_rejects_bad_values() {
        let base = [("CALLTYPE_BUCKET", "b"), ("CALLTYPE_ENDPOINT_NAME", "ep")];
        for (k, v) in [
            ("CALLTYPE_MODE", "local"),
            ("CALLTYPE_MODE", "transform"),
            ("CALLTYPE_ENDPOINT_FORMAT", "csv"),
            ("CALLTYPE_LOOKBACK_DAYS", "0"),
            ("CALLTYPE_LOOKBACK_DAYS", "-1"),
            ("CALLTYPE_MAX_BATCH_TEXTS", "many"),
            ("CALLTYPE_MAX_IN_FLIGHT", "0"),
            ("CALLTYPE_INCLUDE_TRANSCRIPT", "maybe"),
        ] {
            let mut vars = base.to_vec();
            vars.push((k, v));
            match cfg(&vars) {
                Err(ConfigError::Invalid { var, .. }) => assert_eq!(var, k),
                other => panic!("{k}={v}: {other:?}"),
            }
        }
        let err = cfg(&[("CALLTYPE_BUCKET", "b"), ("CALLTYPE_MODE", "transform")]).unwrap_err();
        assert!(err.to_string().contains("not implemented"));
    }
}
