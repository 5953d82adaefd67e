//! The SDK's one public error, and the single place internal errors map onto it.

use fruits_core::EmbedError;
use fruits_core::client::ClientError;
use fruits_core::queue::QueueError;
use fruits_core::sync::SyncError;
use fruits_core::taught::TaughtError;
use fruits_core::uploader::UploadError;

/// What an app catches (`FruitsException` in Kotlin, `FruitsError` in Swift and
/// Python). Each variant is one thing the app can act on; `detail` says what
/// happened, for logs.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum FruitsError {
    /// The photo is empty, corrupt, truncated, too large or in an unsupported format.
    #[error("invalid photo: {detail}")]
    InvalidPhoto {
        /// What is wrong with it.
        detail: String,
    },
    /// The embedding model could not be loaded or run.
    #[error("model: {detail}")]
    Model {
        /// What failed.
        detail: String,
    },
    /// An argument is unusable (wrong embedding length, bad label, bad key, ...).
    #[error("invalid input: {detail}")]
    InvalidInput {
        /// Which argument and why.
        detail: String,
    },
    /// The upload queue is full: flush (when online) before queueing more.
    #[error("upload queue full: {detail}")]
    QueueFull {
        /// The queue's size.
        detail: String,
    },
    /// Device storage failed (disk full, permissions, a damaged file).
    #[error("device storage: {detail}")]
    Storage {
        /// The failure.
        detail: String,
    },
    /// The network or the server is unavailable: retry later; nothing was lost.
    #[error("network: {detail}")]
    Network {
        /// The last failure.
        detail: String,
    },
    /// The server refused an upload for good (its error code is in `detail`).
    #[error("refused by the server: {detail}")]
    Refused {
        /// Status and the server's JSON error.
        detail: String,
    },
    /// A downloaded projection failed verification (signature, digest, model,
    /// rollback); the installed one is kept.
    #[error("verification failed: {detail}")]
    Verification {
        /// What did not verify.
        detail: String,
    },
    /// Recognition needs a synced projection with a recognition head, and none is
    /// installed (or the server has published none yet for this device's model).
    #[error("not ready: {detail}")]
    NotReady {
        /// What is missing.
        detail: String,
    },
}

impl From<EmbedError> for FruitsError {
    fn from(e: EmbedError) -> Self {
        let detail = e.to_string();
        match e {
            EmbedError::EmptyInput
            | EmbedError::UnknownFormat { .. }
            | EmbedError::UnsupportedFormat { .. }
            | EmbedError::Decode { .. }
            | EmbedError::ImageTooLarge { .. }
            | EmbedError::DecodedTooLarge { .. }
            | EmbedError::NotAPhoto { .. } => Self::InvalidPhoto { detail },
            EmbedError::Io { .. } => Self::Storage { detail },
            EmbedError::ModelChecksumMismatch { .. }
            | EmbedError::ManifestInvalid(_)
            | EmbedError::ModelShapeMismatch(_)
            | EmbedError::TensorShape { .. }
            | EmbedError::Inference(_) => Self::Model { detail },
        }
    }
}

impl From<QueueError> for FruitsError {
    fn from(e: QueueError) -> Self {
        let detail = e.to_string();
        match e {
            QueueError::Full(_) => Self::QueueFull { detail },
            QueueError::WrongDim { .. } | QueueError::NonFinite | QueueError::BadLabel(_) => {
                Self::InvalidInput { detail }
            }
            QueueError::Io(_) | QueueError::NotAQueue(_) | QueueError::NotHead(_) | QueueError::Format(_) => {
                Self::Storage { detail }
            }
        }
    }
}

impl From<ClientError> for FruitsError {
    fn from(e: ClientError) -> Self {
        let detail = e.to_string();
        match e {
            ClientError::Embed(e) => e.into(),
            ClientError::Queue(e) | ClientError::Upload(UploadError::Queue(e)) => e.into(),
            ClientError::Upload(UploadError::Refused { .. }) => Self::Refused { detail },
            ClientError::Upload(UploadError::GaveUp { .. } | UploadError::Client(_)) => Self::Network { detail },
            ClientError::Sync(SyncError::Http(_)) => Self::Network { detail },
            ClientError::Sync(SyncError::Io(_)) => Self::Storage { detail },
            ClientError::Sync(
                SyncError::Manifest(_)
                | SyncError::WrongModel { .. }
                | SyncError::Rollback { .. }
                | SyncError::BadKey(_)
                | SyncError::Verify(_),
            ) => Self::Verification { detail },
            ClientError::NoProjection
            | ClientError::NoRecognizer(_)
            | ClientError::Sync(SyncError::NothingPublished(_)) => Self::NotReady { detail },
            ClientError::Taught(
                TaughtError::BadLabel(_) | TaughtError::BadEmbedding { .. } | TaughtError::TooManyClasses,
            ) => Self::InvalidInput { detail },
            ClientError::Taught(TaughtError::Format(_) | TaughtError::Io(_)) => Self::Storage { detail },
            ClientError::WrongDim { .. } | ClientError::Config(_) | ClientError::Recognize(_) => {
                Self::InvalidInput { detail }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn photo_queue_and_network_failures_map_to_what_the_app_acts_on() {
        assert!(matches!(
            FruitsError::from(ClientError::Embed(EmbedError::EmptyInput)),
            FruitsError::InvalidPhoto { .. }
        ));
        assert!(matches!(FruitsError::from(ClientError::Queue(QueueError::Full(3))), FruitsError::QueueFull { .. }));
        let gave_up = UploadError::GaveUp { batch_id: "b".into(), attempts: 3, last: "connection refused".into() };
        assert!(matches!(FruitsError::from(ClientError::Upload(gave_up)), FruitsError::Network { .. }));
        let rollback = SyncError::Rollback { offered: 1, installed: 2 };
        assert!(matches!(FruitsError::from(ClientError::Sync(rollback)), FruitsError::Verification { .. }));
        let bad_label = ClientError::Taught(TaughtError::BadLabel(String::new()));
        assert!(matches!(FruitsError::from(bad_label), FruitsError::InvalidInput { .. }));
        let none_yet = ClientError::Sync(SyncError::NothingPublished("ab".repeat(32)));
        assert!(matches!(FruitsError::from(none_yet), FruitsError::NotReady { .. }));
        let e = FruitsError::from(ClientError::NoProjection);
        assert!(matches!(&e, FruitsError::NotReady { detail } if detail.contains("sync")), "{e}");
    }
}
