//! Which index a document goes to: a static index (`logs_index`, `traces_index`,
//! `metrics_index`), or the data stream `<type>-<dataset>-<namespace>` named by the
//! `data_stream.dataset` / `data_stream.namespace` attributes (the record's, span's or data
//! point's first, then the scope's, then the resource's), as the OTel Collector's Elasticsearch
//! exporter routes.

use crate::model::{KeyValue, LogRecord, Origin, Value};

pub const DATASET: &str = "data_stream.dataset";
pub const NAMESPACE: &str = "data_stream.namespace";
/// An index named per record (or span, data point), as the Collector's exporter takes it:
/// ahead of the data stream attributes and the configured static index.
pub const INDEX: &str = "elasticsearch.index";
/// A log record's own document `_id` (used with `logs_dynamic_id`).
pub const DOCUMENT_ID: &str = "elasticsearch.document_id";
/// A log record's own ingest pipeline (used with `logs_dynamic_pipeline`).
pub const PIPELINE: &str = "elasticsearch.ingest_pipeline";

/// The dataset the Collector's exporter takes from a receiver's scope name, ahead of any
/// `data_stream.dataset` attribute: `hostmetricsreceiver` for
/// `github.com/open-telemetry/opentelemetry-collector-contrib/receiver/hostmetricsreceiver/internal/scraper/cpuscraper`
/// (its pattern `/receiver/(\w*receiver)`). Kibana's integrations read these data streams
/// (`metrics-kubeletstatsreceiver.otel-*` for the Kubernetes dashboards), and sluice's own
/// `kubeletstats` and `k8s_events` use the Collector receivers' scope names for that reason.
pub fn receiver_dataset(scope_name: &str) -> Option<&str> {
    const MARK: &str = "/receiver/";
    let mut from = 0;
    while let Some(i) = scope_name[from..].find(MARK) {
        let start = from + i + MARK.len();
        let word_len = scope_name[start..]
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
            .count();
        let word = &scope_name[start..start + word_len];
        if let Some(end) = word.rfind("receiver") {
            return Some(&word[..end + "receiver".len()]);
        }
        from += i + 1;
    }
    None
}

/// The attribute values that decide a document's index: dataset, namespace, and an index named
/// outright.
pub type Parts<'a> = (Option<&'a str>, Option<&'a str>, Option<&'a str>);
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
        let (dataset, namespace, _) = Self::parts(r, origin);
        DataStream::from_parts((dataset, namespace), suffix)
    }

    /// The attribute values that name the stream, as written (no allocation): what callers
    /// compare to reuse the last stream.
    pub fn parts<'a>(r: &'a LogRecord, origin: &'a Origin) -> Parts<'a> {
        let find = |key: &str| {
            string_attr(&r.attributes, key)
                .or_else(|| string_attr(&origin.scope_attributes, key))
                .or_else(|| string_attr(&origin.resource, key))
        };
        (find(DATASET), find(NAMESPACE), find(INDEX))
    }

    /// The stream the attribute values name, sanitised as the Collector does: the `suffix` is
    /// always appended (a dataset already ending in `.otel` gets a second one, as there), after
    /// the dataset is cut to leave room for it.
    pub fn from_parts(parts: (Option<&str>, Option<&str>), suffix: &str) -> DataStream {
        DataStream {
            dataset: sanitize(
                parts.0.unwrap_or(DEFAULT_DATASET),
                DATASET_DISALLOWED,
                suffix,
            ),
            namespace: sanitize(
                parts.1.unwrap_or(DEFAULT_NAMESPACE),
                NAMESPACE_DISALLOWED,
                "",
            ),
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

pub(super) fn string_attr<'a>(
    attrs: impl IntoIterator<Item = &'a KeyValue>,
    key: &str,
) -> Option<&'a str> {
    attrs.into_iter().find_map(|(k, v)| match v {
        Value::Str(s) if k.as_str() == key && !s.is_empty() => Some(s.as_str()),
        _ => None,
    })
}

/// What may not appear in a data stream's dataset or namespace (the ECS `data_stream` field
/// rules); each becomes `_`. A dataset may not hold `-` either, since it separates the parts of
/// the stream's name; a namespace may.
const DATASET_DISALLOWED: &[char] = &[
    '-', '\\', '/', '*', '?', '"', '<', '>', '|', ' ', ',', '#', ':',
];
const NAMESPACE_DISALLOWED: &[char] =
    &['\\', '/', '*', '?', '"', '<', '>', '|', ' ', ',', '#', ':'];

/// A dataset or namespace as an index name may hold it: lower case (Unicode, since an index name
/// may not hold an upper-case letter of any script), the disallowed characters replaced, cut to
/// leave `suffix` within 100 bytes (on a character boundary), then `suffix`.
pub fn sanitize(part: &str, disallowed: &[char], suffix: &str) -> String {
    let mut out = String::with_capacity(part.len() + suffix.len());
    for c in part.chars() {
        if disallowed.contains(&c) {
            out.push('_');
        } else {
            out.extend(c.to_lowercase());
        }
    }
    let room = 100usize.saturating_sub(suffix.len());
    if out.len() > room {
        let mut cut = room;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    out.push_str(suffix);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receivers_scope_name_gives_the_dataset_as_the_collectors_pattern_does() {
        let contrib = "github.com/open-telemetry/opentelemetry-collector-contrib";
        let cases = [
            (
                format!("{contrib}/receiver/hostmetricsreceiver/internal/scraper/cpuscraper"),
                Some("hostmetricsreceiver"),
            ),
            (
                format!("{contrib}/receiver/kubeletstatsreceiver"),
                Some("kubeletstatsreceiver"),
            ),
            (
                "x/receiver/fooreceiverbar/y".to_string(),
                Some("fooreceiver"),
            ),
            (
                "x/receiver/notone/receiver/k8seventsreceiver".to_string(),
                Some("k8seventsreceiver"),
            ),
            ("x/receiver/".to_string(), None),
            ("io.opentelemetry.http".to_string(), None),
        ];
        for (scope, want) in &cases {
            assert_eq!(receiver_dataset(scope), *want, "{scope}");
        }
    }
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
    fn datasets_and_namespaces_are_sanitised_as_the_collector_does() {
        let stream = |d: &str, n: &str, suffix| DataStream::from_parts((Some(d), Some(n)), suffix);
        let s = stream("My-App/Logs #1", "Prod-EU", ".otel");
        assert_eq!(
            s.dataset, "my_app_logs__1.otel",
            "a dataset may not hold '-'"
        );
        assert_eq!(s.namespace, "prod-eu", "a namespace may");
        assert_eq!(s.index_of("logs"), "logs-my_app_logs__1.otel-prod-eu");
        assert_eq!(
            stream("nginx.otel", "default", ".otel").dataset,
            "nginx.otel.otel",
            "the suffix is always added"
        );
        let long = stream(&"x".repeat(300), &"y".repeat(300), ".otel");
        assert_eq!(long.dataset, format!("{}.otel", "x".repeat(95)));
        assert_eq!(long.namespace.len(), 100);
        assert_eq!(
            stream("ÄPFEL", "Ωmega", "").dataset,
            "äpfel",
            "Unicode lower-casing: an index name may hold no capital of any script"
        );
        assert_eq!(stream("a", "Ωmega", "").namespace, "ωmega");
        let cut = stream(&"é".repeat(60), "n", ".otel").dataset;
        assert!(
            cut.len() <= 100 && cut.ends_with(".otel"),
            "cut on a character boundary"
        );
    }
}
