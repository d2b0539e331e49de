//! Plumbing shared by the three operators, so that each binary only wires its own controller:
//! the command line, logging, the health and metrics endpoints, leader election through a Lease,
//! the controller loop, the apply, condition and label helpers, and the workload object skeletons.

pub mod apply;
pub mod bridge;
pub mod cached_deployment;
pub mod cli;
pub mod conditions;
pub mod controller;
pub mod database;
pub mod error;
pub mod events;
#[cfg(any(test, feature = "testing"))]
pub mod fuzzing;
pub mod grant;
pub mod health;
pub mod http;
pub mod input;
pub mod labels;
pub mod leader;
pub mod logging;
pub mod metrics;
pub mod pace;
pub mod pipeline;
pub mod random;
pub mod reconciled;
pub mod registration_file;
pub mod retained;
pub mod rollout;
pub mod runtime;
pub mod subject;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod unseen;
pub mod watch;
pub mod wiring;
pub mod workload;
pub mod yaml11;
