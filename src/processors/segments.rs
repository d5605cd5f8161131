//! A capture matcher for the shape most log regexes have: a `^`-anchored chain of literals and
//! character-class runs, where each run's class excludes the byte that must follow it, like
//!
//! `^(?P<host>[\w\.]+) - (?P<user>[\w\-]+) \[(?P<timestamp>[^\]]*)\] "(?P<method>\w+) ...$`
//!
//! For such a pattern greedy matching is deterministic: a run can only end where its class
//! stops, so one pass over the bytes with a 256-entry table per run gives exactly the captures
//! the regex engine would, at about a cycle per byte instead of the ~6 ns/byte of a one-pass DFA.
//!
//! It is exact for ASCII haystacks only (Unicode classes are reduced to their ASCII members), so
//! callers use it when `haystack.is_ascii()` and fall back to the full engine otherwise. Patterns
//! of any other shape compile to `None` and always use the full engine.

use regex_syntax::hir::{Class, Hir, HirKind, Look};

use crate::simd::Chunk;

/// `group` on a literal or run is a capture around exactly that item (the common case), which
/// saves dispatching separate open and close markers.
enum Item {
    Lit {
        bytes: Box<[u8]>,
        group: Option<usize>,
    },
    Run {
        set: Box<[bool; 256]>,
        /// Set for repetitions whose class is a few byte ranges (all but odd hand-written ones).
        scan: Option<Box<Scan>>,
        min: u32,
        max: u32,
        group: Option<usize>,
    },
    Open(usize),
    Close(usize),
    End,
}

/// A run's class as at most [`Scan::MAX`] byte ranges, so that the run's end is found 16 bytes
/// at a time ([`Chunk`]): the ranges of the class's ASCII members, or of the ASCII bytes outside
/// it, whichever are fewer (`[^\]]*` is one stop byte, `[\w\.]+` five member ranges).
#[derive(Clone, Copy)]
struct Scan {
    /// Each range's first byte and width, as splats built once (see [`Chunk::in_span`]);
    /// `len` of them are used.
    lo: [Chunk; Scan::MAX],
    span: [Chunk; Scan::MAX],
    len: usize,
    /// The ranges are the bytes that end the run rather than the class's members.
    stops: bool,
}

impl Scan {
    const MAX: usize = 6;

    fn of(set: &[bool; 256]) -> Option<Scan> {
        let ranges = |member: bool| {
            let mut out: Vec<(u8, u8)> = Vec::new();
            for b in 0u8..128 {
                if set[b as usize] != member {
                    continue;
                }
                match out.last_mut() {
                    Some((_, hi)) if *hi + 1 == b => *hi = b,
                    _ => out.push((b, b)),
                }
            }
            out
        };
        let (members, outside) = (ranges(true), ranges(false));
        let (list, stops) = if outside.len() < members.len() {
            (outside, true)
        } else {
            (members, false)
        };
        if list.is_empty() || list.len() > Scan::MAX {
            return None;
        }
        let splat =
            |i: usize, f: fn((u8, u8)) -> u8| Chunk::splat(list.get(i).copied().map_or(0, f));
        Some(Scan {
            lo: std::array::from_fn(|i| splat(i, |(lo, _)| lo)),
            span: std::array::from_fn(|i| splat(i, |(lo, hi)| hi - lo)),
            len: list.len(),
            stops,
        })
    }

    /// Lanes of `chunk` in any of the first `N` ranges, unrolled.
    #[inline(always)]
    fn hits<const N: usize>(&self, chunk: Chunk) -> Chunk {
        let mut hits = chunk.in_span(self.lo[0], self.span[0]);
        for i in 1..N {
            hits = hits.or(chunk.in_span(self.lo[i], self.span[i]));
        }
        hits
    }

    /// One bit per byte of `chunk` that ends the run. Haystacks are ASCII, so bytes from 0x80
    /// never occur and need no range.
    #[inline(always)]
    fn stop_bits(&self, chunk: Chunk) -> u32 {
        let hits = match self.len {
            1 => self.hits::<1>(chunk),
            2 => self.hits::<2>(chunk),
            3 => self.hits::<3>(chunk),
            4 => self.hits::<4>(chunk),
            5 => self.hits::<5>(chunk),
            _ => self.hits::<{ Scan::MAX }>(chunk),
        };
        let bits = hits.bits();
        if self.stops { bits } else { !bits & 0xFFFF }
    }

