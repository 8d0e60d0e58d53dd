//! Targets: where a repository's objects live. The only module that sees `object_store`.
//!
//! A target is a local directory (a mounted NAS share or disk) or an S3-compatible bucket and
//! prefix. Keys are relative to the repository root (`config`, `data/ab/ab12...`). Writes of new
//! objects ask the store to refuse an existing name (`If-None-Match: *` on S3, an atomic
//! no-replace rename on a filesystem); every object but `config` is named by the hash of its
//! bytes, so an existing object of the same name already holds the same bytes.
//!
//! Transient failures are retried with exponential backoff by `object_store` (S3); a target that
//! stays down fails with an error that names it.

pub mod disk;
mod local;
mod s3;

pub use s3::Retention;
use s3::{ObjectLock, xml_field};

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
    RetryConfig, WriteMultipart,
};

use crate::error::{Error, Result};

/// Objects larger than this go up to S3 as multipart uploads.
const MULTIPART_FROM: usize = 8 * 1024 * 1024;
const PART_SIZE: usize = 8 * 1024 * 1024;

/// Where a target is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A directory on a mounted filesystem.
    Path(PathBuf),
    /// An S3-compatible bucket, with an optional key prefix. Endpoint, region and credentials come
    /// from the standard `AWS_*` environment variables; credentials may instead come from the AWS
    /// shared credentials file (`AWS_SHARED_CREDENTIALS_FILE` or `~/.aws/credentials`, profile
    /// `AWS_PROFILE` or `default`).
    S3 {
        bucket: String,
        prefix: String,
        /// Overrides AWS_ENDPOINT_URL (a target's own endpoint, from its configuration).
        endpoint: Option<String>,
        /// Overrides AWS_REGION.
        region: Option<String>,
    },
}

impl Location {
    /// Parses `s3://bucket/prefix` or a filesystem path.
    pub fn parse(text: &str) -> Result<Location> {
        if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(Error::Usage(format!(
                    "repository \"{text}\" names no bucket; write it as s3://BUCKET/PREFIX"
                )));
            }
            return Ok(Location::S3 {
                bucket: bucket.to_string(),
                prefix: prefix.trim_matches('/').to_string(),
                endpoint: None,
                region: None,
            });
        }
        if text.contains("://") {
            return Err(Error::Usage(format!(
                "repository \"{text}\": only local paths and s3://BUCKET/PREFIX are supported"
            )));
        }
        if text.is_empty() {
            return Err(Error::Usage("the repository location is empty".into()));
        }
        Ok(Location::Path(PathBuf::from(text)))
    }
}

/// How hard to try before a target counts as down.
#[derive(Clone, Debug)]
pub struct TargetOptions {
    pub max_retries: usize,
    pub retry_timeout: Duration,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// How long a response may pause before the request is retried.
    pub read_timeout: Duration,
    /// How long the first request to a remote target may take (see [`Target::first_contact`]).
    pub first_answer_timeout: Duration,
    /// S3 only: take credentials from the cloud's instance metadata service when none are in
    /// the environment or the shared credentials file. Off unless the target asks, so that a
    /// target without credentials is named rather than probing 169.254.169.254.
    pub instance_credentials: bool,
    /// S3 only: ask for Object Lock retention (COMPLIANCE mode) of this many days, from when
    /// the target is opened, on every object written.
    pub object_lock_days: Option<u32>,
    /// Objects moved at once (uploads in a backup, downloads in a restore, copies in
    /// replication); `None` for the kind's default ([`LOCAL_TRANSFERS`], [`S3_TRANSFERS`]).
    pub transfers: Option<usize>,
}

/// Transfers at once on a local target: two keep a disk busy while the CPU works.
pub const LOCAL_TRANSFERS: usize = 2;

/// Transfers at once on an S3 target: a request waits on the network, so more in flight fill
/// the link (each holds at most a pack, 16 MiB by default, in memory).
pub const S3_TRANSFERS: usize = 6;

impl Default for TargetOptions {
    fn default() -> Self {
        TargetOptions {
            max_retries: 6,
            retry_timeout: Duration::from_secs(120),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(300),
            read_timeout: Duration::from_secs(60),
            first_answer_timeout: Duration::from_secs(15),
            instance_credentials: false,
            object_lock_days: None,
            transfers: None,
        }
    }
}

