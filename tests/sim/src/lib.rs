//! The desktop simulation of the product, a library that `fruits` and the end-to-end
//! tests share:
//!
//! * [`dataset`]: Fruits-360-style data sets, read from disk or built offline from real
//!   fruit photos (views of each photo, split by photo);
//! * [`emulate`]: many phones, each running the SDK's own code path, against a local
//!   cloud (ingest and the aggregator in-process);
//! * [`measure`]: the views recognition is measured on, rendered in memory.

// No panic reachable from input or from another request's failure (tests exempt).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod dataset;
pub mod emulate;
pub mod measure;