    /// How many bytes of `hay[pos..limit]` from `pos` are in the class: whole chunks, then the
    /// last 16 bytes before `limit` once more with the bits already looked at shifted out, and
    /// only a haystack shorter than a chunk byte by byte through `set`.
    #[inline(always)]
    fn run_len(&self, hay: &[u8], pos: usize, limit: usize, set: &[bool; 256]) -> usize {
        let mut i = pos;
        while i + Chunk::LEN <= limit {
            let stops = self.stop_bits(Chunk::at(hay, i));
            if stops != 0 {
                return i - pos + stops.trailing_zeros() as usize;
            }
            i += Chunk::LEN;
        }
        let rest = limit - i;
        if rest == 0 {
            return i - pos;
        }
        if limit >= Chunk::LEN {
            let stops = self.stop_bits(Chunk::at(hay, limit - Chunk::LEN)) >> (Chunk::LEN - rest);
            return i - pos + (stops.trailing_zeros() as usize).min(rest);
        }
        i - pos + table_run_len(&hay[i..limit], set)
    }
}

/// How many leading bytes of `window` are in `set`, four table lookups per branch.
#[inline(always)]
fn table_run_len(window: &[u8], set: &[bool; 256]) -> usize {
    let mut i = 0;
    while i + 4 <= window.len() {
        let w = &window[i..i + 4];
        if !(set[w[0] as usize] & set[w[1] as usize] & set[w[2] as usize] & set[w[3] as usize]) {
            break;
        }
        i += 4;
    }
    i + window[i..]
        .iter()
        .position(|&b| !set[b as usize])
        .unwrap_or(window.len() - i)
}

/// A compiled deterministic pattern.
pub struct Segments {
    items: Vec<Item>,
    groups: usize,
}

/// A capture span per group index (0 is the whole match); `None` if the group did not match.
pub type Spans = Vec<Option<(usize, usize)>>;

impl Segments {
    /// Compiles `pattern` (parsed with the same defaults as `regex_automata::meta::Regex`), or
    /// returns `None` when its shape is not one this matcher handles exactly.
    pub fn compile(pattern: &str) -> Option<Segments> {
        let hir = regex_syntax::ParserBuilder::new()
            .build()
            .parse(pattern)
            .ok()?;
        let mut items = Vec::new();
        let subs: &[Hir] = match hir.kind() {
            HirKind::Concat(subs) => subs,
            _ => std::slice::from_ref(&hir),
        };
        let (first, rest) = subs.split_first()?;
        if !matches!(first.kind(), HirKind::Look(Look::Start)) {
            return None;
        }
        let mut lazy = Vec::new();
        for h in rest {
            flatten(h, &mut items, &mut lazy)?;
        }
        check(&items, &lazy)?;
        let groups = items
            .iter()
            .filter_map(|i| match i {
                Item::Open(g) => Some(*g + 1),
                Item::Lit { group, .. } | Item::Run { group, .. } => group.map(|g| g + 1),
                _ => None,
            })
            .max()
            .unwrap_or(1);
        Some(Segments { items, groups })
    }

    /// The number of capture slots, group 0 included.
    pub fn groups(&self) -> usize {
        self.groups
    }

    /// Matches an ASCII `hay`, filling `spans` (resized to [`Segments::groups`]).
    pub fn captures(&self, hay: &[u8], spans: &mut Spans) -> bool {
        debug_assert!(hay.is_ascii());
        spans.clear();
        spans.resize(self.groups, None);
        let mut pos = 0usize;
        for item in &self.items {
            match item {
                Item::Lit { bytes, group } => {
                    let end = pos + bytes.len();
                    // Literals between fields are a few bytes: compare inline, no memcmp call.
                    if end > hay.len()
                        || !hay[pos..end].iter().zip(bytes.iter()).all(|(a, b)| a == b)
                    {
                        return false;
                    }
                    if let Some(g) = group {
                        spans[*g] = Some((pos, end));
                    }
                    pos = end;
                }
                Item::Run {
                    set,
                    scan,
                    min,
                    max,
                    group,
                } => {
                    let limit = hay.len().min(pos.saturating_add(*max as usize));
                    let taken = match scan {
                        Some(scan) => scan.run_len(hay, pos, limit, set),
                        None => table_run_len(&hay[pos..limit], set),
                    };
                    if taken < *min as usize {
                        return false;
                    }
                    if let Some(g) = group {
                        spans[*g] = Some((pos, pos + taken));
                    }
                    pos += taken;
                }
                Item::Open(g) => spans[*g] = Some((pos, pos)),
                Item::Close(g) => {
                    if let Some(span) = &mut spans[*g] {
                        span.1 = pos;
                    }
                }
                Item::End => {
                    if pos != hay.len() {
                        return false;
                    }
                }
            }
        }
        spans[0] = Some((0, pos));
        true
    }
}

