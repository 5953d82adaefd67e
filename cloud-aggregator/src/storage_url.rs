//! `--input` / `--output` / `--storage` values: a local directory or `s3://bucket/prefix`.

use crate::s3::{S3Config, S3Storage, normalize_prefix};
use crate::storage::{LocalDir, Storage};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// Where a storage lives, as parsed from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageUrl {
    /// A local directory.
    Local(PathBuf),
    /// A bucket and a key prefix (`""` or ending in `/`).
    S3 {
        /// The bucket.
        bucket: String,
        /// The key prefix.
        prefix: String,
    },
}

/// A storage URL that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageUrlError {
    /// Nothing was given.
    #[error("empty storage location")]
    Empty,
    /// `s3://` without a bucket name, or a bucket name S3 would refuse.
    #[error("bad S3 bucket in {0:?}: expected s3://bucket[/prefix]")]
    BadBucket(String),
    /// Another URL scheme.
    #[error("unsupported scheme in {0:?}: use a directory or s3://bucket/prefix")]
    UnsupportedScheme(String),
}

impl FromStr for StorageUrl {
    type Err = StorageUrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(StorageUrlError::Empty);
        }
        if let Some(rest) = s.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let valid = (3..=63).contains(&bucket.len())
                && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
            if !valid {
                return Err(StorageUrlError::BadBucket(s.to_owned()));
            }
            return Ok(Self::S3 { bucket: bucket.to_owned(), prefix: normalize_prefix(prefix) });
        }
        if s.contains("://") {
            return Err(StorageUrlError::UnsupportedScheme(s.to_owned()));
        }
        Ok(Self::Local(PathBuf::from(s)))
    }
}

impl fmt::Display for StorageUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Local(path) => write!(f, "{}", path.display()),
            Self::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

impl StorageUrl {
    /// Opens the storage; S3 takes endpoint, path style and region from the
    /// environment ([`S3Config::from_env`]).
    pub fn open(&self) -> std::io::Result<Box<dyn Storage + Send>> {
        Ok(match self {
            Self::Local(path) => Box::new(LocalDir::new(path)),
            Self::S3 { bucket, prefix } => Box::new(S3Storage::new(&S3Config::from_env(bucket, prefix))?),
        })
    }
}

/// One object: a file path or `s3://bucket/key`, so that steps run by a scheduler
/// (Spark on EMR) read and write their sketches wherever the run keeps them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectUrl {
    /// The storage holding it (a directory or a bucket prefix).
    pub storage: StorageUrl,
    /// Its key in that storage (one segment: the file name).
    pub key: String,
}

impl FromStr for ObjectUrl {
    type Err = StorageUrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (parent, key) = s.rsplit_once('/').unwrap_or(("", s));
        if key.is_empty() || key == "." || key == ".." {
            return Err(StorageUrlError::Empty);
        }
        let storage = match parent {
            "" => StorageUrl::Local(PathBuf::from(".")),
            "s3:/" => return Err(StorageUrlError::BadBucket(s.to_owned())),
            p if p.starts_with("s3://") || !p.contains("://") => format!("{p}/").parse()?,
            _ => return Err(StorageUrlError::UnsupportedScheme(s.to_owned())),
        };
        Ok(Self { storage, key: key.to_owned() })
    }
}

impl fmt::Display for ObjectUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.storage {
            StorageUrl::Local(dir) => write!(f, "{}", dir.join(&self.key).display()),
            s3 => write!(f, "{s3}{}", self.key),
        }
    }
}

impl ObjectUrl {
    /// The object's bytes.
    pub fn read(&self) -> std::io::Result<Vec<u8>> {
        self.storage.open()?.get(&self.key)
    }

    /// Stores `bytes` as the object, replacing it atomically.
    pub fn write(&self, bytes: &[u8]) -> std::io::Result<()> {
        self.storage.open()?.put(&self.key, bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_directories_and_buckets() {
        assert_eq!("data/x".parse(), Ok(StorageUrl::Local("data/x".into())));
        assert_eq!("s3://fruits".parse(), Ok(StorageUrl::S3 { bucket: "fruits".into(), prefix: String::new() }));
        assert_eq!("s3://fruits/".parse(), Ok(StorageUrl::S3 { bucket: "fruits".into(), prefix: String::new() }));
        assert_eq!("s3://fruits/a/b".parse(), Ok(StorageUrl::S3 { bucket: "fruits".into(), prefix: "a/b/".into() }));
        assert_eq!("s3://fruits/a/b".parse::<StorageUrl>().unwrap().to_string(), "s3://fruits/a/b/");
    }

    #[test]
    fn refuses_bad_locations() {
        assert_eq!("".parse::<StorageUrl>(), Err(StorageUrlError::Empty));
        assert!(matches!("s3://".parse::<StorageUrl>(), Err(StorageUrlError::BadBucket(_))));
        assert!(matches!("s3://Bad_Bucket/x".parse::<StorageUrl>(), Err(StorageUrlError::BadBucket(_))));
        assert!(matches!("gs://b/x".parse::<StorageUrl>(), Err(StorageUrlError::UnsupportedScheme(_))));
    }

    #[test]
    fn object_urls_split_into_storage_and_key() {
        let o: ObjectUrl = "s3://fruits/runs/r1/sketches/part-00001.sketch".parse().unwrap();
        assert_eq!(o.storage, StorageUrl::S3 { bucket: "fruits".into(), prefix: "runs/r1/sketches/".into() });
        assert_eq!(o.key, "part-00001.sketch");
        assert_eq!(o.to_string(), "s3://fruits/runs/r1/sketches/part-00001.sketch");
        let o: ObjectUrl = "s3://fruits/a.sketch".parse().unwrap();
        assert_eq!(
            (o.storage, o.key.as_str()),
            (StorageUrl::S3 { bucket: "fruits".into(), prefix: String::new() }, "a.sketch")
        );
        let o: ObjectUrl = "/tmp/x/all.sketch".parse().unwrap();
        assert_eq!((o.storage, o.key.as_str()), (StorageUrl::Local("/tmp/x/".into()), "all.sketch"));
        assert_eq!("all.sketch".parse::<ObjectUrl>().unwrap().storage, StorageUrl::Local(".".into()));
        for bad in ["", "s3://fruits/", "/tmp/x/", "s3://", "http://host/a.sketch", "s3://x/a"] {
            assert!(bad.parse::<ObjectUrl>().is_err(), "{bad}");
        }
    }
}