/// An object's name and size as listed.
#[derive(Clone, Debug)]
pub struct Listed {
    /// Key relative to the repository root.
    pub key: String,
    pub size: u64,
    pub modified: DateTime<Utc>,
}

/// A target's scratch directory, held open: files are made in it through its handle, so that
/// a link put in its place later is never written through.
#[derive(Clone, Debug)]
pub struct Scratch {
    path: PathBuf,
    dir: Arc<std::os::fd::OwnedFd>,
}

impl Scratch {
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Creates a new file `PREFIX-RANDOM.tmp`, mode 0600, with `O_EXCL | O_NOFOLLOW`; returns
    /// its path (for messages and for [`Target::put_file`]) and the open file.
    pub fn create(&self, prefix: &str) -> std::io::Result<(PathBuf, std::fs::File)> {
        let (name, file) = local::create_scratch(&self.dir, prefix)?;
        Ok((self.path.join(name), file))
    }
}

/// Whether a write created the object or found it already there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Put {
    Created,
    Existed,
}

/// One opened target.
#[derive(Clone)]
pub struct Target {
    name: String,
    store: Arc<dyn ObjectStore>,
    prefix: String,
    multipart: bool,
    /// The directory of a local target.
    root: Option<PathBuf>,
    /// Set on S3 targets: reads Object Lock retention back and, with `object_lock_days`, locks
    /// every object written.
    object_lock: Option<Arc<ObjectLock>>,
    /// Where packs of a remote target are built before upload: made on first use, private to
    /// this process, removed when the last clone of the target is dropped.
    scratch: Arc<std::sync::OnceLock<tempfile::TempDir>>,
    /// Whether the store has answered a request yet (see [`Target::first_contact`]).
    answered: Arc<std::sync::atomic::AtomicBool>,
    first_answer: Duration,
    /// Objects moved at once (see [`TargetOptions::transfers`]).
    transfers: usize,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Target({})", self.name)
    }
}

