//! `filelog`: tailing files, with the `container` operator for the logs container runtimes
//! write under `/var/log/pods`.

pub mod checkpoint;
pub mod container;
