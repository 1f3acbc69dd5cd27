//! loadgen: a load generator for the todo servers (closed/open loop, HDR latency, server
//! management, JSON-lines records, Markdown/SVG reports). See `/work/shared/benchmark-method.md`.
//!
//! Programmatic use: build a [`measure::MeasureOptions`] and a [`measure::TargetSpec`], then call
//! [`measure::measure`] inside a multi-thread tokio runtime; append the [`record::Record`] with
//! [`record::append`]. The bare engine is [`engine::run`].

pub mod checks;
pub mod engine;
pub mod http1;
pub mod measure;
pub mod record;
pub mod report;
pub mod server;
pub mod svg;
pub mod workload;
