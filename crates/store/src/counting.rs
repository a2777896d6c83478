//! [`CountingStore`]: an [`ObjectStore`] wrapper that counts calls and body bytes, for tests
//! and benchmarks ("append cost is O(batch), not O(file)").

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::{Condition, Object, ObjectMeta, ObjectStore, Result};

/// A snapshot of what went through a [`CountingStore`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    pub gets: u64,
    pub get_ranges: u64,
    pub heads: u64,
    pub puts: u64,
    pub lists: u64,
    pub deletes: u64,
    pub append_larges: u64,
    /// Body bytes returned by `get` and `get_range`.
    pub bytes_read: u64,
    /// Body bytes handed to `put` and `append_large` (sent, whether or not the call succeeded).
    pub bytes_written: u64,
}

impl StoreStats {
    /// All calls, of every method.
    pub fn calls(&self) -> u64 {
        self.gets
            + self.get_ranges
            + self.heads
            + self.puts
            + self.lists
            + self.deletes
            + self.append_larges
    }
}

#[derive(Debug, Default)]
struct Counters {
    gets: AtomicU64,
    get_ranges: AtomicU64,
    heads: AtomicU64,
    puts: AtomicU64,
    lists: AtomicU64,
    deletes: AtomicU64,
    append_larges: AtomicU64,
    bytes_read: AtomicU64,
    bytes_written: AtomicU64,
}

/// Wraps a store and counts calls per method and body bytes read and written.
/// Clones share the counters.
#[derive(Debug, Clone)]
pub struct CountingStore<S> {
    inner: S,
    counters: Arc<Counters>,
}

impl<S> CountingStore<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            counters: Arc::default(),
        }
    }

    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The counts so far.
    pub fn stats(&self) -> StoreStats {
        let c = &self.counters;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StoreStats {
            gets: l(&c.gets),
            get_ranges: l(&c.get_ranges),
            heads: l(&c.heads),
            puts: l(&c.puts),
            lists: l(&c.lists),
            deletes: l(&c.deletes),
            append_larges: l(&c.append_larges),
            bytes_read: l(&c.bytes_read),
            bytes_written: l(&c.bytes_written),
        }
    }

    /// Sets every count back to zero.
    pub fn reset(&self) {
        let c = &self.counters;
        for a in [
            &c.gets,
            &c.get_ranges,
            &c.heads,
            &c.puts,
            &c.lists,
            &c.deletes,
            &c.append_larges,
            &c.bytes_read,
            &c.bytes_written,
        ] {
            a.store(0, Ordering::Relaxed);
        }
    }

    fn read(&self, out: &Result<Option<Object>>) {
        if let Ok(Some(o)) = out {
            self.counters
                .bytes_read
                .fetch_add(o.body.len() as u64, Ordering::Relaxed);
        }
    }
}

fn bump(a: &AtomicU64) {
    a.fetch_add(1, Ordering::Relaxed);
}

impl<S: ObjectStore> ObjectStore for CountingStore<S> {
    async fn get(&self, key: &str) -> Result<Option<Object>> {
        bump(&self.counters.gets);
        let out = self.inner.get(key).await;
        self.read(&out);
        out
    }

    async fn get_range(&self, key: &str, start: u64, end: Option<u64>) -> Result<Option<Object>> {
        bump(&self.counters.get_ranges);
        let out = self.inner.get_range(key, start, end).await;
        self.read(&out);
        out
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>> {
        bump(&self.counters.heads);
        self.inner.head(key).await
    }

    async fn put(&self, key: &str, body: Vec<u8>, condition: Condition) -> Result<String> {
        bump(&self.counters.puts);
        self.counters
            .bytes_written
            .fetch_add(body.len() as u64, Ordering::Relaxed);
        self.inner.put(key, body, condition).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        bump(&self.counters.lists);
        self.inner.list(prefix).await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        bump(&self.counters.deletes);
        self.inner.delete(key).await
    }

    async fn append_large(&self, key: &str, etag: &str, tail: Vec<u8>) -> Result<String> {
        bump(&self.counters.append_larges);
        self.counters
            .bytes_written
            .fetch_add(tail.len() as u64, Ordering::Relaxed);
        self.inner.append_large(key, etag, tail).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LocalStore;

    #[tokio::test]
    async fn it_counts_calls_and_body_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let s = CountingStore::new(LocalStore::new(dir.path()).unwrap());
        let etag = s
            .put("k", b"hello".to_vec(), Condition::None)
            .await
            .unwrap();
        s.append_large("k", &etag, b" world".to_vec())
            .await
            .unwrap();
        assert_eq!(
            s.get_range("k", 6, None).await.unwrap().unwrap().body,
            b"world"
        );
        s.get("missing").await.unwrap();
        s.list("").await.unwrap();
        let st = s.clone().stats();
        assert_eq!(
            (st.puts, st.append_larges, st.get_ranges, st.gets, st.lists),
            (1, 1, 1, 1, 1)
        );
        assert_eq!((st.bytes_written, st.bytes_read, st.calls()), (11, 5, 5));
        s.reset();
        assert_eq!(s.stats(), StoreStats::default());
    }
}
