//! Where documents that will not be indexed go instead of vanishing (`dead_letter:`): an index
//! or a local file, one entry per document with the error, the index it was meant for, and
//! the document itself as text (`event.original`), since the document as an object would
//! fail the same mapping again.

use std::path::PathBuf;

use serde::Deserialize;

use crate::config::ConfigError;

/// `dead_letter:`, exactly one of the two.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterConfig {
    /// An index or data stream that takes the entries (`create` actions).
    #[serde(default)]
    pub index: Option<String>,
    /// A local file the entries are appended to, one JSON line each, synced before the
    /// batches they came from are acknowledged.
    #[serde(default)]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub enum DeadLetter {
    Index(String),
    File(PathBuf),
}

impl DeadLetterConfig {
    /// The destination, or an error under `<path>.dead_letter`.
    pub fn target(&self, path: &str, errors: &mut Vec<ConfigError>) -> Option<DeadLetter> {
        match (&self.index, &self.file) {
            (Some(i), None) if !i.is_empty() => Some(DeadLetter::Index(i.clone())),
            (None, Some(f)) => Some(DeadLetter::File(f.clone())),
            _ => {
                errors.push(ConfigError::new(
                    format!("{path}.dead_letter"),
                    "set exactly one of index and file",
                ));
                None
            }
        }
    }
}

/// Why a document is dead-lettered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Why {
    /// The item's status; 0 when the whole request failed or retries ran out.
    pub status: u16,
    /// An Elasticsearch error type, an HTTP status, or `retries_exhausted`.
    pub kind: String,
    pub reason: String,
}

/// Appends the entry for one failed bulk item (its action and document lines), preceded by
/// a `create` action when it goes to `index`. `now` is the RFC 3339 time of the failure.
pub fn entry(out: &mut Vec<u8>, item: &[u8], why: &Why, now: &str, index: Option<&str>) {
    let (action, source) = split_item(item);
    if let Some(index) = index {
        let action = serde_json::json!({"create": {"_index": index}});
        let _ = serde_json::to_writer(&mut *out, &action);
        out.push(b'\n');
    }
    let entry = serde_json::json!({
        "@timestamp": now,
        "error": {"type": why.kind, "reason": why.reason, "status": why.status},
        "index": index_of(action),
        "event": {"original": String::from_utf8_lossy(source)},
    });
    let _ = serde_json::to_writer(&mut *out, &entry);
    out.push(b'\n');
}

/// Appends `body` to `file` and syncs it, off the async threads.
pub async fn append(file: PathBuf, body: Vec<u8>) -> std::io::Result<()> {
    tokio::task::spawn_blocking(move || {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&file)?;
        f.write_all(&body)?;
        f.sync_data()
    })
    .await
    .map_err(std::io::Error::other)?
}

/// An item's action line and document line.
pub fn split_item(item: &[u8]) -> (&[u8], &[u8]) {
    let cut = memchr::memchr(b'\n', item).unwrap_or(item.len());
    let source = item.get(cut + 1..).unwrap_or_default();
    let source = source.strip_suffix(b"\n").unwrap_or(source);
    (&item[..cut], source)
}

/// The `_index` an item's action line names.
pub fn index_of(item: &[u8]) -> String {
    let (action, _) = split_item(item);
    serde_json::from_slice::<serde_json::Value>(action)
        .ok()
        .and_then(|v| {
            v.as_object()?
                .values()
                .next()?
                .get("_index")?
                .as_str()
                .map(str::to_string)
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ITEM: &[u8] =
        b"{\"create\":{\"_index\":\"logs-a-default\",\"_id\":\"x\"}}\n{\"code\":\"oops\"}\n";

    #[test]
    fn items_split_into_action_and_source() {
        let (a, s) = split_item(ITEM);
        assert_eq!(s, b"{\"code\":\"oops\"}");
        assert_eq!(index_of(a), "logs-a-default");
        assert_eq!(index_of(ITEM), "logs-a-default");
    }

    #[test]
    fn an_entry_keeps_the_error_the_index_and_the_document_as_text() {
        let why = Why {
            status: 400,
            kind: "document_parsing_exception".into(),
            reason: "failed to parse field [code] of type [long]".into(),
        };
        let mut out = Vec::new();
        entry(
            &mut out,
            ITEM,
            &why,
            "2026-11-23T00:00:00Z",
            Some("logs-dlq"),
        );
        let lines: Vec<serde_json::Value> = out
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(
            lines,
            [
                serde_json::json!({"create": {"_index": "logs-dlq"}}),
                serde_json::json!({
                    "@timestamp": "2026-11-23T00:00:00Z",
                    "error": {"type": "document_parsing_exception", "status": 400,
                              "reason": "failed to parse field [code] of type [long]"},
                    "index": "logs-a-default",
                    "event": {"original": "{\"code\":\"oops\"}"}
                })
            ]
        );
    }
}
