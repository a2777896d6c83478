//! Typed configuration, read once at cold start so a bad deploy fails at init.

use contact_lens::Participants;
use master_csv::Layout;

/// Which copy of a Contact Lens analysis is ingested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Copy {
    /// The redacted copy (the default: no PII leaves Contact Lens' redaction).
    Redacted,
    Raw,
}

impl std::str::FromStr for Copy {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "redacted" => Ok(Copy::Redacted),
            "raw" => Ok(Copy::Raw),
            other => Err(ConfigError::Invalid {
                var: "CALLTYPE_COPY",
                value: other.to_string(),
                expected: "redacted or raw",
            }),
        }
    }
}

/// What the ingest core needs, independent of where it runs.
#[derive(Debug, Clone)]
pub struct Settings {
    pub layout: Layout,
    pub copy: Copy,
    pub participants: Participants,
    /// Files larger than this are quarantined unread.
    pub max_file_bytes: u64,
    /// Source files read at once.
    pub concurrency: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            layout: Layout::default(),
            copy: Copy::Redacted,
            participants: Participants::All,
            max_file_bytes: 20 * 1024 * 1024,
            concurrency: 8,
        }
    }
}

/// The Lambda's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The data bucket (`CALLTYPE_BUCKET`, required): events naming other buckets are ignored.
    pub bucket: String,
    /// `CALLTYPE_LOCAL_DIR`: use this directory as the bucket instead of S3 (local runs with
    /// `cargo lambda watch`; never set in AWS).
    pub local_dir: Option<std::path::PathBuf>,
    pub settings: Settings,
}

/// A setting that is missing or does not parse (the Lambda fails at init with it).
pub use env_config::EnvError as ConfigError;

impl Config {
    /// Reads `CALLTYPE_BUCKET`, `CALLTYPE_PREFIX` (default `calltype/`), `CALLTYPE_COPY`
    /// (`redacted`|`raw`), `CALLTYPE_PARTICIPANTS` (`all`|`customer`|`agent`),
    /// `CALLTYPE_MAX_FILE_BYTES` (default 20 MiB), `CALLTYPE_CONCURRENCY` (default 8) and
    /// `CALLTYPE_LOCAL_DIR` (unset: S3).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// As [`Config::from_env`], reading variables through `get` (for tests). Values are
    /// trimmed and empty ones count as unset ([`env_config`]).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = env_config::Env::from_lookup(get);
        let bucket = env.required("CALLTYPE_BUCKET")?;
        let mut s = Settings::default();
        if let Some(p) = env.get("CALLTYPE_PREFIX") {
            s.layout = Layout::new(&p);
        }
        if let Some(c) = env.get("CALLTYPE_COPY") {
            s.copy = c.parse()?;
        }
        if let Some(p) = env.parsed("CALLTYPE_PARTICIPANTS", "all, customer or agent")? {
            s.participants = p;
        }
        if let Some(n) = env.positive("CALLTYPE_MAX_FILE_BYTES", "a positive integer")? {
            s.max_file_bytes = n;
        }
        if let Some(n) = env.positive("CALLTYPE_CONCURRENCY", "a positive integer")? {
            s.concurrency = n;
        }
        Ok(Config {
            bucket,
            local_dir: env.get("CALLTYPE_LOCAL_DIR").map(Into::into),
            settings: s,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn it_fails_at_init_without_a_bucket() {
        let err = Config::from_lookup(lookup(&[])).unwrap_err();
        assert_eq!(err.to_string(), "CALLTYPE_BUCKET is not set");
    }

    #[test]
    fn it_fails_at_init_on_a_bad_copy_or_size() {
        let err = Config::from_lookup(lookup(&[
            ("CALLTYPE_BUCKET", "b"),
            ("CALLTYPE_COPY", "both"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("CALLTYPE_COPY"), "{err}");
        let err = Config::from_lookup(lookup(&[
            ("CALLTYPE_BUCKET", "b"),
            ("CALLTYPE_MAX_FILE_BYTES", "0"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("positive"), "{err}");
    }

    #[test]
    fn it_reads_every_setting() {
        let c = Config::from_lookup(lookup(&[
            ("CALLTYPE_BUCKET", "data"),
            ("CALLTYPE_PREFIX", "out"),
            ("CALLTYPE_COPY", "raw"),
            ("CALLTYPE_PARTICIPANTS", "customer"),
            ("CALLTYPE_MAX_FILE_BYTES", "1000"),
        ]))
        .unwrap();
        assert_eq!(c.bucket, "data");
        assert_eq!(
            c.settings.layout.master("2026-01-02"),
            "out/transcripts/date=2026-01-02/transcripts.csv"
        );
        assert_eq!(c.settings.copy, Copy::Raw);
        assert_eq!(c.settings.participants, Participants::Customer);
        assert_eq!(c.settings.max_file_bytes, 1000);
    }
}
