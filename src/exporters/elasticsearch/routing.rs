//! Which index a document goes to: a static index (`logs_index`, `traces_index`,
//! `metrics_index`), or the data stream `<type>-<dataset>-<namespace>` named by the
//! `data_stream.dataset` / `data_stream.namespace` attributes (the record's, span's or data
//! point's first, then the scope's, then the resource's), as the OTel Collector's Elasticsearch
//! exporter routes.

use crate::model::{KeyValue, LogRecord, Origin, Value};

pub const DATASET: &str = "data_stream.dataset";
pub const NAMESPACE: &str = "data_stream.namespace";
const DEFAULT_DATASET: &str = "generic";
const DEFAULT_NAMESPACE: &str = "default";

/// A data stream's parts, sanitised for Elasticsearch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataStream {
    pub dataset: String,
    pub namespace: String,
}

impl DataStream {
    /// The stream for `r`; `suffix` (`.otel` in otel mode) is appended to the dataset, as the
    /// Collector does so that OTel-shaped documents get the `logs-*.otel-*` index template.
    pub fn of(r: &LogRecord, origin: &Origin, suffix: &str) -> DataStream {
        DataStream::from_parts(Self::parts(r, origin), suffix)
    }

    /// The attribute values that name the stream, as written (no allocation): what callers
    /// compare to reuse the last stream.
    pub fn parts<'a>(r: &'a LogRecord, origin: &'a Origin) -> (Option<&'a str>, Option<&'a str>) {
        let find = |key: &str| {
            string_attr(&r.attributes, key)
                .or_else(|| string_attr(&origin.scope_attributes, key))
                .or_else(|| string_attr(&origin.resource, key))
        };
        (find(DATASET), find(NAMESPACE))
    }

    pub fn from_parts(parts: (Option<&str>, Option<&str>), suffix: &str) -> DataStream {
        let mut dataset = sanitize(parts.0.unwrap_or(DEFAULT_DATASET));
        if !dataset.ends_with(suffix) {
            dataset.push_str(suffix);
        }
        DataStream {
            dataset,
            namespace: sanitize(parts.1.unwrap_or(DEFAULT_NAMESPACE)),
        }
    }

    /// The logs data stream's name.
    pub fn index(&self) -> String {
        self.index_of("logs")
    }

    /// The name of the data stream of type `kind` (`logs`, `traces`, `metrics`).
    pub fn index_of(&self, kind: &str) -> String {
        format!("{kind}-{}-{}", self.dataset, self.namespace)
    }
}

fn string_attr<'a>(attrs: impl IntoIterator<Item = &'a KeyValue>, key: &str) -> Option<&'a str> {
    attrs.into_iter().find_map(|(k, v)| match v {
        Value::Str(s) if k.as_str() == key && !s.is_empty() => Some(s.as_str()),
        _ => None,
    })
}

/// Elasticsearch index names are lower case, at most 255 bytes, and may not hold
/// `\ / * ? " < > | , #`, spaces or (inside a data stream part) `-`: those become `_`, and each
/// part is cut to 100 bytes, as the Collector does.
pub fn sanitize(part: &str) -> String {
    let mut out: String = part
        .chars()
        .map(|c| match c {
            '\\' | '/' | '*' | '?' | '"' | '<' | '>' | '|' | ',' | '#' | ' ' | '-' | ':' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect();
    if out.len() > 100 {
        let mut cut = 100;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Str;

    fn attr(k: &'static str, v: &str) -> KeyValue {
        (Str::from_static(k), Value::Str(Str::from(v.to_string())))
    }

    #[test]
    fn the_record_wins_over_scope_and_resource_and_defaults_fill_in() {
        let origin = Origin {
            resource: vec![attr(DATASET, "from.resource"), attr(NAMESPACE, "prod")].into(),
            scope_attributes: vec![attr(DATASET, "from.scope")].into(),
            ..Default::default()
        };
        let mut r = LogRecord::default();
        assert_eq!(
            DataStream::of(&r, &origin, ".otel").index(),
            "logs-from.scope.otel-prod"
        );
        r.attributes.push(attr(DATASET, "nginx.access"));
        assert_eq!(
            DataStream::of(&r, &origin, "").index(),
            "logs-nginx.access-prod"
        );
        let bare = DataStream::of(&LogRecord::default(), &Origin::default(), ".otel");
        assert_eq!(bare.index(), "logs-generic.otel-default");
    }

    #[test]
    fn names_are_sanitised() {
        assert_eq!(sanitize("My-App/Logs #1"), "my_app_logs__1");
        assert_eq!(sanitize(&"x".repeat(300)).len(), 100);
    }
}