fn ascii_set(class: &Class) -> Box<[bool; 256]> {
    let mut set = Box::new([false; 256]);
    let mut mark = |lo: u32, hi: u32| {
        for b in lo..=hi.min(127) {
            set[b as usize] = true;
        }
    };
    match class {
        Class::Unicode(c) => c
            .iter()
            .for_each(|r| mark(r.start() as u32, r.end() as u32)),
        Class::Bytes(c) => c
            .iter()
            .for_each(|r| mark(r.start() as u32, r.end() as u32)),
    }
    set
}

fn flatten(h: &Hir, items: &mut Vec<Item>, lazy: &mut Vec<bool>) -> Option<()> {
    let mut push = |item: Item, is_lazy: bool| {
        items.push(item);
        lazy.push(is_lazy);
    };
    match h.kind() {
        HirKind::Empty => {}
        HirKind::Literal(l) if l.0.is_ascii() => push(
            Item::Lit {
                bytes: l.0.clone(),
                group: None,
            },
            false,
        ),
        HirKind::Class(c) => push(
            Item::Run {
                set: ascii_set(c),
                scan: None,
                min: 1,
                max: 1,
                group: None,
            },
            false,
        ),
        HirKind::Repetition(r) => {
            let set = match r.sub.kind() {
                HirKind::Class(c) => ascii_set(c),
                HirKind::Literal(l) if l.0.len() == 1 && l.0.is_ascii() => {
                    let mut s = Box::new([false; 256]);
                    s[l.0[0] as usize] = true;
                    s
                }
                _ => return None,
            };
            push(
                Item::Run {
                    scan: Scan::of(&set).map(Box::new),
                    set,
                    min: r.min,
                    max: r.max.unwrap_or(u32::MAX),
                    group: None,
                },
                !r.greedy,
            );
        }
        HirKind::Capture(c) => {
            let g = c.index as usize;
            let before = items.len();
            flatten(&c.sub, items, lazy)?;
            match &mut items[before..] {
                [Item::Lit { group, .. }] | [Item::Run { group, .. }] if group.is_none() => {
                    *group = Some(g)
                }
                _ => {
                    items.insert(before, Item::Open(g));
                    lazy.insert(before, false);
                    items.push(Item::Close(g));
                    lazy.push(false);
                }
            }
        }
        HirKind::Look(Look::End) => push(Item::End, false),
        _ => return None,
    }
    Some(())
}

