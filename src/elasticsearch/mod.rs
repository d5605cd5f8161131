//! Elasticsearch: the parts of the `elasticsearch` exporter that do not talk to the network.
//! `routing` picks each record's index (a data stream or a static index); `mapping` writes
//! `_bulk` NDJSON in the `otel`, `ecs` or `raw` document shapes; `response` reads the answer
//! item by item; `retry` picks the items to send again and how long to wait.

pub mod mapping;
pub mod response;
pub mod retry;
pub mod routing;
