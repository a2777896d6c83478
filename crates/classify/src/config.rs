//! Typed configuration, read once at cold start so that a bad deploy fails at init.

use std::sync::Arc;
use std::time::Instant;

use master_csv::Layout;
use store::cas::RetryPolicy;

use crate::embedded::{lambda_threads, ModelSource};
use crate::wire::WireFormat;

/// What the classify core needs, independent of where it runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where masters, labeled parts and watermarks live (`CALLTYPE_PREFIX`, default `calltype/`).
    pub layout: Layout,
    /// Partitions looked at in every run, today included (`CALLTYPE_LOOKBACK_DAYS`, default
    /// 3). Older partitions are looked at when ingest recorded that they grew
    /// ([`master_csv::touched`]), so this only bounds the routine look.
    pub lookback_days: u32,
    /// Look at every partition that has a master, whatever its date (the CLI's default).
    pub every_partition: bool,
    /// Append the transcript as the last column of labeled parts
    /// (`CALLTYPE_INCLUDE_TRANSCRIPT`, default false).
    pub include_transcript: bool,
    /// Texts handed to the classifier per call (default 256).
    pub chunk_texts: usize,
    /// Master bytes labeled per part, at most (`CALLTYPE_MAX_PART_BYTES`, default 16 MiB);
    /// a single record longer than this still makes one part.
    pub max_part_bytes: u64,
    /// Master records labeled per part, at most (`CALLTYPE_MAX_PART_ROWS`, default 5,000).
    /// With a deadline, claims are smaller still: see [`crate::watermark::claim_rows`].
    pub max_part_rows: u64,
    /// Rows per second assumed for sizing a run's first claim, before it has measured any
    /// (default 1: a CPU endpoint labels long calls at about 10 a second).
    pub prior_rows_per_sec: f64,
    /// Compare-and-swap retries of the watermark.
    pub cas: RetryPolicy,
    /// No new range is started after this instant (`main` sets it from the Lambda deadline);
    /// what is left waits for the next run. `None`: no limit.
    pub deadline: Option<std::time::Instant>,
    /// Where the run reads the time that [`Settings::deadline`] is measured against.
    pub clock: Clock,
}

/// The monotonic clock a run reads: the system's, or one a test drives.
#[derive(Clone, Default)]
pub struct Clock(Option<Arc<dyn Fn() -> Instant + Send + Sync>>);

impl Clock {
    /// A clock that answers `now()`; tests use it to make time pass without sleeping.
    pub fn new(now: impl Fn() -> Instant + Send + Sync + 'static) -> Self {
        Self(Some(Arc::new(now)))
    }

    /// The current instant.
    pub fn now(&self) -> Instant {
        match &self.0 {
            Some(f) => f(),
            None => Instant::now(),
        }
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Clock(custom)"
        } else {
            "Clock(system)"
        })
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            layout: Layout::default(),
            lookback_days: 3,
            every_partition: false,
            include_transcript: false,
            chunk_texts: 256,
            max_part_bytes: 16 * 1024 * 1024,
            max_part_rows: 5_000,
            prior_rows_per_sec: 1.0,
            cas: RetryPolicy::default(),
            deadline: None,
            clock: Clock::default(),
        }
    }
}

/// Which classifier adapter the Lambda uses (`CALLTYPE_MODE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// A SageMaker real-time endpoint.
    Endpoint(EndpointSettings),
    /// SageMaker batch transform jobs (see [`crate::transform`]).
    Transform(TransformSettings),
    /// The model inside the function (see [`crate::embedded`]).
    Embedded(EmbeddedSettings),
}

