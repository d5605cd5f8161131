//! Reading a `_bulk` answer item by item. Elasticsearch answers 200 even when items failed:
//! `errors: true` and, per item in request order, `{"create": {"status": 429, "error":
//! {"type": "es_rejected_execution_exception", "reason": "..."}}}`. Dropping those (Vector
//! #11359) or re-sending the whole request (duplicates, Fluent Bit #5145) are the classic
//! mistakes; this says, for every item, whether it is done, to be retried, or failed for good.

use serde::Deserialize;

/// What became of one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// Indexed (201), or already there: 409 on `create` means a document with that `_id`
    /// exists, i.e. an earlier attempt whose answer was lost indexed it. With ids assigned by
    /// the exporter, counting it done is what makes such retries exactly-once.
    Done,
    /// Failed with a status that `retry_on_status` lists: re-send this item alone.
    Retry { status: u16, kind: String },
    /// Failed for good (a mapping conflict, a 400): count, log, dead-letter.
    Permanent {
        status: u16,
        kind: String,
        reason: String,
    },
}

/// Why a `_bulk` answer could not be read item by item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    #[error("the _bulk answer is not the documented JSON: {0}")]
    Malformed(String),
    #[error("the _bulk answer has {got} items for {sent} sent")]
    Count { got: usize, sent: usize },
}

#[derive(Deserialize)]
struct Bulk<'a> {
    #[serde(borrow, default)]
    items: Vec<std::collections::BTreeMap<&'a str, Outcome<'a>>>,
}

#[derive(Deserialize)]
struct Outcome<'a> {
    status: u16,
    #[serde(borrow, default)]
    error: Option<ErrorBody<'a>>,
}

#[derive(Deserialize)]
struct ErrorBody<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    reason: Option<std::borrow::Cow<'a, str>>,
}

/// Reads the answer to a request of `sent` items. Every answer is checked item by item: it
/// must hold exactly `sent` items, and an item is done only if its own status says so, whatever
/// the top-level `errors` says.
pub fn items(body: &[u8], sent: usize, retry_on: &[u16]) -> Result<Vec<Item>, ResponseError> {
    if head_says_no_errors(body) && every_status_is_success(body, sent) {
        return Ok(vec![Item::Done; sent]);
    }
    let bulk: Bulk<'_> =
        serde_json::from_slice(body).map_err(|e| ResponseError::Malformed(e.to_string()))?;
    if bulk.items.len() != sent {
        return Err(ResponseError::Count {
            got: bulk.items.len(),
            sent,
        });
    }
    let mut out = Vec::with_capacity(sent);
    for item in &bulk.items {
        // One key: the action (`create`, `index`, ...).
        let Some(o) = item.values().next() else {
            return Err(ResponseError::Malformed("an empty item".into()));
        };
        let kind = || {
            o.error
                .as_ref()
                .map(|e| e.kind.to_string())
                .unwrap_or_default()
        };
        out.push(match o.status {
            200..=299 | 409 => Item::Done,
            s if retry_on.contains(&s) => Item::Retry {
                status: s,
                kind: kind(),
            },
            s => Item::Permanent {
                status: s,
                kind: kind(),
                reason: o
                    .error
                    .as_ref()
                    .and_then(|e| e.reason.as_deref())
                    .unwrap_or("")
                    .to_string(),
            },
        });
    }
    Ok(out)
}

/// The fast check of an answer whose head says `errors: false`, so that nearly every answer
/// is not parsed item by item (for a 5 MB request that is ~10,000 items of JSON): exactly
/// `sent` `"status":` keys, each a 2xx, and the document closed. The key cannot occur inside a
/// JSON string (its quotes would be escaped there), and a successful item has no other
/// `status`, so the count is the item count. Anything else takes the full parse.
fn every_status_is_success(body: &[u8], sent: usize) -> bool {
    const KEY: &[u8] = b"\"status\":";
    if !body.trim_ascii_end().ends_with(b"}") {
        return false;
    }
    let mut seen = 0;
    for at in memchr::memmem::find_iter(body, KEY) {
        let value = body[at + KEY.len()..].trim_ascii_start();
        let success = matches!(value, [b'2', b'0'..=b'9', b'0'..=b'9', rest @ ..]
            if !rest.first().is_some_and(u8::is_ascii_digit));
        if !success {
            return false;
        }
        seen += 1;
    }
    seen == sent
}