impl Target {
    /// Opens a target. `create` makes a missing local directory (for `init`).
    pub fn open(
        name: &str,
        location: &Location,
        options: &TargetOptions,
        create: bool,
    ) -> Result<Target> {
        match location {
            Location::Path(dir) => {
                if create {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        Error::local(dir, "cannot create the repository directory", e)
                    })?;
                } else if !dir.is_dir() {
                    return Err(Error::NotFound(format!(
                        "repository directory {} does not exist; check the path, and that the disk or share holding it is mounted",
                        dir.display()
                    )));
                }
                // fsync each object and its directory: a pack must be on disk before an index
                // object names it, or a power cut could leave an index pointing at nothing.
                let store = LocalFileSystem::new_with_prefix(dir)
                    .map(|s| s.with_fsync(true))
                    .map_err(|e| Error::Target {
                        target: name.to_string(),
                        op: "open",
                        path: dir.display().to_string(),
                        detail: e.to_string(),
                        transient: false,
                    })?;
                Ok(Target {
                    name: name.to_string(),
                    store: Arc::new(store),
                    prefix: String::new(),
                    multipart: false,
                    root: Some(dir.clone()),
                    object_lock: None,
                    scratch: Arc::default(),
                    answered: Arc::new(true.into()),
                    first_answer: options.first_answer_timeout,
                    transfers: options.transfers.unwrap_or(LOCAL_TRANSFERS).max(1),
                })
            }
            Location::S3 {
                bucket,
                prefix,
                endpoint,
                region,
            } => s3::open(
                name,
                bucket,
                prefix,
                endpoint.as_deref(),
                region.as_deref(),
                options,
            ),
        }
    }

    /// The name used in messages: the target's configured name or its location.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How many objects to move at once to or from this target.
    pub fn transfers(&self) -> usize {
        self.transfers
    }

    fn path(&self, key: &str) -> StorePath {
        if self.prefix.is_empty() {
            StorePath::from(key)
        } else {
            StorePath::from(format!("{}/{key}", self.prefix))
        }
    }

    fn fail(&self, op: &'static str, key: &str, e: object_store::Error) -> Error {
        let transient = matches!(e, object_store::Error::Generic { .. });
        let detail = match &e {
            object_store::Error::Generic { source, .. } => describe_generic(source.as_ref()),
            other => other.to_string(),
        };
        Error::Target {
            target: self.name.clone(),
            op,
            path: key.to_string(),
            detail,
            transient,
        }
    }

    /// Reads a whole object; `None` if it does not exist.
    pub async fn get_opt(&self, key: &str) -> Result<Option<Bytes>> {
        if let Some(root) = &self.root {
            return self.read_plain_file(root.join(key), key).await;
        }
        let Some(result) = self.get_remote(key).await? else {
            return Ok(None);
        };
        match result.bytes().await {
            Ok(b) => Ok(Some(b)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.fail("read", key, e)),
        }
    }

    /// Starts reading a remote object; `None` if it does not exist.
    async fn get_remote(&self, key: &str) -> Result<Option<object_store::GetResult>> {
        match self
            .first_contact("read", key, self.store.get(&self.path(key)))
            .await?
        {
            Ok(r) => Ok(Some(r)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.fail("read", key, e)),
        }
    }

    /// Runs `read` on a blocking thread over an object's bytes and its size; `None` if it does
    /// not exist. The object is read as `read` goes (a local target's from its file, a remote
    /// one's as its download arrives), so it is never held whole: a pack beside its plaintext
    /// would be twice its size. `read` deals with errors in what it reads; a download that
    /// fails part-way is the target's error, whatever `read` made of it.
    pub async fn read_with<T: Send + 'static>(
        &self,
        key: &str,
        read: impl FnOnce(&mut dyn std::io::Read, u64) -> T + Send + 'static,
    ) -> Result<Option<T>> {
        if let Some(root) = &self.root {
            let path = root.join(key);
            let opened = tokio::task::spawn_blocking(move || {
                Ok(open_plain_file(&path)?.map(|(mut file, len)| read(&mut file, len)))
            })
            .await
            .map_err(|e| Error::Interrupted(format!("reading {key} stopped: {e}")))?;
            return opened.map_err(|e| self.local_read_error(key, e));
        }
        let Some(got) = self.get_remote(key).await? else {
            return Ok(None);
        };
        let size = got.meta.size;
        let mut body = Download {
            handle: tokio::runtime::Handle::current(),
            body: got.into_stream(),
            chunk: Bytes::new(),
            failed: None,
        };
        let (done, failed) = tokio::task::spawn_blocking(move || {
            let done = read(&mut body, size);
            (done, body.failed)
        })
        .await
        .map_err(|e| Error::Interrupted(format!("reading {key} stopped: {e}")))?;
        match failed {
            None => Ok(Some(done)),
            Some(object_store::Error::NotFound { .. }) => Ok(None),
            Some(e) => Err(self.fail("read", key, e)),
        }
    }

    /// Reads an object of a local target whole (see [`open_plain_file`]).
    async fn read_plain_file(&self, path: PathBuf, key: &str) -> Result<Option<Bytes>> {
        use std::io::Read;
        let read = tokio::task::spawn_blocking(
            move || -> std::io::Result<Option<crate::format::buffers::Buffer>> {
                let Some((mut file, len)) = open_plain_file(&path)? else {
                    return Ok(None);
                };
                // Packs are read by the thousand: into reused memory, not a fresh mapping each.
                let mut bytes = crate::format::buffers::Buffer::with_capacity(len as usize);
                file.read_to_end(&mut bytes)?;
                Ok(Some(bytes))
            },
        )
        .await
        .map_err(|e| Error::Interrupted(format!("reading {key} stopped: {e}")))?;
        read.map(|b| b.map(crate::format::buffers::Buffer::into_bytes))
            .map_err(|e| self.local_read_error(key, e))
    }

    /// The error for a local object that could not be opened or read: something other than a
    /// plain file is damage, named; anything else is the target failing.
    fn local_read_error(&self, key: &str, e: std::io::Error) -> Error {
        if e.kind() == std::io::ErrorKind::Other {
            return Error::Corrupt {
                what: "object",
                id: key.to_string(),
                target: self.name.clone(),
                detail: format!(
                    "{e}; something other than firesafe put it there: remove it, then run `firesafe repair`"
                ),
            };
        }
        Error::Target {
            target: self.name.clone(),
            op: "read",
            path: key.to_string(),
            detail: e.to_string(),
            transient: false,
        }
    }

    /// Bounds a request to a remote target that has not answered yet, so that a store which
    /// accepts connections and never answers is named within seconds rather than after every
    /// retry of every request. Once it has answered, requests run with the configured time-outs.
    async fn first_contact<T>(
        &self,
        op: &'static str,
        key: &str,
        request: impl std::future::Future<Output = std::result::Result<T, object_store::Error>>,
    ) -> Result<std::result::Result<T, object_store::Error>> {
        if self.answered.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(request.await);
        }
        match tokio::time::timeout(self.first_answer, request).await {
            Ok(result) => {
                if matches!(result, Ok(_) | Err(object_store::Error::NotFound { .. })) {
                    self.answered
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                }
                Ok(result)
            }
            Err(_) => Err(Error::Target {
                target: self.name.clone(),
                op,
                path: key.to_string(),
                detail: format!(
                    "no answer within {} seconds: something accepts connections there but does not answer; check the endpoint and that the storage server is running",
                    self.first_answer.as_secs()
                ),
                transient: true,
            }),
        }
    }

    /// Reads a whole object that must exist.
    pub async fn get(&self, key: &str) -> Result<Bytes> {
        self.get_opt(key).await?.ok_or_else(|| Error::Corrupt {
            what: "object",
            id: key.to_string(),
            target: self.name.clone(),
            detail: "it is missing".into(),
        })
    }

    /// Writes a new object, refusing to replace an existing one.
    pub async fn put_new(&self, key: &str, bytes: Bytes) -> Result<Put> {
        if self.root.is_some() {
            return self
                .local("write", key, move |root, key| {
                    local::write(root, key, &bytes, false)
                })
                .await;
        }
        let path = self.path(key);
        if self.multipart && bytes.len() > MULTIPART_FROM {
            // A multipart upload cannot be conditional; only content-addressed objects are large,
            // so an object already there holds these bytes.
            if self.exists(key).await? {
                return Ok(Put::Existed);
            }
            let upload = self
                .store
                .put_multipart(&path)
                .await
                .map_err(|e| self.fail("start upload of", key, e))?;
            let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
            writer.put(bytes);
            writer
                .finish()
                .await
                .map_err(|e| self.fail("upload", key, e))?;
            self.retain(key).await?;
            return Ok(Put::Created);
        }
        let opts = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        match self
            .store
            .put_opts(&path, PutPayload::from(bytes), opts)
            .await
        {
            Ok(_) => {
                self.retain(key).await?;
                Ok(Put::Created)
            }
            Err(object_store::Error::AlreadyExists { .. }) => Ok(Put::Existed),
            Err(e) => Err(self.fail("write", key, e)),
        }
    }

    /// Where packs are written while they are built: `tmp/` inside a local target (so that
    /// storing one is a rename), the system's temporary directory for object storage. Readers
    /// ignore `tmp/`; what a killed backup leaves there can be deleted when no backup runs. A
    /// local target's `tmp` that is a link or not a directory is refused, named: a backup
    /// writes nothing through it.
    pub fn scratch_dir(&self) -> Result<Scratch> {
        let (path, dir) = match &self.root {
            Some(root) => local::scratch(root).map_err(|e| {
                Error::local(root.join(local::TMP), "cannot use the scratch directory", e)
            })?,
            None => {
                let path = self.private_scratch()?;
                let dir = local::open_dir(&path, std::path::Path::new(""), false)
                    .and_then(|d| d.ok_or_else(|| std::io::ErrorKind::NotFound.into()))
                    .map_err(|e| Error::local(&path, "cannot open the scratch directory", e))?;
                (path, dir)
            }
        };
        Ok(Scratch {
            path,
            dir: Arc::new(dir),
        })
    }

    /// Runs a write to a local target on a blocking thread, with the target's directory; an
    /// error is this target's, naming `op` and `key`.
    async fn local<T: Send + 'static>(
        &self,
        op: &'static str,
        key: &str,
        f: impl FnOnce(&std::path::Path, &str) -> std::io::Result<T> + Send + 'static,
    ) -> Result<T> {
        let root = self.root.clone().expect("a local target");
        let owned = key.to_string();
        tokio::task::spawn_blocking(move || f(&root, &owned))
            .await
            .map_err(|e| Error::Interrupted(format!("writing {key} stopped: {e}")))?
            .map_err(|e| Error::Target {
                target: self.name.clone(),
                op,
                path: key.to_string(),
                detail: e.to_string(),
                transient: false,
            })
    }

    /// Whether `key` holds an object: on a local target a plain file, reached without following
    /// a link (a named pipe, a device, a directory or a link where an object should be is no
    /// object, but damage that a repair replaces); on object storage, whether it exists.
    pub async fn holds_object(&self, key: &str) -> Result<bool> {
        if self.root.is_some() {
            return self
                .local("look up", key, |root, key| {
                    local::is_plain_object(root, key)
                })
                .await;
        }
        self.exists(key).await
    }

    /// The scratch files in a local target's `tmp/` last written more than `age` ago (left by a
    /// killed backup): their names and sizes. None on object storage (its scratch is local and
    /// private to each process).
    pub fn old_scratch(&self, age: std::time::Duration) -> Vec<(PathBuf, u64)> {
        let Some(root) = &self.root else {
            return Vec::new();
        };
        let Ok(entries) = std::fs::read_dir(root.join("tmp")) else {
            return Vec::new();
        };
        let now = std::time::SystemTime::now();
        entries
            .filter_map(|e| {
                let e = e.ok()?;
                // Only plain files of the scratch's naming, never through a link.
                let meta = std::fs::symlink_metadata(e.path()).ok()?;
                let old = now.duration_since(meta.modified().ok()?).ok()? > age;
                (meta.is_file() && old && e.file_name().to_string_lossy().ends_with(".tmp"))
                    .then(|| (e.path(), meta.len()))
            })
            .collect()
    }

    /// The scratch directory of a remote target: a fresh directory with a random name and mode
    /// 0700 in the system's temporary directory (never a fixed, shared name another user could
    /// create first or replace with a link), made the first time it is asked for. Those left by
    /// processes that were killed are removed on the way, but only real directories of this
    /// user's with this process's naming, never through a link.
    fn private_scratch(&self) -> Result<PathBuf> {
        if let Some(dir) = self.scratch.get() {
            return Ok(dir.path().to_path_buf());
        }
        let base = std::env::temp_dir();
        remove_stale_scratch(&base);
        let made = tempfile::Builder::new()
            .prefix(&format!("{SCRATCH_PREFIX}{}-", std::process::id()))
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .tempdir_in(&base)
            .map_err(|e| Error::local(&base, "cannot create a private scratch directory", e))?;
        // Another clone may have made one meanwhile: the one kept is the first, the other goes.
        let _ = self.scratch.set(made);
        Ok(self.scratch.get().expect("set above").path().to_path_buf())
    }

    /// Stores the file at `path` (in [`Target::scratch_dir`]) as a new object, refusing to
    /// replace an existing one, and removes the file. On a local target the file is synced and
    /// linked into place; on object storage it is uploaded, in parts when large.
    pub async fn put_file(&self, key: &str, path: &std::path::Path, size: u64) -> Result<Put> {
        if self.root.is_some() {
            let path = path.to_path_buf();
            return self
                .local("store", key, move |root, key| {
                    local::store_file(root, key, &path)
                })
                .await;
        }
        let result = if size as usize <= MULTIPART_FROM {
            let bytes = tokio::fs::read(path)
                .await
                .map_err(|e| Error::local(path, "cannot read", e))?;
            self.put_new(key, Bytes::from(bytes)).await
        } else if self.exists(key).await? {
            Ok(Put::Existed)
        } else {
            use tokio::io::AsyncReadExt;
            let upload = self
                .store
                .put_multipart(&self.path(key))
                .await
                .map_err(|e| self.fail("start upload of", key, e))?;
            let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
            let mut file = tokio::fs::File::open(path)
                .await
                .map_err(|e| Error::local(path, "cannot read", e))?;
            loop {
                let mut part = vec![0u8; PART_SIZE];
                let mut filled = 0;
                while filled < PART_SIZE {
                    let n = file
                        .read(&mut part[filled..])
                        .await
                        .map_err(|e| Error::local(path, "cannot read", e))?;
                    if n == 0 {
                        break;
                    }
                    filled += n;
                }
                if filled == 0 {
                    break;
                }
                part.truncate(filled);
                writer
                    .wait_for_capacity(2)
                    .await
                    .map_err(|e| self.fail("upload", key, e))?;
                writer.put(Bytes::from(part));
            }
            writer
                .finish()
                .await
                .map_err(|e| self.fail("upload", key, e))?;
            self.retain(key).await?;
            Ok(Put::Created)
        };
        if result.is_ok() {
            let _ = std::fs::remove_file(path);
        }
        result
    }

    pub async fn exists(&self, key: &str) -> Result<bool> {
        match self
            .first_contact("look up", key, self.store.head(&self.path(key)))
            .await?
        {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.fail("look up", key, e)),
        }
    }

    /// Lists every object under `dir` (recursively), with keys relative to the repository root.
    pub async fn list(&self, dir: &str) -> Result<Vec<Listed>> {
        let path = self.path(dir);
        // Listed locations come back encoded as object_store encodes them; strip the prefix in
        // that same form.
        let root = StorePath::from(self.prefix.as_str());
        let strip = if self.prefix.is_empty() {
            0
        } else {
            root.as_ref().len() + 1
        };
        let metas: Vec<_> = self
            .first_contact("list", dir, self.store.list(Some(&path)).try_collect())
            .await?
            .map_err(|e| self.fail("list", dir, e))?;
        Ok(metas
            .into_iter()
            .map(|m| Listed {
                key: m
                    .location
                    .as_ref()
                    .get(strip..)
                    .unwrap_or_default()
                    .to_string(),
                size: m.size,
                modified: m.last_modified,
            })
            .collect())
    }

    /// The Object Lock retention `key` carries now, read back from the store (not from the
    /// configuration); `None` for an object without retention and on a local target.
    pub async fn retention(&self, key: &str) -> Result<Option<Retention>> {
        let Some(lock) = &self.object_lock else {
            return Ok(None);
        };
        lock.retention(&self.path(key))
            .await
            .map_err(|detail| Error::Target {
                target: self.name.clone(),
                op: "read object lock retention of",
                path: key.to_string(),
                detail,
                transient: false,
            })
    }

    /// Locks a just-written object when the target asks for object lock.
    async fn retain(&self, key: &str) -> Result<()> {
        let Some(lock) = &self.object_lock else {
            return Ok(());
        };
        lock.retain(&self.path(key))
            .await
            .map_err(|detail| Error::Target {
                target: self.name.clone(),
                op: "set object lock retention on",
                path: key.to_string(),
                detail,
                transient: false,
            })
    }

    /// Whether the store refuses to overwrite an object on a conditional `PUT` (`If-None-Match:
    /// *`). Some S3-compatible stores (Garage) ignore the header and overwrite. Probed by
    /// writing a scratch object twice; a local directory always refuses (hard links).
    pub async fn honours_conditional_writes(&self) -> Result<bool> {
        if self.root.is_some() {
            return Ok(true);
        }
        let key = format!("probe/{}", crate::id::Id::random().to_hex());
        self.put_new(&key, Bytes::from_static(b"first")).await?;
        let second = self.put_new(&key, Bytes::from_static(b"second")).await;
        let _ = self.delete(&key).await;
        Ok(second? == Put::Existed)
    }

    /// Writes an object, replacing any existing one. Only for lock objects, which are not
    /// content-addressed and each belong to one process.
    pub async fn put_replace(&self, key: &str, bytes: Bytes) -> Result<()> {
        if self.root.is_some() {
            return self
                .local("write", key, move |root, key| {
                    local::write(root, key, &bytes, true).map(|_| ())
                })
                .await;
        }
        self.store
            .put(&self.path(key), PutPayload::from(bytes))
            .await
            .map_err(|e| self.fail("write", key, e))?;
        self.retain(key).await
    }

    /// Deletes an object; a missing object is not an error.
    pub async fn delete(&self, key: &str) -> Result<()> {
        if self.root.is_some() {
            return self.local("delete", key, local::delete).await;
        }
        match self.store.delete(&self.path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.fail("delete", key, e)),
        }
    }
}

