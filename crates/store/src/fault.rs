//! [`CrashAfter`]: an [`ObjectStore`] wrapper that fails from the N-th call on, to test
//! that a pipeline step crashed at any point can be re-run without losing or doubling rows.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::{Condition, Object, ObjectMeta, ObjectStore, Result, StoreError};

/// Passes calls `1..n` through to the inner store; call `n` and every later call fail with
/// [`StoreError::Transient`], as if the process had died there.
///
/// With [`CrashAfter::losing_reply`], call `n` is first performed on the inner store and only
/// its answer is lost (the write landed, the caller never heard), which is the harder case
/// for idempotency. Clones share the call counter.
#[derive(Debug, Clone)]
pub struct CrashAfter<S> {
    inner: S,
    crash_at: u64,
    lose_reply: bool,
    calls: Arc<AtomicU64>,
}

impl<S> CrashAfter<S> {
    /// Fails call number `n` (1-based) and all later calls.
    pub fn new(inner: S, n: u64) -> Self {
        Self {
            inner,
            crash_at: n,
            lose_reply: false,
            calls: Arc::default(),
        }
    }

    /// Makes the crashing call reach the inner store before it fails.
    pub fn losing_reply(mut self) -> Self {
        self.lose_reply = true;
        self
    }

    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Calls attempted so far, the failed ones included.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    /// True once the crash point was reached.
    pub fn crashed(&self) -> bool {
        self.calls() >= self.crash_at
    }

    /// Counts a call and says whether to perform it, and whether to fail it afterwards.
    fn step(&self, method: &str, key: &str) -> Result<bool> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let crash =
            || StoreError::Transient(format!("injected crash at call {n} ({method} {key})"));
        match n.cmp(&self.crash_at) {
            std::cmp::Ordering::Less => Ok(false),
            std::cmp::Ordering::Equal if self.lose_reply => Ok(true),
            _ => Err(crash()),
        }
    }

    fn finish<T>(&self, method: &str, key: &str, lose: bool, out: Result<T>) -> Result<T> {
        if lose {
            return Err(StoreError::Transient(format!(
                "injected crash at call {} ({method} {key}), reply lost",
                self.crash_at
            )));
        }
        out
    }
}

impl<S: ObjectStore> ObjectStore for CrashAfter<S> {
    async fn get(&self, key: &str) -> Result<Option<Object>> {
        let lose = self.step("get", key)?;
        let out = self.inner.get(key).await;
        self.finish("get", key, lose, out)
    }

    async fn get_range(&self, key: &str, start: u64, end: Option<u64>) -> Result<Option<Object>> {
        let lose = self.step("get_range", key)?;
        let out = self.inner.get_range(key, start, end).await;
        self.finish("get_range", key, lose, out)
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>> {
        let lose = self.step("head", key)?;
        let out = self.inner.head(key).await;
        self.finish("head", key, lose, out)
    }

    async fn put(&self, key: &str, body: Vec<u8>, condition: Condition) -> Result<String> {
        let lose = self.step("put", key)?;
        let out = self.inner.put(key, body, condition).await;
        self.finish("put", key, lose, out)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let lose = self.step("list", prefix)?;
        let out = self.inner.list(prefix).await;
        self.finish("list", prefix, lose, out)
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let lose = self.step("delete", key)?;
        let out = self.inner.delete(key).await;
        self.finish("delete", key, lose, out)
    }

    async fn append_large(&self, key: &str, etag: &str, tail: Vec<u8>) -> Result<String> {
        let lose = self.step("append_large", key)?;
        let out = self.inner.append_large(key, etag, tail).await;
        self.finish("append_large", key, lose, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LocalStore;

    #[tokio::test]
    async fn it_fails_from_the_nth_call_on() {
        let dir = tempfile::tempdir().unwrap();
        let s = CrashAfter::new(LocalStore::new(dir.path()).unwrap(), 2);
        s.put("a", b"1".to_vec(), Condition::None).await.unwrap();
        assert!(!s.crashed());
        assert!(matches!(
            s.put("b", b"2".to_vec(), Condition::None).await,
            Err(StoreError::Transient(_))
        ));
        assert!(matches!(s.get("a").await, Err(StoreError::Transient(_))));
        assert!(s.crashed());
        assert_eq!(s.calls(), 3);
        assert!(s.inner().get("b").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn losing_reply_performs_the_call_then_fails() {
        let dir = tempfile::tempdir().unwrap();
        let s = CrashAfter::new(LocalStore::new(dir.path()).unwrap(), 1).losing_reply();
        assert!(s.put("a", b"1".to_vec(), Condition::None).await.is_err());
        assert!(s.get("a").await.is_err());
        assert_eq!(s.inner().get("a").await.unwrap().unwrap().body, b"1");
    }
}
