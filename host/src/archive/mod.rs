//! Results kept in object storage: the end actors write each ended envelope to an
//! S3-compatible bucket, as Asya's crew end actors do when `ASYA_S3_*` is set, with
//! Asya's key layout ([`key`]) and body (the envelope as taken, as JSON).
//!
//! The copy is written behind the hop, never on its path: the end actor records the
//! outcome in the node's own store (the data directory's or the pool's) before it acks,
//! then queues the copy here (bounded, [`QUEUE`]) and moves on. A few writers send
//! what is queued ([`WRITERS`] at once), each object tried up to [`TRIES`] times with
//! a growing pause. So a store that is slow or down delays no envelope; what the node
//! promises is the outcome in its own store. The copy is best effort within these
//! bounds: one that fails every try, or finds the queue full, is counted
//! (`wasya_results_archived_total{result="failed"|"dropped"}`) and logged, not kept.

pub mod key;

use crate::envelope::Envelope;
use crate::metrics::metrics;
use crate::records::End;
use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::{Semaphore, mpsc};

/// Copies waiting to be written, at most.
pub const QUEUE: usize = 4096;
/// Copies written at once, at most.
pub const WRITERS: usize = 16;
/// Tries per copy, and the first pause between them (doubling).
pub const TRIES: u32 = 5;
const FIRST_PAUSE: Duration = Duration::from_millis(200);
/// The time one write may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where results and errors go, as Asya's crew reads it from `ASYA_S3_*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveConfig {
    /// The bucket of results (happy-end), and of errors unless `errors_bucket` is set.
    pub bucket: String,
    /// The bucket of errors (error-end), where it differs.
    pub errors_bucket: Option<String>,
    /// An S3-compatible endpoint (`http://127.0.0.1:9000`); AWS's when absent.
    pub endpoint: Option<String>,
    /// The access key; AWS's usual sources when absent.
    pub access_key: Option<String>,
    /// The secret key.
    pub secret_key: Option<String>,
    /// The region (`us-east-1`).
    pub region: String,
    /// The prefix of happy-end's keys (Asya's default: `happy-asya/`).
    pub results_prefix: String,
    /// The prefix of error-end's keys (Asya's default: `error-asya/`).
    pub errors_prefix: String,
}

/// Why object storage could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("object storage for results cannot be used")]
pub struct ArchiveError(#[source] object_store::Error);

/// One copy on its way: the object's key and body, made before the envelope moves
/// into the outcome store, queued once it is kept there.
pub struct ObjectCopy {
    end: End,
    key: String,
    body: bytes::Bytes,
}

/// The end actors' writer to object storage.
pub struct Archive {
    queue: mpsc::Sender<ObjectCopy>,
    config: ArchiveConfig,
    writer: crate::background::Flushed,
}

impl std::fmt::Debug for Archive {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Archive")
            .field("bucket", &self.config.bucket)
            .finish_non_exhaustive()
    }
}

fn store_of(config: &ArchiveConfig, bucket: &str) -> Result<Arc<dyn ObjectStore>, ArchiveError> {
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_region(&config.region);
    if let Some(endpoint) = &config.endpoint {
        builder = builder
            .with_endpoint(endpoint)
            .with_allow_http(endpoint.starts_with("http://"))
            .with_virtual_hosted_style_request(false);
    }
    if let (Some(access), Some(secret)) = (&config.access_key, &config.secret_key) {
        builder = builder
            .with_access_key_id(access)
            .with_secret_access_key(secret);
    }
    Ok(Arc::new(builder.build().map_err(ArchiveError)?))
}

impl Archive {
    /// Starts the writers, on the current tokio runtime.
    pub fn start(config: ArchiveConfig) -> Result<Arc<Archive>, ArchiveError> {
        let results = store_of(&config, &config.bucket)?;
        let errors = match &config.errors_bucket {
            Some(bucket) if *bucket != config.bucket => store_of(&config, bucket)?,
            _ => results.clone(),
        };
        let (queue, copies) = mpsc::channel(QUEUE);
        let writer =
            crate::background::Flushed::spawn(|finish| write_all(results, errors, copies, finish));
        tracing::info!(
            bucket = config.bucket,
            endpoint = config.endpoint.as_deref().unwrap_or("AWS"),
            "ended envelopes are copied to object storage"
        );
        Ok(Arc::new(Archive {
            queue,
            config,
            writer,
        }))
    }

