//! The S3 side of targets: building the object_store client from the environment and the
//! shared credentials file, and S3 Object Lock retention, which object_store can neither set nor
//! read: a PutObjectRetention request, and a HEAD request that reads the object's retention
//! headers back, each presigned with the store's own signer.

use super::*;

/// Whether the environment hands credentials to the client another way (web identity or a
/// container's credentials endpoint), which the client then uses instead of a key.
fn delegated_credentials() -> bool {
    [
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ]
    .iter()
    .any(|v| std::env::var_os(v).is_some())
}

/// Opens an S3 target: the client from the AWS_* environment (or the shared credentials file),
/// with the target's retry and time-out settings and, where asked, object lock.
pub(super) fn open(
    name: &str,
    bucket: &str,
    prefix: &str,
    endpoint: Option<&str>,
    region: Option<&str>,
    options: &TargetOptions,
) -> Result<Target> {
    let retry = RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(15),
            base: 2.0,
        },
        max_retries: options.max_retries,
        retry_timeout: options.retry_timeout,
    };
    // Replacing the client options drops what from_env read into them, so carry
    // AWS_ALLOW_HTTP over by hand.
    let allow_http = std::env::var("AWS_ALLOW_HTTP").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    let client = ClientOptions::new()
        .with_allow_http(allow_http)
        .with_connect_timeout(options.connect_timeout)
        .with_timeout(options.request_timeout)
        .with_read_timeout(options.read_timeout);
    let mut builder = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_retry(retry)
        .with_client_options(client);
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
        match shared_credentials(name)? {
            Some(creds) => {
                builder = builder
                    .with_access_key_id(creds.access_key_id)
                    .with_secret_access_key(creds.secret_access_key);
                if let Some(token) = creds.session_token {
                    builder = builder.with_token(token);
                }
            }
            // With no key anywhere, the client would ask the cloud's instance metadata
            // address (169.254.169.254) for one: only when the target says it runs there.
            None if !options.instance_credentials && !delegated_credentials() => {
                return Err(Error::Target {
                    target: name.to_string(),
                    op: "configure",
                    path: format!("s3://{bucket}"),
                    detail: format!(
                        "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or a [{name}] or [default] profile in ~/.aws/credentials), or set instance_credentials = true in targets/{name}.toml on a cloud server"
                    ),
                    transient: false,
                });
            }
            None => {}
        }
    }
    if let Some(e) = endpoint {
        builder = builder.with_endpoint(e);
    }
    if let Some(r) = region {
        builder = builder.with_region(r);
    } else if std::env::var_os("AWS_REGION").is_none()
        && std::env::var_os("AWS_DEFAULT_REGION").is_none()
    {
        builder = builder.with_region("us-east-1");
    }
    let store = builder.build().map_err(|e| Error::Target {
        target: name.to_string(),
        op: "configure",
        path: format!("s3://{bucket}"),
        detail: format!(
            "{e} (set AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
        ),
        transient: false,
    })?;
    let store = Arc::new(store);
    // Every S3 target can read retention back (the report asks); only one with
    // `object_lock_days` sets it.
    let object_lock = Some(Arc::new(ObjectLock {
        s3: Arc::clone(&store),
        days: options.object_lock_days,
        http: reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .timeout(options.request_timeout)
            .build()
            .expect("an HTTP client with default TLS settings builds"),
    }));
    Ok(Target {
        name: name.to_string(),
        store,
        prefix: prefix.to_string(),
        multipart: true,
        root: None,
        object_lock,
        scratch: Arc::default(),
        answered: Arc::default(),
        first_answer: options.first_answer_timeout,
        transfers: options.transfers.unwrap_or(super::S3_TRANSFERS).max(1),
    })
}

/// S3 Object Lock on one S3 target: puts objects under retention after they are written (when
/// the target has `object_lock_days`), and reads an object's retention back.
pub(super) struct ObjectLock {
    s3: Arc<object_store::aws::AmazonS3>,
    days: Option<u32>,
    http: reqwest::Client,
}

/// An object's Object Lock retention as the store reports it now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retention {
    /// `COMPLIANCE` or `GOVERNANCE`.
    pub mode: String,
    pub until: DateTime<Utc>,
}

