//! Bounded compare-and-swap retries: re-run a read-modify-write while another writer wins.
//!
//! Only [`StoreError::PreconditionFailed`] (S3 412/409) is retried here. Transient errors are
//! returned as they are: the SDK has already retried them, and the Lambda answers them by
//! failing its records so that SQS redelivers.

use std::future::Future;
use std::time::Duration;

use rand::Rng;

use crate::{Result, StoreError};

/// How often and how patiently [`retry_cas`] retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: u32,
    /// The backoff ceiling before the second attempt; it doubles per attempt.
    pub base_delay: Duration,
    /// The backoff ceiling never exceeds this.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 8 attempts, 20 ms base, 1 s cap.
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_secs(1),
        }
    }
}

impl RetryPolicy {
    /// The "full jitter" delay after failed attempt number `attempt` (1-based): uniform in
    /// `[0, min(max_delay, base_delay * 2^(attempt-1))]`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self
            .base_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(30))
            .min(self.max_delay);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rand::rng().random_range(0..=nanos))
    }
}

/// Runs `op` until it does not fail with [`StoreError::PreconditionFailed`], sleeping a
/// jittered backoff between attempts. After `policy.max_attempts` lost races it returns
/// [`StoreError::Contended`]. `op` must re-read what it modifies on every call.
///
/// A 412 does not always mean someone else won: when a write succeeded but its response was
/// lost, the SDK's own retry of it answers 412 too. So `op` must check on re-read whether its
/// change is already there (the pipeline's appends dedupe by row identity) rather than apply
/// it blindly.
///
/// ```no_run
/// # async fn demo(store: &impl store::ObjectStore) -> store::Result<()> {
/// use store::{cas::{retry_cas, RetryPolicy}, Condition};
/// retry_cas(&RetryPolicy::default(), "k", || async {
///     let old = store.get("k").await?.expect("exists");
///     let mut body = old.body;
///     body.extend_from_slice(b"one more line\n");
///     store.put("k", body, Condition::IfMatch(old.etag)).await
/// })
/// .await?;
/// # Ok(()) }
/// ```
pub async fn retry_cas<T, F, Fut>(policy: &RetryPolicy, key: &str, mut op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let max = policy.max_attempts.max(1);
    let mut attempt = 1;
    loop {
        match op().await {
            Err(StoreError::PreconditionFailed { .. }) if attempt < max => {
                let delay = policy.delay(attempt);
                tracing::debug!(
                    key,
                    attempt,
                    delay_ms = delay.as_millis() as u64,
                    "CAS lost; retrying"
                );
                futures_timer::Delay::new(delay).await;
                attempt += 1;
            }
            Err(StoreError::PreconditionFailed { .. }) => {
                tracing::warn!(key, attempts = attempt, "CAS contended; giving up");
                return Err(StoreError::Contended {
                    key: key.to_string(),
                    attempts: attempt,
                });
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn quick(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
        }
    }

    #[test]
    fn delays_stay_under_the_capped_exponential() {
        let p = RetryPolicy::default();
        for attempt in 1..40 {
            let cap = Duration::from_millis(20 * (1u64 << (attempt - 1).min(20)))
                .min(Duration::from_secs(1));
            assert!(p.delay(attempt) <= cap);
        }
    }

    #[tokio::test]
    async fn it_retries_precondition_failures_until_the_op_wins() {
        let calls = AtomicU32::new(0);
        let out = retry_cas(&quick(5), "k", || async {
            match calls.fetch_add(1, Ordering::SeqCst) {
                0 | 1 => Err(StoreError::PreconditionFailed { key: "k".into() }),
                _ => Ok(7),
            }
        })
        .await;
        assert_eq!(out.unwrap(), 7);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn it_gives_up_as_contended_after_max_attempts() {
        let calls = AtomicU32::new(0);
        let out: Result<()> = retry_cas(&quick(4), "k", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(StoreError::PreconditionFailed { key: "k".into() })
        })
        .await;
        let err = out.unwrap_err();
        assert!(matches!(err, StoreError::Contended { ref key, attempts: 4 } if key == "k"));
        assert!(err.is_retryable());
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn it_returns_other_errors_at_once() {
        let calls = AtomicU32::new(0);
        let out: Result<()> = retry_cas(&quick(4), "k", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(StoreError::Transient("slow down".into()))
        })
        .await;
        assert!(matches!(out, Err(StoreError::Transient(_))));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
