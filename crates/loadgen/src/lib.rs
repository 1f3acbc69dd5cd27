//! loadgen: a load generator for HTTP servers, built for the todo servers of this workspace
//! and usable on any other (`loadgen run --url`). Closed and open loop, HDR latency, server
//! CPU and memory, JSON-lines records, and Markdown/SVG reports rendered from records alone.
//! The method it implements is summarised in the README ("How the comparison is measured").
//!
//! Its parts, as oha splits them: the wire (`harness::wire`), the engine ([`engine`],
//! [`workload`], [`soak`]), the results ([`measure`], [`monitor`], [`record`], [`checks`]),
//! the comparison's design ([`cell`]: randomized interleaved trials; [`stats`]: effect sizes
//! with confidence intervals) and the printer ([`report`], [`table`], [`svg`]).
//!
//! Programmatic use: build a [`measure::MeasureOptions`] and a [`measure::TargetSpec`], then call
//! [`measure::measure`] inside a multi-thread tokio runtime; append the [`record::Record`] with
//! [`record::append`]. The bare engine is [`engine::run`].

pub mod cell;
pub mod checks;
pub mod cost;
pub mod engine;
pub mod measure;
pub mod monitor;
pub mod record;
pub mod report;
pub mod soak;
pub mod stats;
pub mod svg;
pub mod table;
pub mod workload;
