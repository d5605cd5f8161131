//! Cutting one encoded `ResourceLogs` / `ResourceSpans` / `ResourceMetrics` in two, so a batch
//! of encoded telemetry can be split at `send_batch_max_size` even inside one large resource.
//!
//! Both halves keep the resource (and each cut scope keeps its scope): they are re-framed from
//! the received bytes, field by field, without decoding anything else. The unit is a log
//! record or a span; for metrics it is a whole `ScopeMetrics`: the data points of one scope
//! that share a timestamp and attributes make one Elasticsearch time series document, and a cut
//! between them would make two documents of one series.

use std::ops::Range;

use bytes::Bytes;

use super::wire::{Fields, Wire, len_field_size, put_len};

/// A message as the ranges of its fields' encodings (tag included), in order.
type Raw = Vec<Range<usize>>;

/// One scope: its own fields (scope, schema_url, unknown) and its units with their items.
struct Scope {
    header: Raw,
    units: Vec<(Range<usize>, usize)>,
}

/// Cuts `entry` (one top-level field, tag included, holding `total` items) so that the first
/// part holds at most `want` items and at least one unit. `items_of(unit)` counts a unit's
/// items. Returns `None` when no cut is possible (one unit holds everything) or the bytes do
/// not parse (they were checked already, so that does not happen).
pub fn cut(
    entry: &Bytes,
    want: usize,
    whole_scopes: bool,
    items_of: impl Fn(&[u8]) -> usize,
) -> Option<((Bytes, usize), (Bytes, usize))> {
    let mut top = Fields::new(entry, 0, entry.len());
    let (1, Wire::Len(rs, re)) = top.next_field().ok()?? else {
        return None;
    };
    let mut header: Raw = Vec::new();
    let mut scopes: Vec<Scope> = Vec::new();
    let mut f = Fields::new(entry, rs, re);
    loop {
        let at = f.pos();
        let Some((field, wire)) = f.next_field().ok()? else {
            break;
        };
        match (field, wire) {
            (2, Wire::Len(ss, se)) => scopes.push(scope(entry, ss, se, &items_of)?),
            _ => header.push(at..f.pos()),
        }
    }

    // Units go to the first part while they fit (and at least one does).
    let mut first: Vec<Scope> = Vec::new();
    let mut second: Vec<Scope> = Vec::new();
    let mut taken = 0usize;
    let mut full = false;
    for mut s in scopes {
        if full {
            second.push(s);
            continue;
        }
        if whole_scopes {
            let n: usize = s.units.iter().map(|u| u.1).sum();
            if taken > 0 && taken + n > want {
                full = true;
                second.push(s);
            } else {
                taken += n;
                first.push(s);
            }
            continue;
        }
        let mut j = 0;
        while j < s.units.len() {
            let n = s.units[j].1;
            if taken > 0 && taken + n > want {
                full = true;
                break;
            }
            taken += n;
            j += 1;
        }
        if j == s.units.len() {
            first.push(s);
        } else if j == 0 {
            second.push(s);
        } else {
            let rest = s.units.split_off(j);
            second.push(Scope {
                header: s.header.clone(),
                units: rest,
            });
            first.push(s);
        }
    }
    let rest: usize = second.iter().flat_map(|s| &s.units).map(|u| u.1).sum();
    if first.is_empty() || rest == 0 {
        return None;
    }
    Some((
        (resource(entry, &header, &first), taken),
        (resource(entry, &header, &second), rest),
    ))
}

fn scope(buf: &[u8], s: usize, e: usize, items_of: &impl Fn(&[u8]) -> usize) -> Option<Scope> {
    let mut out = Scope {
        header: Vec::new(),
        units: Vec::new(),
    };
    let mut f = Fields::new(buf, s, e);
    loop {
        let at = f.pos();
        let Some((field, wire)) = f.next_field().ok()? else {
            return Some(out);
        };
        match (field, wire) {
            (2, Wire::Len(us, ue)) => out.units.push((at..f.pos(), items_of(&buf[us..ue]))),
            _ => out.header.push(at..f.pos()),
        }
    }
}

fn size(ranges: &[Range<usize>]) -> usize {
    ranges.iter().map(|r| r.len()).sum()
}

fn scope_size(s: &Scope) -> usize {
    size(&s.header) + s.units.iter().map(|u| u.0.len()).sum::<usize>()
}

/// `field 1 { header.., field 2 { scope.. }.. }`, from the ranges of `buf`.
fn resource(buf: &[u8], header: &[Range<usize>], scopes: &[Scope]) -> Bytes {
    let body = size(header)
        + scopes
            .iter()
            .map(|s| len_field_size(scope_size(s)))
            .sum::<usize>();
    let mut out = Vec::with_capacity(len_field_size(body));
    put_len(&mut out, 1, body);
    // The resource's own fields first; their order among the scopes does not matter.
    for r in header {
        out.extend_from_slice(&buf[r.clone()]);
    }
    for s in scopes {
        put_len(&mut out, 2, scope_size(s));
        for r in &s.header {
            out.extend_from_slice(&buf[r.clone()]);
        }
        for (r, _) in &s.units {
            out.extend_from_slice(&buf[r.clone()]);
        }
    }
    Bytes::from(out)
}
