//! The S3 backend of [`Storage`]: one bucket, keys under an optional prefix.
//!
//! The [`Storage`] trait is synchronous and called from rayon worker threads, while
//! `aws-sdk-s3` is async. [`S3Storage`] therefore owns a small multi-threaded tokio
//! runtime (2 workers driving the connection pool and timers) and every trait call
//! `block_on`s one request on the calling thread. Many rayon threads may block at
//! once; each drives its own request. Do not call it from inside another tokio
//! runtime's async context (tokio refuses nested `block_on`): async callers use
//! `spawn_blocking`, as the ingest service does.
//!
//! Configuration ([`S3Config::from_env`]): region from `AWS_REGION` (default
//! `eu-west-3`), endpoint from `FRUITS_S3_ENDPOINT` (for Garage or MinIO),
//! path-style addressing when `FRUITS_S3_PATH_STYLE=1`, credentials from the
//! standard AWS chain (environment, profile, IMDS/ECS on EC2 and EMR).

use crate::storage::{Storage, check_key};
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use std::io;

/// Region used when neither the configuration nor `AWS_REGION` names one.
pub const DEFAULT_REGION: &str = "eu-west-3";

/// Where and how to reach the bucket.
#[derive(Debug, Clone, Default)]
pub struct S3Config {
    /// The bucket.
    pub bucket: String,
    /// Key prefix inside the bucket: `""` or ending in `/`.
    pub prefix: String,
    /// Region; `None` means `AWS_REGION`, then [`DEFAULT_REGION`].
    pub region: Option<String>,
    /// Endpoint URL for S3-compatible servers; `None` means AWS.
    pub endpoint: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`), needed by Garage.
    pub path_style: bool,
    /// Static access key id and secret; `None` means the default AWS chain.
    pub static_credentials: Option<(String, String)>,
}

impl S3Config {
    /// The bucket and prefix, with endpoint, path style and region from
    /// `FRUITS_S3_ENDPOINT`, `FRUITS_S3_PATH_STYLE` and `AWS_REGION`.
    pub fn from_env(bucket: &str, prefix: &str) -> Self {
        let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
        Self {
            bucket: bucket.to_owned(),
            prefix: normalize_prefix(prefix),
            region: var("AWS_REGION"),
            endpoint: var("FRUITS_S3_ENDPOINT"),
            path_style: var("FRUITS_S3_PATH_STYLE").is_some_and(|v| v == "1" || v == "true"),
            static_credentials: None,
        }
    }
}

/// `""` stays empty; anything else ends with exactly one `/` and has no leading `/`.
pub fn normalize_prefix(prefix: &str) -> String {
    let p = prefix.trim_matches('/');
    if p.is_empty() { String::new() } else { format!("{p}/") }
}

/// A bucket (under a prefix) as [`Storage`]; see the module docs for threading.
pub struct S3Storage {
    runtime: tokio::runtime::Runtime,
    client: Client,
    bucket: String,
    prefix: String,
}

impl std::fmt::Debug for S3Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "S3Storage(s3://{}/{})", self.bucket, self.prefix)
    }
}

fn other(context: &str, e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("{context}: {e}"))
}

impl S3Storage {
    /// Builds the client (no request is made until the first call).
    pub fn new(config: &S3Config) -> io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("fruits-s3")
            .enable_all()
            .build()?;
        let region = config
            .region
            .clone()
            .or_else(|| std::env::var("AWS_REGION").ok().filter(|r| !r.is_empty()))
            .unwrap_or_else(|| DEFAULT_REGION.to_owned());
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).region(Region::new(region));
        if let Some((id, secret)) = &config.static_credentials {
            loader = loader.credentials_provider(Credentials::new(id, secret, None, None, "fruits-static"));
        }
        let shared = runtime.block_on(loader.load());
        let mut builder = aws_sdk_s3::config::Builder::from(&shared).force_path_style(config.path_style);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        Ok(Self {
            runtime,
            client: Client::from_conf(builder.build()),
            bucket: config.bucket.clone(),
            prefix: normalize_prefix(&config.prefix),
        })
    }

    fn full_key(&self, key: &str) -> io::Result<String> {
        check_key(key)?;
        Ok(format!("{}{key}", self.prefix))
    }
}

impl Storage for S3Storage {
    fn list(&self, prefix: &str) -> io::Result<Vec<String>> {
        let full = format!("{}{prefix}", self.prefix);
        let mut pages = self.client.list_objects_v2().bucket(&self.bucket).prefix(&full).into_paginator().send();
        let mut keys = Vec::new();
        self.runtime.block_on(async {
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| other("listing", aws_sdk_s3::error::DisplayErrorContext(e)))?;
                for object in page.contents() {
                    if let Some(key) = object.key().and_then(|k| k.strip_prefix(&self.prefix)) {
                        keys.push(key.to_owned());
                    }
                }
            }
            Ok::<_, io::Error>(())
        })?;
        keys.sort();
        Ok(keys)
    }

    fn get(&self, key: &str) -> io::Result<Vec<u8>> {
        let full = self.full_key(key)?;
        self.runtime.block_on(async {
            let response = self.client.get_object().bucket(&self.bucket).key(&full).send().await.map_err(|e| {
                if e.as_service_error().is_some_and(|s| s.is_no_such_key()) {
                    io::Error::new(io::ErrorKind::NotFound, format!("no object {full}"))
                } else {
                    other(&format!("getting {full}"), aws_sdk_s3::error::DisplayErrorContext(e))
                }
            })?;
            let body = response.body.collect().await.map_err(|e| other(&format!("reading {full}"), e))?;
            Ok(body.into_bytes().to_vec())
        })
    }

    fn put(&self, key: &str, bytes: &[u8]) -> io::Result<()> {
        let full = self.full_key(key)?;
        self.runtime.block_on(async {
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(&full)
                .body(ByteStream::from(bytes.to_vec()))
                .send()
                .await
                .map_err(|e| other(&format!("putting {full}"), aws_sdk_s3::error::DisplayErrorContext(e)))?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_normalized() {
        assert_eq!(normalize_prefix(""), "");
        assert_eq!(normalize_prefix("/"), "");
        assert_eq!(normalize_prefix("a/b"), "a/b/");
        assert_eq!(normalize_prefix("/a/b/"), "a/b/");
    }
}
