//! The streaming PCA of the Fruits cloud, pure logic with no I/O, in data-path order:
//!
//! * [`scatter`]: the tiled `f32`-GEMM accumulator of a block's scatter matrix.
//! * [`sketch`]: the exact, mergeable sketch (rows, mean, scatter) of any number of
//!   shards, its stored form, and the fixed merge tree that keeps merges deterministic.
//! * [`eigen`]: the top eigenpairs of the covariance (randomized subspace iteration,
//!   or the exact decomposition).
//! * [`finalize`]: a sketch turned into a [`ProjectionArtifact`](fruits_formats::ProjectionArtifact)
//!   (mean, components, explained variance) and the variance thresholds.
//!
//! The aggregator (`fruits-aggregator`) reads shards from storage into these steps
//! and publishes what [`finalize`] returns.

// No panic reachable from input or from another request's failure (tests exempt).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod eigen;
pub mod finalize;
pub mod scatter;
pub mod sketch;