/// Embedded mode's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedSettings {
    /// `CALLTYPE_MODEL_S3_URI` (a `model.tar.gz`) or `CALLTYPE_MODEL_DIR`: exactly one is
    /// required in embedded mode.
    pub model: ModelSource,
    /// Threads to label with: `CALLTYPE_THREADS`, else the vCPUs that
    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` buys ([`lambda_threads`]), else `None` (every core, as
    /// on a laptop).
    pub threads: Option<usize>,
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

/// The batch-transform settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransformSettings {
    /// `CALLTYPE_MODEL_NAME` (required in transform mode): the SageMaker model the jobs run.
    pub model_name: String,
    /// `CALLTYPE_TRANSFORM_INSTANCE_TYPE` (default `ml.m5.large`).
    pub instance_type: String,
    /// `CALLTYPE_TRANSFORM_JOB_PREFIX` (default `calltype-`): job names start with it, so
    /// that IAM can scope the jobs. Letters, digits and `-`, starting with a letter or digit,
    /// at most [`TransformSettings::MAX_JOB_PREFIX`] characters.
    pub job_prefix: String,
    /// `CALLTYPE_TRANSFORM_MAX_ATTEMPTS` (default 3, at most 20): jobs started per byte range
    /// before its failure is reported as an error. Raising it retries a range that gave up.
    pub max_attempts: u32,
    /// `CALLTYPE_TRANSFORM_MAX_PAYLOAD_MB` (default 6, at most 100): the jobs' `MaxPayloadInMB`.
    /// A text longer than one request is cut to its head and tail in the job's input.
    pub max_payload_mb: u32,
}

impl TransformSettings {
    /// The longest job prefix: job names are at most 63 characters and the rest of a name
    /// takes 17 (see [`crate::transform::job_name`]).
    pub const MAX_JOB_PREFIX: usize = 46;
    /// The most attempts per range (job names keep two digits for it).
    pub const MAX_ATTEMPTS: u32 = 20;

    /// The defaults for jobs running `model_name`.
    pub fn new(model_name: impl Into<String>) -> Self {
        Self {
            model_name: model_name.into(),
            instance_type: "ml.m5.large".into(),
            job_prefix: "calltype-".into(),
            max_attempts: 3,
            max_payload_mb: 6,
        }
    }
}

/// The classify Lambda's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The data bucket (`CALLTYPE_BUCKET`, required).
    pub bucket: String,
    /// `CALLTYPE_LOCAL_DIR`: use this directory as the bucket instead of S3 (local runs with
    /// `cargo lambda watch`, e.g. `make invoke-classify`; never set in AWS).
    pub local_dir: Option<std::path::PathBuf>,
    pub settings: Settings,
    pub mode: Mode,
}

/// A setting that is missing or does not parse (the Lambda fails at init with it).
pub use env_config::EnvError as ConfigError;

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads the configuration through `var` (the environment, or a map in tests). Values
    /// are trimmed and empty ones count as unset ([`env_config`]).
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = env_config::Env::from_lookup(var);
        let bucket = env.required("CALLTYPE_BUCKET")?;
        let mut settings = Settings::default();
        if let Some(p) = env.get("CALLTYPE_PREFIX") {
            settings.layout = Layout::new(&p);
        }
        if let Some(v) = env.positive("CALLTYPE_LOOKBACK_DAYS", "a whole number of days >= 1")? {
            settings.lookback_days = v;
        }
        if let Some(v) = env.boolean("CALLTYPE_INCLUDE_TRANSCRIPT")? {
            settings.include_transcript = v;
        }
        if let Some(v) = env.positive("CALLTYPE_MAX_PART_BYTES", "a number of bytes >= 1")? {
            settings.max_part_bytes = v;
        }
        if let Some(v) = env.positive("CALLTYPE_MAX_PART_ROWS", "a number of rows >= 1")? {
            settings.max_part_rows = v;
        }
        let mode = env
            .get("CALLTYPE_MODE")
            .unwrap_or_else(|| "endpoint".into());
        let mode = match mode.to_ascii_lowercase().as_str() {
            "endpoint" => Mode::Endpoint(EndpointSettings {
                endpoint_name: env.required("CALLTYPE_ENDPOINT_NAME")?,
                format: env
                    .parsed("CALLTYPE_ENDPOINT_FORMAT", "json or jsonlines")?
                    .unwrap_or(WireFormat::Json),
                max_batch_texts: env
                    .positive("CALLTYPE_MAX_BATCH_TEXTS", "a number >= 1")?
                    .unwrap_or(16),
                max_in_flight: env
                    .positive("CALLTYPE_MAX_IN_FLIGHT", "a number >= 1")?
                    .unwrap_or(4),
            }),
            "transform" => {
                let mut t = TransformSettings::new(env.required("CALLTYPE_MODEL_NAME")?);
                if let Some(v) = env.get("CALLTYPE_TRANSFORM_INSTANCE_TYPE") {
                    t.instance_type = v;
                }
                let prefix = env.parsed_with(
                    "CALLTYPE_TRANSFORM_JOB_PREFIX",
                    "at most 46 letters, digits or '-', starting with a letter or digit",
                    |v| job_prefix_ok(v).then(|| v.to_string()).ok_or(()),
                )?;
                if let Some(v) = prefix {
                    t.job_prefix = v;
                }
                let in_range = |max: u32| {
                    move |v: &str| match v.parse::<u32>() {
                        Ok(n) if (1..=max).contains(&n) => Ok(n),
                        _ => Err(()),
                    }
                };
                let max = TransformSettings::MAX_ATTEMPTS;
                let attempts =
                    env.parsed_with("CALLTYPE_TRANSFORM_MAX_ATTEMPTS", "1 to 20", in_range(max))?;
                if let Some(v) = attempts {
                    t.max_attempts = v;
                }
                let payload = env.parsed_with(
                    "CALLTYPE_TRANSFORM_MAX_PAYLOAD_MB",
                    "1 to 100",
                    in_range(100),
                )?;
                if let Some(v) = payload {
                    t.max_payload_mb = v;
                }
                Mode::Transform(t)
            }
            "embedded" => {
                let uri = env.parsed_with(
                    "CALLTYPE_MODEL_S3_URI",
                    "s3://BUCKET/KEY of a model.tar.gz",
                    |v| ModelSource::parse_s3_uri(v).ok_or(()),
                )?;
                let model = match (uri, env.get("CALLTYPE_MODEL_DIR")) {
                    (Some(source), None) => source,
                    (None, Some(dir)) => ModelSource::Dir(dir.into()),
                    (Some(_), Some(dir)) => {
                        return Err(ConfigError::Invalid {
                            var: "CALLTYPE_MODEL_DIR",
                            value: dir,
                            expected: "unset when CALLTYPE_MODEL_S3_URI is set (one model)",
                        })
                    }
                    (None, None) => return Err(ConfigError::Missing("CALLTYPE_MODEL_S3_URI")),
                };
                let threads = match env.positive("CALLTYPE_THREADS", "a number >= 1")? {
                    Some(n) => Some(n),
                    None => env
                        .positive("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "megabytes >= 1")?
                        .map(lambda_threads),
                };
                Mode::Embedded(EmbeddedSettings { model, threads })
            }
            _ => {
                return Err(ConfigError::Invalid {
                    var: "CALLTYPE_MODE",
                    value: mode,
                    expected: "endpoint, transform or embedded",
                })
            }
        };
        Ok(Config {
            bucket,
            local_dir: env.get("CALLTYPE_LOCAL_DIR").map(Into::into),
            settings,
            mode,
        })
    }
}

/// A prefix of SageMaker job names (`^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$` once completed).
fn job_prefix_ok(v: &str) -> bool {
    v.len() <= TransformSettings::MAX_JOB_PREFIX
        && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && v.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
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
        assert_eq!(c.local_dir, None);
        let Mode::Endpoint(e) = c.mode else {
            panic!("endpoint mode is the default")
        };
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
            ("CALLTYPE_MAX_PART_ROWS", "200"),
            ("CALLTYPE_LOCAL_DIR", "/tmp/bucket"),
        ])
        .unwrap();
        assert_eq!(c.local_dir, Some("/tmp/bucket".into()));
        assert_eq!(c.settings.layout.prefix(), "x/y/");
        assert_eq!(c.settings.lookback_days, 7);
        assert!(c.settings.include_transcript);
        assert_eq!(c.settings.max_part_bytes, 1000);
        assert_eq!(c.settings.max_part_rows, 200);
        let Mode::Endpoint(e) = c.mode else {
            panic!("not endpoint mode")
        };
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
            ("CALLTYPE_ENDPOINT_FORMAT", "csv"),
            ("CALLTYPE_LOOKBACK_DAYS", "0"),
            ("CALLTYPE_LOOKBACK_DAYS", "-1"),
            ("CALLTYPE_MAX_BATCH_TEXTS", "many"),
            ("CALLTYPE_MAX_IN_FLIGHT", "0"),
            ("CALLTYPE_INCLUDE_TRANSCRIPT", "maybe"),
            ("CALLTYPE_MAX_PART_ROWS", "0"),
        ] {
            let mut vars = base.to_vec();
            vars.push((k, v));
            match cfg(&vars) {
                Err(ConfigError::Invalid { var, .. }) => assert_eq!(var, k),
                other => panic!("{k}={v}: {other:?}"),
            }
        }
    }

    #[test]
    fn it_reads_transform_mode() {
        let base = [
            ("CALLTYPE_BUCKET", "b"),
            ("CALLTYPE_MODE", "transform"),
            ("CALLTYPE_MODEL_NAME", "Model-abc"),
        ];
        let c = cfg(&base).unwrap();
        let Mode::Transform(t) = c.mode else {
            panic!("not transform mode")
        };
        assert_eq!(t, TransformSettings::new("Model-abc"));
        assert_eq!(
            (t.instance_type.as_str(), t.job_prefix.as_str()),
            ("ml.m5.large", "calltype-")
        );
        assert_eq!((t.max_attempts, t.max_payload_mb), (3, 6));

        let mut all = base.to_vec();
        all.extend([
            ("CALLTYPE_TRANSFORM_INSTANCE_TYPE", "ml.c5.xlarge"),
            ("CALLTYPE_TRANSFORM_JOB_PREFIX", "my-stack-"),
            ("CALLTYPE_TRANSFORM_MAX_ATTEMPTS", "5"),
            ("CALLTYPE_TRANSFORM_MAX_PAYLOAD_MB", "2"),
        ]);
        let Mode::Transform(t) = cfg(&all).unwrap().mode else {
            panic!("transform mode")
        };
        assert_eq!(t.instance_type, "ml.c5.xlarge");
        assert_eq!(t.job_prefix, "my-stack-");
        assert_eq!((t.max_attempts, t.max_payload_mb), (5, 2));
    }

    #[test]
    fn it_reads_embedded_mode() {
        let c = cfg(&[
            ("CALLTYPE_BUCKET", "b"),
            ("CALLTYPE_MODE", "embedded"),
            ("CALLTYPE_MODEL_S3_URI", "s3://art/models/v1/model.tar.gz"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "3538"),
        ])
        .unwrap();
        let Mode::Embedded(e) = c.mode else {
            panic!("not embedded mode")
        };
        assert_eq!(
            e.model,
            ModelSource::S3 {
                bucket: "art".into(),
                key: "models/v1/model.tar.gz".into()
            }
        );
        assert_eq!(e.threads, Some(2), "3,538 MB buys two vCPUs");

        let c = cfg(&[
            ("CALLTYPE_BUCKET", "b"),
            ("CALLTYPE_MODE", "embedded"),
            ("CALLTYPE_MODEL_DIR", "/opt/model"),
            ("CALLTYPE_THREADS", "3"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "10240"),
        ])
        .unwrap();
        assert_eq!(
            c.mode,
            Mode::Embedded(EmbeddedSettings {
                model: ModelSource::Dir("/opt/model".into()),
                threads: Some(3),
            })
        );
        let local = cfg(&[
            ("CALLTYPE_BUCKET", "b"),
            ("CALLTYPE_MODE", "embedded"),
            ("CALLTYPE_MODEL_DIR", "m"),
        ])
        .unwrap();
        let Mode::Embedded(e) = local.mode else {
            panic!("embedded")
        };
        assert_eq!(e.threads, None, "outside Lambda: every core");
    }

    #[test]
    fn it_rejects_bad_embedded_values() {
        let base = [("CALLTYPE_BUCKET", "b"), ("CALLTYPE_MODE", "embedded")];
        assert_eq!(
            cfg(&base).unwrap_err(),
            ConfigError::Missing("CALLTYPE_MODEL_S3_URI")
        );
        for extra in [
            vec![("CALLTYPE_MODEL_S3_URI", "art/model.tar.gz")],
            vec![("CALLTYPE_MODEL_S3_URI", "s3://art/")],
            vec![
                ("CALLTYPE_MODEL_S3_URI", "s3://art/model.tar.gz"),
                ("CALLTYPE_MODEL_DIR", "/opt/model"),
            ],
            vec![("CALLTYPE_MODEL_DIR", "m"), ("CALLTYPE_THREADS", "0")],
            vec![
                ("CALLTYPE_MODEL_DIR", "m"),
                ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "lots"),
            ],
        ] {
            let mut vars = base.to_vec();
            vars.extend(extra.iter().copied());
            assert!(
                matches!(cfg(&vars), Err(ConfigError::Invalid { .. })),
                "{extra:?}"
            );
        }
    }

    #[test]
    fn it_rejects_bad_transform_values() {
        assert_eq!(
            cfg(&[("CALLTYPE_BUCKET", "b"), ("CALLTYPE_MODE", "transform")]).unwrap_err(),
            ConfigError::Missing("CALLTYPE_MODEL_NAME")
        );
        let long = "a".repeat(TransformSettings::MAX_JOB_PREFIX + 1);
        for (k, v) in [
            ("CALLTYPE_TRANSFORM_JOB_PREFIX", "-stack"),
            ("CALLTYPE_TRANSFORM_JOB_PREFIX", "my_stack"),
            ("CALLTYPE_TRANSFORM_JOB_PREFIX", long.as_str()),
            ("CALLTYPE_TRANSFORM_MAX_ATTEMPTS", "0"),
            ("CALLTYPE_TRANSFORM_MAX_ATTEMPTS", "21"),
            ("CALLTYPE_TRANSFORM_MAX_PAYLOAD_MB", "0"),
            ("CALLTYPE_TRANSFORM_MAX_PAYLOAD_MB", "101"),
        ] {
            let vars = [
                ("CALLTYPE_BUCKET", "b"),
                ("CALLTYPE_MODE", "transform"),
                ("CALLTYPE_MODEL_NAME", "m"),
                (k, v),
            ];
            match cfg(&vars) {
                Err(ConfigError::Invalid { var, .. }) => assert_eq!(var, k),
                other => panic!("{k}={v}: {other:?}"),
            }
        }
        // The longest prefix the template can pass (a 45-character stack name and `-`) fits.
        let stack = format!("{}-", "s".repeat(45));
        let vars = [
            ("CALLTYPE_BUCKET", "b"),
            ("CALLTYPE_MODE", "transform"),
            ("CALLTYPE_MODEL_NAME", "m"),
            ("CALLTYPE_TRANSFORM_JOB_PREFIX", stack.as_str()),
        ];
        assert!(cfg(&vars).is_ok());
    }
}
