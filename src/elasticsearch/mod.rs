//! Elasticsearch: the parts of the `elasticsearch` exporter. `routing` picks each record's
//! index (a data stream or a static index); `mapping` writes `_bulk` NDJSON in the `otel`,
//! `ecs` or `raw` document shapes; `bulk` sends it and settles every item, reading answers
//! with `response`, retrying as `retry` says and storing what will not be indexed with
//! `dead_letter`.

pub mod bulk;
pub mod dead_letter;
pub mod mapping;
pub mod response;
pub mod retry;
pub mod routing;