/// Whether the answer opens with `{"took":N,"errors":false` (the order Elasticsearch writes),
/// so that a fully successful answer, nearly every answer, is not parsed item by item: for a
/// 5 MB request that is ~10,000 items of JSON. Anything else takes the full parse.
fn head_says_no_errors(body: &[u8]) -> bool {
    let head = &body[..body.len().min(64)];
    let Some(at) = memchr::memmem::find(head, b"\"errors\"") else {
        return false;
    };
    // Top level only: nothing nested may open before it.
    if head[..at].iter().filter(|b| **b == b'{').count() != 1 || head[0] != b'{' {
        return false;
    }
    let rest = head[at + 8..].trim_ascii_start();
    let Some(rest) = rest.strip_prefix(b":") else {
        return false;
    };
    let rest = rest.trim_ascii_start();
    rest.starts_with(b"false") && matches!(rest.get(5), Some(b',' | b'}' | b' ' | b'\n'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RETRY: &[u16] = &[429, 502, 503, 504];

    /// The shape of the Elasticsearch reference's `_bulk` example answer with errors.
    const MIXED: &str = r#"{
      "took": 486,
      "errors": true,
      "items": [
        {"create": {"_index": "logs-app-default", "_id": "1", "_version": 1, "result": "created",
                    "_shards": {"total": 1, "successful": 1, "failed": 0}, "_seq_no": 0,
                    "_primary_term": 1, "status": 201}},
        {"create": {"_index": "logs-app-default", "_id": "2", "status": 429,
                    "error": {"type": "es_rejected_execution_exception",
                              "reason": "rejected execution of coordinating operation"}}},
        {"create": {"_index": "logs-app-default", "_id": "3", "status": 400,
                    "error": {"type": "document_parsing_exception",
                              "reason": "[1:42] failed to parse field [http.response.status_code] of type [long]"}}},
        {"create": {"_index": "logs-app-default", "_id": "4", "status": 409,
                    "error": {"type": "version_conflict_engine_exception",
                              "reason": "[4]: version conflict, document already exists"}}}
      ]
    }"#;

    #[test]
    fn each_item_is_done_retried_or_failed_for_good() {
        let got = items(MIXED.as_bytes(), 4, RETRY).unwrap();
        assert_eq!(got[0], Item::Done);
        assert_eq!(
            got[1],
            Item::Retry {
                status: 429,
                kind: "es_rejected_execution_exception".into()
            }
        );
        assert!(matches!(
            &got[2],
            Item::Permanent { status: 400, kind, reason }
                if kind == "document_parsing_exception" && reason.contains("status_code")
        ));
        assert_eq!(got[3], Item::Done, "a create that already happened");
    }

    #[test]
    fn no_errors_means_every_item_is_done() {
        let ok = r#"{"took":3,"errors":false,"items":[{"create":{"status":201}}]}"#;
        assert_eq!(items(ok.as_bytes(), 1, RETRY).unwrap(), [Item::Done]);
    }

    #[test]
    fn the_no_errors_fast_path_reads_only_a_top_level_errors_false() {
        assert!(head_says_no_errors(
            br#"{"took":3,"errors":false,"items":[]}"#
        ));
        assert!(head_says_no_errors(b"{\"took\": 3, \"errors\" : false }"));
        assert!(!head_says_no_errors(
            br#"{"took":3,"errors":true,"items":[]}"#
        ));
        assert!(!head_says_no_errors(
            br#"{"items":[{"errors":false}],"errors":true}"#
        ));
        assert!(!head_says_no_errors(br#"{"took":3,"errors":falsey}"#));
        assert!(!head_says_no_errors(b""));
        // Elsewhere than the head: the full parse still finds it.
        let late = br#"{"items":[{"create":{"status":201}}],"errors":false}"#;
        assert_eq!(items(late, 1, RETRY).unwrap(), [Item::Done]);
    }

    #[test]
    fn an_answer_saying_no_errors_is_still_checked_item_by_item() {
        let ok = |n: usize| {
            let item = r#"{"create":{"_index":"logs-a-default","_id":"x","status":201}}"#;
            format!(
                r#"{{"took":1,"errors":false,"items":[{}]}}"#,
                vec![item; n].join(",")
            )
        };
        assert_eq!(
            items(ok(10).as_bytes(), 10, RETRY).unwrap(),
            vec![Item::Done; 10]
        );
        // Nine items for ten documents, none, or a cut answer: which were stored is unknown.
        assert!(matches!(
            items(ok(9).as_bytes(), 10, RETRY),
            Err(ResponseError::Count { got: 9, sent: 10 })
        ));
        assert!(matches!(
            items(br#"{"took":1,"errors":false,"items":[]}"#, 10, RETRY),
            Err(ResponseError::Count { got: 0, sent: 10 })
        ));
        assert!(matches!(
            items(br#"{"took":1,"errors":false,"items":[]}"#, 1, RETRY),
            Err(ResponseError::Count { got: 0, sent: 1 })
        ));
        assert!(matches!(
            items(b"{\"took\":1,\"errors\":false,\x00garbage", 10, RETRY),
            Err(ResponseError::Malformed(_))
        ));
        assert!(matches!(
            items(br#"{"took":1,"errors":false,"#, 1, RETRY),
            Err(ResponseError::Malformed(_))
        ));
        // An item that failed under a top level that says it did not: its own status rules.
        let lying = r#"{"took":1,"errors":false,"items":[{"create":{"status":201}},
            {"create":{"status":429,"error":{"type":"es_rejected_execution_exception"}}}]}"#;
        assert_eq!(
            items(lying.as_bytes(), 2, RETRY).unwrap(),
            [
                Item::Done,
                Item::Retry {
                    status: 429,
                    kind: "es_rejected_execution_exception".into()
                }
            ]
        );
        // A status of more digits is no 2xx.
        assert!(!every_status_is_success(
            br#"{"items":[{"create":{"status":2010}}]}"#,
            1
        ));
    }

    #[test]
    fn answers_that_do_not_match_the_request_are_errors() {
        assert!(matches!(
            items(MIXED.as_bytes(), 5, RETRY),
            Err(ResponseError::Count { got: 4, sent: 5 })
        ));
        assert!(matches!(
            items(b"<html>", 1, RETRY),
            Err(ResponseError::Malformed(_))
        ));
    }
}