    /// The copy of `envelope`, ended at `end` now.
    pub fn copy_of(&self, end: End, envelope: &Envelope) -> ObjectCopy {
        let prefix = match end {
            End::Happy => &self.config.results_prefix,
            End::Error => &self.config.errors_prefix,
        };
        ObjectCopy {
            end,
            key: key::key_of(prefix, envelope, SystemTime::now()),
            body: body_of(envelope),
        }
    }

    /// Queues `copy` for the writers; never waits (a full queue drops it, counted).
    pub fn queue(&self, copy: ObjectCopy) {
        let end = copy.end;
        if self.queue.try_send(copy).is_err() {
            metrics()
                .results_archived
                .with_label_values(&[end.actor_name(), "dropped"])
                .inc();
        }
    }

    /// Writes what is queued, waiting up to `within`; called once, when the node stops.
    pub async fn flush(&self, within: Duration) {
        if !self.writer.flush(within).await {
            tracing::warn!(
                "copies of results still queued for object storage after {within:?} were not written"
            );
        }
    }
}

/// The object's body: the envelope as the end actor took it, as Asya's end actors
/// write it (indented JSON).
fn body_of(envelope: &Envelope) -> bytes::Bytes {
    serde_json::to_vec_pretty(envelope)
        .map(bytes::Bytes::from)
        .unwrap_or_else(|_| envelope.to_bytes().into())
}

/// Writes copies as they come, [`WRITERS`] at once, until `finish`; then what is
/// still queued.
async fn write_all(
    results: Arc<dyn ObjectStore>,
    errors: Arc<dyn ObjectStore>,
    mut copies: mpsc::Receiver<ObjectCopy>,
    finish: tokio_util::sync::CancellationToken,
) {
    let writers = Arc::new(Semaphore::new(WRITERS));
    loop {
        let copy = tokio::select! {
            biased;
            copy = copies.recv() => copy,
            _ = finish.cancelled() => copies.try_recv().ok(),
        };
        let Some(copy) = copy else {
            break;
        };
        let Ok(permit) = writers.clone().acquire_owned().await else {
            break;
        };
        let store = match copy.end {
            End::Happy => results.clone(),
            End::Error => errors.clone(),
        };
        tokio::spawn(async move {
            write_one(store.as_ref(), copy).await;
            drop(permit);
        });
    }
    // Every writer done: all permits back.
    let _ = writers.acquire_many(WRITERS as u32).await;
}

/// Writes one copy, trying again on failure.
async fn write_one(store: &dyn ObjectStore, copy: ObjectCopy) {
    let path = Path::from(copy.key.as_str());
    let mut pause = FIRST_PAUSE;
    let mut last_error = String::new();
    for attempt in 0..TRIES {
        if attempt > 0 {
            tokio::time::sleep(pause).await;
            pause *= 2;
        }
        let attributes = object_store::Attributes::from_iter([(
            object_store::Attribute::ContentType,
            object_store::AttributeValue::from("application/json"),
        )]);
        let options = object_store::PutOptions {
            attributes,
            ..Default::default()
        };
        let put = store.put_opts(&path, copy.body.clone().into(), options);
        match tokio::time::timeout(WRITE_TIMEOUT, put).await {
            Ok(Ok(_)) => {
                metrics()
                    .results_archived
                    .with_label_values(&[copy.end.actor_name(), "written"])
                    .inc();
                return;
            }
            Ok(Err(error)) => last_error = crate::error_chain::chain(&error).to_string(),
            Err(_) => last_error = format!("no answer within {WRITE_TIMEOUT:?}"),
        }
    }
    metrics()
        .results_archived
        .with_label_values(&[copy.end.actor_name(), "failed"])
        .inc();
    tracing::warn!(
        key = copy.key,
        error = last_error,
        "a copy of an ended envelope was not written to object storage"
    );
}