/// Accepts only chains where every run is forced to stop exactly where the regex would.
fn check(items: &[Item], lazy: &[bool]) -> Option<()> {
    let consuming = |i: &Item| !matches!(i, Item::Open(_) | Item::Close(_));
    for (i, item) in items.iter().enumerate() {
        if matches!(item, Item::End) && items[i + 1..].iter().any(consuming) {
            return None;
        }
        let Item::Run { set, min, max, .. } = item else {
            continue;
        };
        if min == max {
            continue; // a fixed count stops where it must, whatever follows
        }
        match items[i + 1..].iter().find(|n| consuming(n)) {
            // A greedy run at the very end takes all it can, as the regex does; a lazy one
            // would stop early, which this matcher does not model.
            None if lazy[i] => return None,
            None | Some(Item::End) => {}
            Some(Item::Lit { bytes, .. }) if !set[bytes[0] as usize] => {}
            Some(Item::Run { set: next, min, .. })
                if *min >= 1 && (0..128).all(|b| !(set[b] && next[b])) => {}
            Some(_) => return None,
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex_automata::Input;
    use regex_automata::meta::Regex;

    const GUIDE: &str = r#"^(?P<host>[\w\.]+) - (?P<user>[\w\-]+) \[(?P<timestamp>[^\]]*)\] "(?P<method>[\w]+) (?P<path>[^"]*)" (?P<status>[\d]+) (?P<bytes_out>[\d]+)$"#;

    fn reference(re: &Regex, hay: &[u8]) -> Option<Spans> {
        let mut caps = re.create_captures();
        re.captures(Input::new(hay), &mut caps);
        caps.is_match().then(|| {
            (0..caps.group_len())
                .map(|g| caps.get_group(g).map(|s| (s.start, s.end)))
                .collect()
        })
    }

    #[test]
    fn compiles_the_guide_regex_and_the_presets() {
        assert!(Segments::compile(GUIDE).is_some());
        assert!(Segments::compile(crate::processors::regex_parser::APACHE_COMMON).is_some());
        assert!(Segments::compile(crate::processors::regex_parser::APACHE_COMBINED).is_some());
    }

    #[test]
    fn refuses_shapes_it_cannot_match_exactly() {
        for p in [
            r"(?P<a>\w+)",            // unanchored
            r"^(?P<a>\w+)\w",         // run followed by a byte of its own class
            r"^(?P<a>.*) (?P<b>\w+)", // '.' includes the space that follows
            r"^(?P<a>ab|cd)",         // alternation of strings
            r"^(?P<a>\w+?)",          // lazy run at the end
            r"^(?P<a>\d+)\s*\d",      // possibly-empty run after a run
            r"^(?P<a>x)$y",           // text after the end anchor
        ] {
            assert!(
                Segments::compile(p).is_none(),
                "{p} should fall back to the regex engine"
            );
        }
    }

    /// Runs are scanned 16 bytes at a time, then the last 16 bytes before the window's end
    /// again: every run length around those edges, bounded or not, in haystacks shorter and
    /// longer than a chunk, ends where the regex engine says.
    #[test]
    fn runs_of_every_length_agree_across_chunk_edges() {
        let patterns = [
            r"^(?P<a>[\w\.]+) (?P<b>[^\]]*)\]$",
            r"^(?P<a>[a-z\._]{3,20})(?P<b>[\d\-]+) ",
            r"^(?P<a>\S{0,17})(?P<b> +)(?P<c>[^\] ]+)",
            r"^(?P<a>[a-z]{2,33})(?P<b>[0-9]{1,2})",
        ];
        let fills: [&[u8]; 5] = [b"a", b"a.b_9", b"12-3", b"z", b"]"];
        for p in patterns {
            let fast = Segments::compile(p).unwrap_or_else(|| panic!("{p} should compile"));
            let re = Regex::new(p).unwrap();
            let mut spans = Spans::new();
            for first in 0..40 {
                for second in 0..40 {
                    for (f1, f2) in fills.iter().zip(fills.iter().rev()) {
                        let mut line: Vec<u8> = f1.iter().copied().cycle().take(first).collect();
                        line.push(b' ');
                        line.extend(f2.iter().copied().cycle().take(second));
                        line.push(b']');
                        for cut in [line.len(), line.len() - 1, first, first / 2] {
                            let hay = &line[..cut];
                            let want = reference(&re, hay);
                            let got = fast.captures(hay, &mut spans).then(|| spans.clone());
                            assert_eq!(
                                got,
                                want,
                                "pattern {p}\nline {:?}",
                                String::from_utf8_lossy(hay)
                            );
                        }
                    }
                }
            }
        }
    }

    /// Differential test: on many lines, valid and mutated, the matcher agrees with
    /// regex-automata on whether it matches and on every span.
    #[test]
    fn agrees_with_the_regex_engine() {
        let patterns = [
            GUIDE,
            crate::processors::regex_parser::APACHE_COMMON,
            crate::processors::regex_parser::APACHE_COMBINED,
            r"^(?P<level>[A-Z]{4,5}) (?P<code>\d{3})(?P<rest>[^\n]*)$",
            r"^(?P<k>[a-z]+?)=(?P<v>\d+)",
            r"^(?P<k>\w+)(?:=(?P<v>\w*))",
        ];
        let seeds = [
            r#"175.148.109.34 - lavon [05/Feb/2023:09:39:56 +0000] "GET /fortunate HTTP/1.0" 404 4410"#,
            r#"1.2.3.4 - - [x] "GET / HTTP/1.1" 200 - "http://r/" "curl/8.0""#,
            "ERROR 500 it broke",
            "WARN 1234",
            "key=42",
            "abc=",
        ];
        let alphabet = b" -.[]\"/:0123456789aZ_=\t";
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut rand = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        for p in patterns {
            let fast = Segments::compile(p).unwrap_or_else(|| panic!("{p} should compile"));
            let re = Regex::new(p).unwrap();
            let mut spans = Spans::new();
            for s in seeds {
                for _ in 0..3000 {
                    let mut line = s.as_bytes().to_vec();
                    for _ in 0..rand(4) {
                        let at = rand(line.len() + 1);
                        match rand(3) {
                            0 if at < line.len() => {
                                line.remove(at);
                            }
                            1 => line.insert(at, alphabet[rand(alphabet.len())]),
                            _ if at < line.len() => line[at] = alphabet[rand(alphabet.len())],
                            _ => {}
                        }
                    }
                    let want = reference(&re, &line);
                    let got = fast.captures(&line, &mut spans).then(|| spans.clone());
                    assert_eq!(
                        got,
                        want,
                        "pattern {p}\nline {:?}",
                        String::from_utf8_lossy(&line)
                    );
                }
            }
        }
    }
}
