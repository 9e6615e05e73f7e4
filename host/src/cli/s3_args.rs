//! The flags of object storage for results, read from the variables Asya's crew end
//! actors read (`ASYA_S3_*`), so a deployment's environment carries over unchanged.
//! With no bucket the end actors write no copies.

use crate::archive::ArchiveConfig;
use clap::Args;

/// Object storage for ended envelopes (`wasya up`).
#[derive(Debug, Clone, Args)]
pub struct S3Args {
    /// Copy each envelope that reaches happy-end or error-end to this S3 bucket, with
    /// Asya's key layout (off the hop's path; the outcome is kept here either way).
    #[arg(long, env = "ASYA_S3_BUCKET")]
    #[arg(help_heading = "Results in object storage")]
    pub s3_bucket: Option<String>,
    /// The bucket of error-end's copies, where it is not --s3-bucket.
    #[arg(long, env = "WASYA_S3_ERRORS_BUCKET")]
    #[arg(help_heading = "Results in object storage")]
    pub s3_errors_bucket: Option<String>,
    /// An S3-compatible endpoint (`http://127.0.0.1:9000`); AWS's when unset.
    #[arg(long, env = "ASYA_S3_ENDPOINT")]
    #[arg(help_heading = "Results in object storage")]
    pub s3_endpoint: Option<String>,
    /// The access key (else AWS_ACCESS_KEY_ID and the usual AWS sources).
    #[arg(long, env = "ASYA_S3_ACCESS_KEY", hide_env_values = true)]
    #[arg(help_heading = "Results in object storage")]
    pub s3_access_key: Option<String>,
    /// The secret key.
    #[arg(long, env = "ASYA_S3_SECRET_KEY", hide_env_values = true)]
    #[arg(help_heading = "Results in object storage")]
    pub s3_secret_key: Option<String>,
    /// The region.
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    #[arg(help_heading = "Results in object storage")]
    pub s3_region: String,
    /// The prefix of happy-end's keys.
    #[arg(long, env = "ASYA_S3_RESULTS_PREFIX", default_value = "happy-asya/")]
    #[arg(help_heading = "Results in object storage")]
    pub s3_results_prefix: String,
    /// The prefix of error-end's keys.
    #[arg(long, env = "ASYA_S3_ERRORS_PREFIX", default_value = "error-asya/")]
    #[arg(help_heading = "Results in object storage")]
    pub s3_errors_prefix: String,
}

impl S3Args {
    /// The configuration, when a bucket is named.
    pub fn config(self) -> Option<ArchiveConfig> {
        let bucket = self.s3_bucket.filter(|bucket| !bucket.is_empty())?;
        let endpoint = self.s3_endpoint.filter(|endpoint| !endpoint.is_empty());
        // Asya's crew: with an endpoint and no keys, MinIO's defaults.
        let default_key = || endpoint.as_ref().map(|_| "minioadmin".to_owned());
        Some(ArchiveConfig {
            bucket,
            errors_bucket: self.s3_errors_bucket.filter(|bucket| !bucket.is_empty()),
            access_key: self.s3_access_key.or_else(default_key),
            secret_key: self.s3_secret_key.or_else(default_key),
            endpoint,
            region: self.s3_region,
            results_prefix: self.s3_results_prefix,
            errors_prefix: self.s3_errors_prefix,
        })
    }
}
