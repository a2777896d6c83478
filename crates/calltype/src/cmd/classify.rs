//! `calltype classify --store DIR|s3://BUCKET (--model DIR | --endpoint NAME)`: the classify
//! Lambda's logic, with the model in-process (the embedded default) or a SageMaker endpoint.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use chrono::NaiveDate;
use classify::{
    Classifier, ClassifyError, EndpointClassifier, EndpointOptions, Label, RunReport, WireFormat,
};
use indicatif::{ProgressBar, ProgressStyle};
use master_csv::Layout;
use store::ObjectStore;

use crate::target::{with_store, AsyncStoreFn, StoreArg};

#[derive(clap::Args)]
pub struct Args {
    /// The bucket: a local directory (the embedded default) or s3://BUCKET.
    #[arg(long, default_value = "local-bucket")]
    store: StoreArg,
    /// S3 endpoint URL (for moto or another S3-compatible server).
    #[arg(long, env = "AWS_ENDPOINT_URL_S3")]
    endpoint_url: Option<String>,
    /// Output prefix for masters, labeled parts and state.
    #[arg(long, default_value = "calltype/")]
    prefix: String,
    /// A trained model directory, run in-process.
    #[arg(
        long,
        conflicts_with = "endpoint",
        required_unless_present = "endpoint"
    )]
    model: Option<PathBuf>,
    /// A SageMaker endpoint name, called through the SageMaker runtime API.
    #[arg(long)]
    endpoint: Option<String>,
    /// SageMaker runtime endpoint URL (e.g. a local `calltype serve`: http://127.0.0.1:8080).
    #[arg(long, env = "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME")]
    sagemaker_endpoint_url: Option<String>,
    /// Wire format for the endpoint: json (Hugging Face toolkit) or jsonlines.
    #[arg(long, default_value = "json")]
    format: WireFormat,
    /// Partitions looked at: today and the days before it.
    #[arg(long, default_value_t = 3)]
    lookback_days: u32,
    /// Look at every partition there is, whatever its date.
    #[arg(long, conflicts_with = "lookback_days")]
    all_dates: bool,
    /// "Today" for the look-back window (YYYY-MM-DD, default: today in UTC).
    #[arg(long)]
    today: Option<NaiveDate>,
    /// Also write the transcript as the labeled parts' last column.
    #[arg(long)]
    include_transcript: bool,
}

pub fn run(args: Args) -> Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let report = with_store(&args.store, args.endpoint_url.as_deref(), Run(&args)).await?;
        println!("{}", serde_json::to_string(&report)?);
        if report.failed() {
            bail!(
                "{} partition(s) failed; run again to retry them",
                report.failed_partitions
            );
        }
        Ok(())
    })
}

struct Run<'a>(&'a Args);

impl AsyncStoreFn<RunReport> for Run<'_> {
    async fn call<S: ObjectStore + 'static>(self, store: S) -> Result<RunReport> {
        let args = self.0;
        let layout = Layout::new(&args.prefix);
        let today = args
            .today
            .unwrap_or_else(|| chrono::Utc::now().date_naive());
        let mut settings = classify::Settings {
            layout: layout.clone(),
            lookback_days: args.lookback_days,
            include_transcript: args.include_transcript,
            ..classify::Settings::default()
        };
        if args.all_dates {
            settings.lookback_days = days_back_to_oldest(&store, &layout, today).await?;
        }
        let bar = ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("classify {spinner} {pos} rows labeled {per_sec}")
                .expect("valid template"),
        );
        let report = match (&args.model, &args.endpoint) {
            (Some(dir), _) => {
                let m = InProcess::load(dir)?;
                classify::run(&store, &Counted(m, bar.clone()), &settings, today).await?
            }
            (None, Some(name)) => {
                let conf = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
                let mut b = aws_sdk_sagemakerruntime::config::Builder::from(&conf);
                if let Some(url) = &args.sagemaker_endpoint_url {
                    b = b.endpoint_url(url);
                }
                let client = aws_sdk_sagemakerruntime::Client::from_conf(b.build());
                let e = EndpointClassifier::new(
                    client,
                    EndpointOptions::new(name.clone(), args.format),
                );
                classify::run(&store, &Counted(e, bar.clone()), &settings, today).await?
            }
            (None, None) => bail!("give --model DIR or --endpoint NAME"),
        };
        bar.finish_and_clear();
        Ok(report)
    }
}

/// Look-back that reaches the oldest master partition.
async fn days_back_to_oldest<S: ObjectStore>(
    store: &S,
    layout: &Layout,
    today: NaiveDate,
) -> Result<u32> {
    let mut oldest = today;
    for meta in store.list(&layout.masters_prefix()).await? {
        let date = meta
            .key
            .split("date=")
            .nth(1)
            .and_then(|s| s.get(..10))
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
        if let Some(d) = date {
            oldest = oldest.min(d);
        }
    }
    Ok(u32::try_from((today - oldest).num_days()).unwrap_or(0) + 1)
}

/// The in-process adapter: a trained model, run on the blocking pool.
struct InProcess {
    model: Arc<model::Classifier>,
    name: String,
}

impl InProcess {
    fn load(dir: &std::path::Path) -> Result<Self> {
        let model = model::Classifier::load(dir)
            .with_context(|| format!("cannot load the model in {}", dir.display()))?;
        let name = dir
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "model".into());
        Ok(Self {
            model: Arc::new(model),
            name,
        })
    }
}

impl Classifier for InProcess {
    fn name(&self) -> &str {
        &self.name
    }

    async fn classify(&self, texts: &[String]) -> Result<Vec<Label>, ClassifyError> {
        let model = self.model.clone();
        let texts = texts.to_vec();
        tokio::task::spawn_blocking(move || {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let labels = model.labels().to_vec();
            model
                .predict(&refs)
                .map(|ps| {
                    ps.into_iter()
                        .map(|p| Label {
                            label: p.label,
                            score: p.score,
                            scores: Some(labels.iter().cloned().zip(p.scores).collect()),
                        })
                        .collect()
                })
                .map_err(|e| ClassifyError::Permanent(format!("model: {e}")))
        })
        .await
        .map_err(|e| ClassifyError::Permanent(format!("model task failed: {e}")))?
    }
}

/// Counts labeled rows on the progress bar.
struct Counted<C>(C, ProgressBar);

impl<C: Classifier> Classifier for Counted<C> {
    fn name(&self) -> &str {
        self.0.name()
    }

    async fn classify(&self, texts: &[String]) -> Result<Vec<Label>, ClassifyError> {
        let out = self.0.classify(texts).await?;
        self.1.inc(out.len() as u64);
        Ok(out)
    }
}
