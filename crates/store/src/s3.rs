//! The S3 adapter (aws-sdk-s3). To be completed.