impl ObjectLock {
    /// Reads `path`'s retention back with a presigned HEAD request: S3 answers with the
    /// `x-amz-object-lock-mode` and `x-amz-object-lock-retain-until-date` headers when the
    /// object (its current version) carries retention, and without them when it does not.
    pub(super) async fn retention(
        &self,
        path: &StorePath,
    ) -> std::result::Result<Option<Retention>, String> {
        use object_store::signer::{Method, Signer};
        let url = self
            .s3
            .signed_url(Method::HEAD, path, Duration::from_secs(300))
            .await
            .map_err(|e| e.to_string())?;
        let response = self
            .http
            .head(url.as_str())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("HEAD answered {}", response.status()));
        }
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let (Some(mode), Some(until)) = (
            header("x-amz-object-lock-mode"),
            header("x-amz-object-lock-retain-until-date"),
        ) else {
            return Ok(None);
        };
        let until = DateTime::parse_from_rfc3339(&until)
            .map_err(|e| format!("retain-until date {until:?}: {e}"))?
            .with_timezone(&Utc);
        Ok(Some(Retention { mode, until }))
    }

    /// Sets COMPLIANCE retention until `days` from now on `path` (PutObjectRetention), with a
    /// request presigned by the store's own credentials; nothing without `object_lock_days`.
    pub(super) async fn retain(&self, path: &StorePath) -> std::result::Result<(), String> {
        use base64::Engine;
        use object_store::signer::{Method, SignedUrlOptions, Signer};
        use sha2::Digest;
        let Some(days) = self.days else {
            return Ok(());
        };
        let until = (Utc::now() + chrono::Duration::days(i64::from(days)))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Mode>COMPLIANCE</Mode><RetainUntilDate>{until}</RetainUntilDate></Retention>"
        );
        // S3 asks for a checksum of the body on this request.
        let checksum =
            base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(body.as_bytes()));
        let checksum = http::HeaderValue::from_str(&checksum).expect("base64 is a header value");
        let options = SignedUrlOptions::default()
            .with_query([("retention", "")])
            .with_signed_header(
                http::HeaderName::from_static("x-amz-checksum-sha256"),
                checksum.clone(),
            );
        let url = self
            .s3
            .signed_url_opts(Method::PUT, path, Duration::from_secs(300), &options)
            .await
            .map_err(|e| e.to_string())?;
        let response = self
            .http
            .put(url.as_str())
            .header("x-amz-checksum-sha256", checksum)
            .body(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if response.status().is_success() {
            return Ok(());
        }
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let code = xml_field(&text, "Code").unwrap_or_default();
        let message = xml_field(&text, "Message").unwrap_or_default();
        Err(format!(
            "{status} {code} {message} (object_lock_days is set: the bucket must have been created with object lock enabled)"
        ))
    }
}

/// Keys read from an AWS shared credentials file.
struct SharedCredentials {
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
}

/// Reads the profile `AWS_PROFILE` (or `default`) from `AWS_SHARED_CREDENTIALS_FILE` (or
/// `~/.aws/credentials`), used when the keys are not in the environment. A missing file is not an
/// error; a file without the profile or its keys is, since the user asked for it.
fn shared_credentials(target: &str) -> Result<Option<SharedCredentials>> {
    let explicit = std::env::var_os("AWS_SHARED_CREDENTIALS_FILE").map(PathBuf::from);
    let path = match explicit
        .clone()
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".aws/credentials")))
    {
        Some(p) => p,
        None => return Ok(None),
    };
    if !path.exists() && explicit.is_none() {
        return Ok(None);
    }
    let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".into());
    let fail = |detail: String| Error::Target {
        target: target.to_string(),
        op: "read credentials from",
        path: path.display().to_string(),
        detail,
        transient: false,
    };
    let ini = ini::Ini::load_from_file(&path).map_err(|e| fail(e.to_string()))?;
    let section = ini
        .section(Some(profile.as_str()))
        .ok_or_else(|| fail(format!("it has no [{profile}] profile (set AWS_PROFILE)")))?;
    let get = |k: &str| section.get(k).map(str::to_string);
    match (get("aws_access_key_id"), get("aws_secret_access_key")) {
        (Some(access_key_id), Some(secret_access_key)) => Ok(Some(SharedCredentials {
            access_key_id,
            secret_access_key,
            session_token: get("aws_session_token"),
        })),
        _ => Err(fail(format!(
            "profile [{profile}] lacks aws_access_key_id or aws_secret_access_key"
        ))),
    }
}

pub(super) fn xml_field(text: &str, tag: &str) -> Option<String> {
    let start = text.find(&format!("<{tag}>"))? + tag.len() + 2;
    let end = text[start..].find(&format!("</{tag}>"))? + start;
    Some(text[start..end].to_string())
}