/// Walks an error's sources for the most telling line (a refused connection, a DNS failure, an
/// S3 error code), leaving out request URLs' query strings.
/// A store that could not be reached, said first and short, with what to do:
/// `cannot reach http://127.0.0.1:8333 (connection refused) after 6 tries; check the endpoint
/// and that the server is running`, from the client's "Error performing GET http://... in 2.4s,
/// after 6 retries, max_retries: 6, retry_timeout: 120s - HTTP error: ... Connection refused".
fn unreachable(text: &str) -> Option<String> {
    let lower = text.to_lowercase();
    let why = if lower.contains("connection refused") {
        "connection refused"
    } else if lower.contains("dns error") || lower.contains("failed to lookup address") {
        "the name does not resolve"
    } else if lower.contains("timed out") || lower.contains("timeout") && lower.contains("connect")
    {
        "no answer in time"
    } else if lower.contains("connection reset") {
        "connection reset"
    } else {
        return None;
    };
    let url = text
        .split_whitespace()
        .find(|w| w.starts_with("http://") || w.starts_with("https://"))
        .map(|u| {
            // Scheme and host only: the path names the bucket and object, said elsewhere.
            let rest = u.split_once("://").map_or(u, |(_, r)| r);
            let host = rest.split('/').next().unwrap_or(rest);
            format!("{}://{host}", u.split("://").next().unwrap_or("http"))
        })
        .unwrap_or_else(|| "the store".into());
    let tries = text
        .split("after ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok())
        .map(|n| {
            format!(
                " after {}",
                crate::plan::words::count_s(n, "try").replace("trys", "tries")
            )
        })
        .unwrap_or_default();
    Some(format!(
        "cannot reach {url} ({why}){tries}; check the endpoint, the network and that the server is running"
    ))
}

fn describe_generic(e: &(dyn std::error::Error + Send + Sync + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = s.source();
    }
    // S3 answers errors with an XML body: keep its Code and Message, not the request it echoes
    // (which names the access key id), and never more than one line.
    let joined = parts
        .iter()
        .map(|p| match (xml_field(p, "Code"), xml_field(p, "Message")) {
            (Some(code), Some(msg)) => format!("{code}: {msg}"),
            (Some(code), None) => code,
            _ => p.split('<').next().unwrap_or(p).to_string(),
        })
        .collect::<Vec<_>>()
        .join(": ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if let Some(short) = unreachable(&joined) {
        return short;
    }
    let hint = if joined.contains("onnection refused")
        || joined.contains("dns error")
        || joined.contains("timed out")
    {
        " (the target is unreachable: check the endpoint, the network and that the server is running)"
    } else if joined.contains("NoSuchBucket") {
        " (the bucket does not exist: check the bucket name)"
    } else if joined.contains("AccessDenied")
        || joined.contains("InvalidAccessKeyId")
        || joined.contains("SignatureDoesNotMatch")
    {
        " (the credentials were refused: check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
    } else {
        ""
    };
    format!("{joined}{hint}")
}

/// The name of remote targets' scratch directories: `firesafe-packs-PID-RANDOM`.
const SCRATCH_PREFIX: &str = "firesafe-packs-";

/// Removes the scratch directories that killed firesafe processes left in `base`: directories
/// (not links) owned by this user, named `firesafe-packs-PID-...` for a process that is gone.
fn remove_stale_scratch(base: &std::path::Path) {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    let me = nix::unistd::geteuid().as_raw();
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(SCRATCH_PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(meta) = std::fs::symlink_metadata(e.path()) else {
            continue;
        };
        if meta.file_type().is_dir()
            && meta.uid() == me
            && pid != std::process::id() as i32
            && process_is_gone(pid)
        {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Whether no process with this id exists on this machine.
fn process_is_gone(pid: i32) -> bool {
    // SAFETY: signal 0 sends nothing; it only asks whether the process exists.
    let rc = unsafe { nix::libc::kill(pid, 0) };
    rc != 0 && std::io::Error::last_os_error().raw_os_error() == Some(nix::libc::ESRCH)
}

/// A remote object's body as a blocking reader, for [`Target::read_with`]: it is downloaded as
/// it is read, with object_store's retries, and the first error is kept for the target to name.
struct Download {
    handle: tokio::runtime::Handle,
    body: futures::stream::BoxStream<'static, object_store::Result<Bytes>>,
    chunk: Bytes,
    failed: Option<object_store::Error>,
}

impl std::io::Read for Download {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            if self.failed.is_some() {
                return Err(std::io::Error::other("the download failed"));
            }
            match self.handle.block_on(self.body.try_next()) {
                Ok(Some(chunk)) => self.chunk = chunk,
                Ok(None) => return Ok(0),
                Err(e) => self.failed = Some(e),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

/// Opens an object of a local target, which anyone who can write the directory could have
/// replaced: a FIFO or device would block or never end, a link could point anywhere. The file is
/// opened without following a link and without blocking, and given back only if it is a plain
/// file (with its size); anything else is an error of kind `Other`. `None` if it does not exist.
fn open_plain_file(path: &std::path::Path) -> std::io::Result<Option<(std::fs::File, u64)>> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => {
            return Err(std::io::Error::other(
                "it is a symbolic link, not a plain file",
            ));
        }
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if meta.is_dir() {
        // A directory is no object, as a common prefix is none on object storage.
        return Ok(None);
    }
    if !meta.file_type().is_file() {
        return Err(std::io::Error::other(
            "it is not a plain file (a named pipe or a device)",
        ));
    }
    Ok(Some((file, meta.len())))
}
