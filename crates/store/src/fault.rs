//! Fault injection for tests: [`Hooked`], the one [`ObjectStore`] wrapper that lets a test act
//! before any call (fail it, or do something else first: another run, a racing append) and
//! lose its answer after; and [`CrashAfter`], the hook that fails from the N-th call on, to
//! test that a pipeline step crashed at any point can be re-run without losing or doubling
//! rows.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::{Condition, Object, ObjectMeta, ObjectStore, Result, StoreError};

/// The store method a call is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    GetRange,
    Head,
    Put,
    List,
    Delete,
    AppendLarge,
}

/// A call about to be made: its method and key (the prefix, for `list`).
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    pub method: Method,
    pub key: &'a str,
}

/// What to do with the inner store's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    /// Give it to the caller.
    Answer,
    /// The call happened, but the caller hears [`StoreError::Transient`] (a reply lost).
    LoseReply,
}

/// What a test does around each call of a [`Hooked`] store.
pub trait Hook: Send + Sync {
    /// Runs before the call. An error is the call's answer and the inner store is not called.
    fn before(&self, call: Call<'_>) -> impl Future<Output = Result<Then>> + Send;
}

/// An [`ObjectStore`] that runs `hook` before every call of `inner`.
#[derive(Debug, Clone)]
pub struct Hooked<S, H> {
    inner: S,
    hook: H,
}

impl<S, H> Hooked<S, H> {
    pub fn with(inner: S, hook: H) -> Self {
        Self { inner, hook }
    }

    pub fn inner(&self) -> &S {
        &self.inner
    }

    pub fn hook(&self) -> &H {
        &self.hook
    }
}

impl<S: ObjectStore, H: Hook> Hooked<S, H> {
    async fn call<T, F>(&self, method: Method, key: &str, inner: F) -> Result<T>
    where
        F: Future<Output = Result<T>> + Send,
    {
        let then = self.hook.before(Call { method, key }).await?;
        let out = inner.await;
        match then {
            Then::Answer => out,
            Then::LoseReply => Err(StoreError::Transient(format!(
                "injected crash ({method:?} {key}), reply lost"
            ))),
        }
    }
}

impl<S: ObjectStore, H: Hook> ObjectStore for Hooked<S, H> {
    async fn get(&self, key: &str) -> Result<Option<Object>> {
        self.call(Method::Get, key, self.inner.get(key)).await
    }

    async fn get_range(&self, key: &str, start: u64, end: Option<u64>) -> Result<Option<Object>> {
        let inner = self.inner.get_range(key, start, end);
        self.call(Method::GetRange, key, inner).await
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>> {
        self.call(Method::Head, key, self.inner.head(key)).await
    }

    async fn put(&self, key: &str, body: Vec<u8>, condition: Condition) -> Result<String> {
        let inner = self.inner.put(key, body, condition);
        self.call(Method::Put, key, inner).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        self.call(Method::List, prefix, self.inner.list(prefix))
            .await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.call(Method::Delete, key, self.inner.delete(key)).await
    }

    async fn append_large(&self, key: &str, etag: &str, tail: Vec<u8>) -> Result<String> {
        let inner = self.inner.append_large(key, etag, tail);
        self.call(Method::AppendLarge, key, inner).await
    }
}

/// The hook of [`CrashAfter`]: passes calls `1..n` through; call `n` and every later call
/// fail with [`StoreError::Transient`], as if the process had died there. With
/// [`CrashAfter::losing_reply`], call `n` is first performed on the inner store and only its
/// answer is lost (the write landed, the caller never heard), which is the harder case for
/// idempotency. Clones share the call counter.
#[derive(Debug, Clone)]
pub struct CrashPoint {
    crash_at: u64,
    lose_reply: bool,
    calls: Arc<AtomicU64>,
}

impl Hook for CrashPoint {
    async fn before(&self, call: Call<'_>) -> Result<Then> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        match n.cmp(&self.crash_at) {
            std::cmp::Ordering::Less => Ok(Then::Answer),
            std::cmp::Ordering::Equal if self.lose_reply => Ok(Then::LoseReply),
            _ => Err(StoreError::Transient(format!(
                "injected crash at call {n} ({:?} {})",
                call.method, call.key
            ))),
        }
    }
}

/// A store that fails from its N-th call on (see [`CrashPoint`]).
pub type CrashAfter<S> = Hooked<S, CrashPoint>;

impl<S> Hooked<S, CrashPoint> {
    /// Fails call number `n` (1-based) and all later calls.
    pub fn new(inner: S, n: u64) -> Self {
        Self::with(
            inner,
            CrashPoint {
                crash_at: n,
                lose_reply: false,
                calls: Arc::default(),
            },
        )
    }

    /// Makes the crashing call reach the inner store before it fails.
    pub fn losing_reply(mut self) -> Self {
        self.hook.lose_reply = true;
        self
    }

    /// Calls attempted so far, the failed ones included.
    pub fn calls(&self) -> u64 {
        self.hook.calls.load(Ordering::SeqCst)
    }

    /// True once the crash point was reached.
    pub fn crashed(&self) -> bool {
        self.calls() >= self.hook.crash_at
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

    /// A hook that acts on the store before one kind of call.
    struct BeforeDelete(LocalStore);

    impl Hook for BeforeDelete {
        async fn before(&self, call: Call<'_>) -> Result<Then> {
            if call.method == Method::Delete {
                self.0.put("raced", b"r".to_vec(), Condition::None).await?;
            }
            Ok(Then::Answer)
        }
    }

    #[tokio::test]
    async fn a_hook_acts_before_the_call_it_names() {
        let dir = tempfile::tempdir().unwrap();
        let local = LocalStore::new(dir.path()).unwrap();
        let s = Hooked::with(local.clone(), BeforeDelete(local));
        s.put("a", b"1".to_vec(), Condition::None).await.unwrap();
        assert!(s.get("raced").await.unwrap().is_none());
        s.delete("a").await.unwrap();
        assert!(s.get("raced").await.unwrap().is_some());
        assert!(s.get("a").await.unwrap().is_none());
    }
}
