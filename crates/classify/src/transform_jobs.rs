//! [`SageMakerJobs`]: the batch-transform control plane ([`TransformJobs`]) over
//! aws-sdk-sagemaker `CreateTransformJob` and `DescribeTransformJob`.
//!
//! Every job reads one JSON Lines object (`S3Prefix` on the object's key, `application/jsonlines`,
//! `SplitType=Line`), sends `BatchStrategy=MultiRecord` requests of at most `MaxPayloadInMB`,
//! and writes `<input basename>.out` under its output path (`Accept: application/jsonlines`,
//! `AssembleWith=Line`) on one instance of the configured type. The container's
//! `/execution-parameters` answer decides how many requests run at once.
//!
//! A name already in use counts as [`Created::AlreadyExists`] (SageMaker answers
//! `ResourceInUse`, or a validation error saying the name exists), and a job that is not found
//! describes as `None` (`ResourceNotFound`, or the validation error "Could not find job").
//! Throttling, 5xx, quota (`ResourceLimitExceeded`) and network failures are
//! [`ClassifyError::Transient`]; everything else is [`ClassifyError::Permanent`].

use aws_sdk_sagemaker::config::http::HttpResponse;
use aws_sdk_sagemaker::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sagemaker::operation::create_transform_job::CreateTransformJobError;
use aws_sdk_sagemaker::operation::describe_transform_job::DescribeTransformJobError;
use aws_sdk_sagemaker::types::{
    AssemblyType, BatchStrategy, S3DataType, SplitType, TransformDataSource, TransformInput,
    TransformInstanceType, TransformJobStatus, TransformOutput, TransformResources,
    TransformS3DataSource,
};
use aws_sdk_sagemaker::Client;

use crate::config::TransformSettings;
use crate::transform::{Created, JobRequest, JobState, JobStatus, TransformJobs};
use crate::wire::WireFormat;
use crate::ClassifyError;

/// The control plane over a SageMaker client. Build the client once (in `main`) and share it.
#[derive(Debug, Clone)]
pub struct SageMakerJobs {
    client: Client,
    bucket: String,
    settings: TransformSettings,
}

impl SageMakerJobs {
    /// Jobs that read and write `bucket` and run `settings.model_name`.
    pub fn new(client: Client, bucket: impl Into<String>, settings: TransformSettings) -> Self {
        Self {
            client,
            bucket: bucket.into(),
            settings,
        }
    }

    fn uri(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    /// The key of `uri` in our bucket; another bucket's URI stays whole (it never matches).
    fn key_of(&self, uri: &str) -> String {
        uri.strip_prefix(&format!("s3://{}/", self.bucket))
            .unwrap_or(uri)
            .to_string()
    }
}

impl TransformJobs for SageMakerJobs {
    fn model(&self) -> &str {
        &self.settings.model_name
    }

    async fn create(&self, job: &JobRequest) -> Result<Created, ClassifyError> {
        let format = WireFormat::JsonLines;
        let input = TransformInput::builder()
            .data_source(
                TransformDataSource::builder()
                    .s3_data_source(
                        TransformS3DataSource::builder()
                            .s3_data_type(S3DataType::S3Prefix)
                            .s3_uri(self.uri(&job.input_key))
                            .build(),
                    )
                    .build(),
            )
            .content_type(format.content_type())
            .split_type(SplitType::Line)
            .build();
        let output = TransformOutput::builder()
            .s3_output_path(self.uri(job.output_prefix.trim_end_matches('/')))
            .accept(format.accept())
            .assemble_with(AssemblyType::Line)
            .build();
        let resources = TransformResources::builder()
            .instance_type(TransformInstanceType::from(
                self.settings.instance_type.as_str(),
            ))
            .instance_count(1)
            .build();
        let sent = self
            .client
            .create_transform_job()
            .transform_job_name(&job.name)
            .model_name(&self.settings.model_name)
            .batch_strategy(BatchStrategy::MultiRecord)
            .max_payload_in_mb(self.settings.max_payload_mb as i32)
            .transform_input(input)
            .transform_output(output)
            .transform_resources(resources)
            .send()
            .await;
        match sent {
            Ok(_) => Ok(Created::Started),
            Err(SdkError::ServiceError(se))
                if matches!(se.err(), CreateTransformJobError::ResourceInUse(_))
                    || name_taken(se.err()) =>
            {
                Ok(Created::AlreadyExists)
            }
            Err(SdkError::ServiceError(se))
                if matches!(se.err(), CreateTransformJobError::ResourceLimitExceeded(_)) =>
            {
                Err(ClassifyError::Transient(format!(
                    "CreateTransformJob {}: ResourceLimitExceeded: {}",
                    job.name,
                    se.err().message().unwrap_or_default()
                )))
            }
            Err(e) => Err(sdk_error("CreateTransformJob", &job.name, e)),
        }
    }

    async fn describe(&self, name: &str) -> Result<Option<JobStatus>, ClassifyError> {
        let out = match self
            .client
            .describe_transform_job()
            .transform_job_name(name)
            .send()
            .await
        {
            Ok(o) => o,
            Err(SdkError::ServiceError(se))
                if matches!(se.err(), DescribeTransformJobError::ResourceNotFound(_))
                    || not_found(se.err()) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(sdk_error("DescribeTransformJob", name, e)),
        };
        let state = match out.transform_job_status() {
            Some(TransformJobStatus::InProgress) => JobState::InProgress,
            Some(TransformJobStatus::Stopping) => JobState::Stopping,
            Some(TransformJobStatus::Completed) => JobState::Completed,
            Some(TransformJobStatus::Failed) => JobState::Failed,
            Some(TransformJobStatus::Stopped) => JobState::Stopped,
            other => {
                return Err(ClassifyError::Permanent(format!(
                    "DescribeTransformJob {name}: unknown status {other:?}"
                )))
            }
        };
        let input_key = out
            .transform_input()
            .and_then(|i| i.data_source())
            .and_then(|d| d.s3_data_source())
            .and_then(|s| s.s3_uri())
            .map(|u| self.key_of(u));
        Ok(Some(JobStatus {
            state,
            failure_reason: out.failure_reason().map(str::to_string),
            input_key,
        }))
    }
}

/// A validation error saying the job name is taken.
fn name_taken(e: &impl ProvideErrorMetadata) -> bool {
    e.code() == Some("ValidationException")
        && e.message().is_some_and(|m| {
            let m = m.to_ascii_lowercase();
            m.contains("already exist") || m.contains("must be unique")
        })
}

/// A validation error saying there is no such job (what SageMaker answers for unknown names).
fn not_found(e: &impl ProvideErrorMetadata) -> bool {
    e.code() == Some("ValidationException")
        && e.message().is_some_and(|m| {
            let m = m.to_ascii_lowercase();
            m.contains("could not find") || m.contains("not found") || m.contains("does not exist")
        })
}

/// Converts a control-plane failure into a transient or permanent [`ClassifyError`].
fn sdk_error<E>(op: &str, job: &str, err: SdkError<E, HttpResponse>) -> ClassifyError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    ClassifyError::from_sdk(&format!("{op} {job}"), &store_s3::sdk_fault(&err))
}
