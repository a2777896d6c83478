//! A directory as the bucket: the embedded default for `make demo` and local runs.
//!
//! ETags are the quoted MD5 of the content, as S3 gives for single-part objects. Conditional
//! writes are made atomic by one lock per store, held across processes with an advisory file
//! lock (`.calltype.lock` in the root), and objects are replaced by rename, so readers never
//! see half an object.

use std::fs;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use md5::{Digest, Md5};

use crate::{Condition, Object, ObjectMeta, ObjectStore, Result, StoreError};

const LOCK_FILE: &str = ".calltype.lock";

/// An [`ObjectStore`] over a local directory.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: Arc<PathBuf>,
}

impl LocalStore {
    /// Uses `root` as the bucket, creating it if needed.
    pub fn new(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(|e| io_err(&root, e))?;
        Ok(Self {
            root: Arc::new(root),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        let rel = Path::new(key);
        let ok = !key.is_empty()
            && rel.components().all(|c| matches!(c, Component::Normal(_)))
            && !key.ends_with('/');
        if !ok || key == LOCK_FILE {
            return Err(StoreError::Permanent(format!("invalid object key {key:?}")));
        }
        Ok(self.root.join(rel))
    }

    /// Runs `f` holding the store's exclusive lock (across threads and processes).
    async fn locked<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Path) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let root = self.root.clone();
        blocking::unblock(move || {
            let lock_path = root.join(LOCK_FILE);
            let lock = fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)
                .map_err(|e| io_err(&lock_path, e))?;
            lock.lock().map_err(|e| io_err(&lock_path, e))?;
            let out = f(&root);
            let _ = lock.unlock();
            out
        })
        .await
    }
}

fn io_err(path: &Path, e: io::Error) -> StoreError {
    StoreError::Permanent(format!("{}: {e}", path.display()))
}

fn etag_of(bytes: &[u8]) -> String {
    format!("\"{}\"", hex::encode(Md5::digest(bytes)))
}

fn read_opt(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path, e)),
    }
}

fn write_atomic(path: &Path, body: &[u8]) -> Result<()> {
    let dir = path.parent().expect("object paths have a parent");
    fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    let mut tmp = tempfile_in(dir)?;
    tmp.1.write_all(body).map_err(|e| io_err(&tmp.0, e))?;
    tmp.1.sync_all().map_err(|e| io_err(&tmp.0, e))?;
    fs::rename(&tmp.0, path).map_err(|e| io_err(path, e))
}

fn tempfile_in(dir: &Path) -> Result<(PathBuf, fs::File)> {
    for n in 0..1000u32 {
        let p = dir.join(format!(".tmp-{}-{n}", std::process::id()));
        match fs::OpenOptions::new().write(true).create_new(true).open(&p) {
            Ok(f) => return Ok((p, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_err(&p, e)),
        }
    }
    Err(StoreError::Permanent(format!(
        "no temporary file name free in {}",
        dir.display()
    )))
}

fn check(key: &str, current: Option<&[u8]>, condition: &Condition) -> Result<()> {
    match (condition, current) {
        (Condition::None, _) => Ok(()),
        (Condition::IfNoneMatch, None) => Ok(()),
        (Condition::IfNoneMatch, Some(_)) => {
            Err(StoreError::PreconditionFailed { key: key.into() })
        }
        (Condition::IfMatch(_), None) => Err(StoreError::NotFound { key: key.into() }),
        (Condition::IfMatch(e), Some(b)) if *e == etag_of(b) => Ok(()),
        (Condition::IfMatch(_), Some(_)) => Err(StoreError::PreconditionFailed { key: key.into() }),
    }
}

fn walk(dir: &Path, root: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(".tmp-") || (dir == root && name == LOCK_FILE) {
            continue;
        }
        let ft = entry.file_type()?;
        if ft.is_dir() {
            walk(&entry.path(), root, out)?;
        } else if ft.is_file() {
            out.push(entry.path());
        }
    }
    Ok(())
}

impl ObjectStore for LocalStore {
    async fn get(&self, key: &str) -> Result<Option<Object>> {
        let path = self.path(key)?;
        self.locked(move |_| {
            Ok(read_opt(&path)?.map(|body| Object {
                etag: etag_of(&body),
                size: body.len() as u64,
                body,
            }))
        })
        .await
    }

    async fn get_range(&self, key: &str, start: u64, end: Option<u64>) -> Result<Option<Object>> {
        let path = self.path(key)?;
        self.locked(move |_| {
            let Some(all) = read_opt(&path)? else {
                return Ok(None);
            };
            let size = all.len() as u64;
            let s = start.min(size) as usize;
            let e = end.unwrap_or(size).min(size).max(start.min(size)) as usize;
            Ok(Some(Object {
                etag: etag_of(&all),
                size,
                body: all[s..e].to_vec(),
            }))
        })
        .await
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>> {
        let path = self.path(key)?;
        let key = key.to_string();
        self.locked(move |_| {
            Ok(read_opt(&path)?.map(|b| ObjectMeta {
                key,
                size: b.len() as u64,
                etag: etag_of(&b),
            }))
        })
        .await
    }

    async fn put(&self, key: &str, body: Vec<u8>, condition: Condition) -> Result<String> {
        let path = self.path(key)?;
        let key = key.to_string();
        self.locked(move |_| {
            let current = read_opt(&path)?;
            check(&key, current.as_deref(), &condition)?;
            write_atomic(&path, &body)?;
            Ok(etag_of(&body))
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let prefix = prefix.to_string();
        self.locked(move |root| {
            let mut files = Vec::new();
            walk(root, root, &mut files).map_err(|e| io_err(root, e))?;
            let mut out = Vec::new();
            for f in files {
                let rel = f.strip_prefix(root).expect("walked under root");
                let key = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                if key.starts_with(&prefix) {
                    let body = fs::read(&f).map_err(|e| io_err(&f, e))?;
                    out.push(ObjectMeta {
                        key,
                        size: body.len() as u64,
                        etag: etag_of(&body),
                    });
                }
            }
            out.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(out)
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let path = self.path(key)?;
        self.locked(move |_| match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&path, e)),
        })
        .await
    }

    async fn append_large(&self, key: &str, etag: &str, tail: Vec<u8>) -> Result<String> {
        let path = self.path(key)?;
        let key = key.to_string();
        let etag = etag.to_string();
        self.locked(move |_| {
            // Appending in place is the local analogue of UploadPartCopy: the existing bytes
            // are not rewritten. The ETag check still needs the content once.
            let current = read_opt(&path)?;
            check(&key, current.as_deref(), &Condition::IfMatch(etag))?;
            let mut f = fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(|e| io_err(&path, e))?;
            f.seek(SeekFrom::End(0)).map_err(|e| io_err(&path, e))?;
            f.write_all(&tail).map_err(|e| io_err(&path, e))?;
            f.sync_all().map_err(|e| io_err(&path, e))?;
            f.seek(SeekFrom::Start(0)).map_err(|e| io_err(&path, e))?;
            let mut all = Vec::new();
            f.read_to_end(&mut all).map_err(|e| io_err(&path, e))?;
            Ok(etag_of(&all))
        })
        .await
    }
}
