//! The `container` operator: lines that container runtimes write under `/var/log/pods`, in
//! either format, detected per line as the Collector's operator does.
//!
//! - CRI (containerd, CRI-O): `<RFC3339Nano> <stdout|stderr> <P|F> <message>`. A message longer
//!   than the runtime's buffer (16 KiB in containerd) is written as `P` fragments ending with an
//!   `F` one.
//! - Docker `json-file`: `{"log":"<message>\n","stream":"stdout","time":"<RFC3339Nano>"}`. A long
//!   message is cut into 16 KiB `log` values of which only the last ends in `\n`.
//!
//! A message comes out as a range of the line when the runtime wrote it as is (every CRI
//! message; docker's when its JSON string has no escapes but the final `\n`), so the record's
//! body can share the read buffer. Fragments are joined per stream (stdout and stderr
//! interleave in one file) up to `max_log_size`; beyond it the joined part is emitted and the
//! rest continues as the next part, each part numbered in `log.split_part`.

use std::borrow::Cow;
use std::ops::Range;

use serde::Deserialize;

/// The stream a line was written to, as `log.iostream` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    fn parse(s: &[u8]) -> Option<Stream> {
        match s {
            b"stdout" => Some(Stream::Stdout),
            b"stderr" => Some(Stream::Stderr),
            _ => None,
        }
    }
}

/// A message: where it is in the line, or its unescaped text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Text {
    Range(Range<usize>),
    Owned(Vec<u8>),
}

/// One line of a container log, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub time_unix_nano: u64,
    pub stream: Stream,
    /// More fragments of the same message follow.
    pub partial: bool,
    pub message: Text,
}

/// Why a line is not a container log line; it is then kept whole, and counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unparsed {
    #[error("neither a CRI nor a docker json-file line")]
    Format,
    #[error("the runtime's timestamp is not RFC 3339")]
    Time,
}

/// Parses `line` (without its newline) in whichever format it is written.
pub fn parse(line: &[u8]) -> Result<Line, Unparsed> {
    if line.first() == Some(&b'{') {
        docker(line)
    } else {
        cri(line)
    }
}

fn cri(line: &[u8]) -> Result<Line, Unparsed> {
    let mut fields = line.splitn(4, |&b| b == b' ');
    let time = fields.next().ok_or(Unparsed::Format)?;
    let stream = fields
        .next()
        .and_then(Stream::parse)
        .ok_or(Unparsed::Format)?;
    // The tag is `P` or `F`, possibly followed by `:`-separated flags of later CRI versions.
    let tag = fields.next().ok_or(Unparsed::Format)?;
    let partial = match tag.split(|&b| b == b':').next() {
        Some(b"P") => true,
        Some(b"F") => false,
        _ => return Err(Unparsed::Format),
    };
    let start = fields
        .next()
        .map_or(line.len(), |m| m.as_ptr() as usize - line.as_ptr() as usize);
    Ok(Line {
        time_unix_nano: rfc3339(time)?,
        stream,
        partial,
        message: Text::Range(start..line.len()),
    })
}

#[derive(Deserialize)]
struct DockerLine<'a> {
    #[serde(borrow)]
    log: &'a serde_json::value::RawValue,
    #[serde(borrow)]
    stream: Cow<'a, str>,
    #[serde(borrow)]
    time: Cow<'a, str>,
}

fn docker(line: &[u8]) -> Result<Line, Unparsed> {
    let d: DockerLine = serde_json::from_slice(line).map_err(|_| Unparsed::Format)?;
    let stream = Stream::parse(d.stream.as_bytes()).ok_or(Unparsed::Format)?;
    let time_unix_nano = rfc3339(d.time.as_bytes())?;
    // The JSON string as written, quotes included.
    let raw = d.log.get();
    if !raw.starts_with('"') {
        return Err(Unparsed::Format);
    }
    let inner = &raw[1..raw.len() - 1];
    // A final `\n` escape ends the message (an escaped backslash before an `n` does not).
    let (body, partial) = match inner.strip_suffix("\\n") {
        Some(body) if body.bytes().rev().take_while(|&b| b == b'\\').count() % 2 == 0 => {
            (body, false)
        }
        _ => (inner, true),
    };
    let message = if body.contains('\\') {
        let mut text: String = serde_json::from_str(raw).map_err(|_| Unparsed::Format)?;
        if !partial {
            text.pop();
        }
        Text::Owned(text.into_bytes())
    } else {
        // No escapes but the final `\n`: the text stands in the line as it is.
        let start = body.as_ptr() as usize - line.as_ptr() as usize;
        Text::Range(start..start + body.len())
    };
    Ok(Line {
        time_unix_nano,
        stream,
        partial,
        message,
    })
}

/// RFC 3339 with up to nine fractional digits, `Z` or an offset, as runtimes write it. The
/// runtimes' own shape (`2024-05-01T10:00:00.123456789Z`) is read directly; anything else
/// goes through chrono's full parser.
pub fn rfc3339(text: &[u8]) -> Result<u64, Unparsed> {
    if let Some(n) = utc_fast(text) {
        return Ok(n);
    }
    let text = std::str::from_utf8(text).map_err(|_| Unparsed::Time)?;
    let t = chrono::DateTime::parse_from_rfc3339(text).map_err(|_| Unparsed::Time)?;
    t.timestamp_nanos_opt()
        .and_then(|n| u64::try_from(n).ok())
        .ok_or(Unparsed::Time)
}

/// `YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z`, checked field by field; `None` for any other shape, which
/// the full parser then judges.
fn utc_fast(t: &[u8]) -> Option<u64> {
    if t.len() < 20
        || t[4] != b'-'
        || t[7] != b'-'
        || t[10] != b'T'
        || t[13] != b':'
        || t[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u64> {
        t[r].iter().try_fold(0u64, |acc, &b| {
            b.is_ascii_digit().then(|| acc * 10 + u64::from(b - b'0'))
        })
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut nanos = 0u64;
    let rest = &t[19..];
    let zone = match rest.first()? {
        b'.' => {
            let digits = rest[1..].iter().take_while(|b| b.is_ascii_digit()).count();
            if digits == 0 || digits > 9 {
                return None;
            }
            nanos = num(20..20 + digits)? * 10u64.pow(9 - digits as u32);
            &rest[1 + digits..]
        }
        _ => rest,
    };
    if zone != b"Z" {
        return None;
    }
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => return None,
    };
    if !(1970..=9999).contains(&year)
        || day == 0
        || day > days_in_month
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm), years from 1970 on.
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second;
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// A whole message, ready to be a record.
#[derive(Debug, PartialEq, Eq)]
pub struct Message {
    pub time_unix_nano: u64,
    pub stream: Stream,
    pub text: Text,
    /// `Some(n)` for the n-th part (from 1) of a message longer than `max_log_size`.
    pub part: Option<u32>,
}

/// Joins fragments per stream. A message in one line passes through as a range of it; one in
/// fragments is copied together (the fragments are in different lines).
#[derive(Default, Clone)]
pub struct Joiner {
    pending: [Pending; 2],
}

#[derive(Default, Clone)]
struct Pending {
    text: Vec<u8>,
    /// The first fragment's time: the message's.
    time_unix_nano: u64,
    /// Parts of this message emitted so far.
    parts: u32,
    active: bool,
}

impl Joiner {
    /// Adds one parsed line of `bytes`; calls `emit` with each message it completes (none for a
    /// fragment, one for a whole line, and a part whenever the fragments pass `max_log_size`).
    pub fn push(
        &mut self,
        bytes: &[u8],
        line: Line,
        max_log_size: usize,
        mut emit: impl FnMut(Message),
    ) {
        let slot = &mut self.pending[line.stream as usize];
        if !slot.active && !line.partial {
            // The common case: a whole message in one line.
            let len = match &line.message {
                Text::Range(r) => r.len(),
                Text::Owned(v) => v.len(),
            };
            if len > max_log_size {
                return split_whole(bytes, line, max_log_size, emit);
            }
            return emit(Message {
                time_unix_nano: line.time_unix_nano,
                stream: line.stream,
                text: line.message,
                part: None,
            });
        }
        let text = match &line.message {
            Text::Range(r) => &bytes[r.clone()],
            Text::Owned(v) => v.as_slice(),
        };
        if !slot.active {
            slot.active = true;
            slot.time_unix_nano = line.time_unix_nano;
            slot.parts = 0;
            slot.text.clear();
        }
        let mut rest = text;
        while slot.text.len() + rest.len() > max_log_size {
            let take = max_log_size - slot.text.len();
            slot.text.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            slot.parts += 1;
            emit(Message {
                time_unix_nano: slot.time_unix_nano,
                stream: line.stream,
                text: Text::Owned(std::mem::take(&mut slot.text)),
                part: Some(slot.parts),
            });
        }
        slot.text.extend_from_slice(rest);
        if !line.partial {
            let part = (slot.parts > 0).then_some(slot.parts + 1);
            slot.active = false;
            emit(Message {
                time_unix_nano: slot.time_unix_nano,
                stream: line.stream,
                text: Text::Owned(std::mem::take(&mut slot.text)),
                part,
            });
        }
    }

    /// Emits what is held for any stream (the file ended, or was let go), as the message's
    /// last part.
    pub fn flush(&mut self, mut emit: impl FnMut(Message)) {
        for (i, slot) in self.pending.iter_mut().enumerate() {
            if !slot.active {
                continue;
            }
            slot.active = false;
            let part = (slot.parts > 0).then_some(slot.parts + 1);
            emit(Message {
                time_unix_nano: slot.time_unix_nano,
                stream: if i == 0 {
                    Stream::Stdout
                } else {
                    Stream::Stderr
                },
                text: Text::Owned(std::mem::take(&mut slot.text)),
                part,
            });
        }
    }

    /// A copy, to go back to if what was read after it is refused.
    pub fn snapshot(&self) -> Joiner {
        self.clone()
    }

    /// Bytes held in unfinished messages.
    pub fn held(&self) -> usize {
        self.pending.iter().map(|p| p.text.len()).sum()
    }
}

/// A whole line longer than `max_log_size`: cut into parts.
fn split_whole(bytes: &[u8], line: Line, max: usize, mut emit: impl FnMut(Message)) {
    let (text, base) = match &line.message {
        Text::Range(r) => (&bytes[r.clone()], Some(r.start)),
        Text::Owned(v) => (v.as_slice(), None),
    };
    for (i, chunk) in text.chunks(max.max(1)).enumerate() {
        let text = match base {
            Some(start) => {
                let from = start + i * max;
                Text::Range(from..from + chunk.len())
            }
            None => Text::Owned(chunk.to_vec()),
        };
        emit(Message {
            time_unix_nano: line.time_unix_nano,
            stream: line.stream,
            text,
            part: Some(i as u32 + 1),
        });
    }
}

/// What a kubelet log path says: `/var/log/pods/<namespace>_<pod>_<uid>/<container>/<n>.log`.
#[derive(Debug, PartialEq, Eq)]
pub struct PodFile<'a> {
    pub namespace: &'a str,
    pub pod: &'a str,
    pub uid: &'a str,
    pub container: &'a str,
    pub restart_count: u32,
}

impl<'a> PodFile<'a> {
    /// The parts of `path`, if it has the kubelet's shape. Kubernetes names never contain `_`,
    /// so the directory splits unambiguously.
    pub fn parse(path: &'a str) -> Option<PodFile<'a>> {
        let mut parts = path.rsplit('/');
        let file = parts.next()?;
        let container = parts.next()?;
        let pod_dir = parts.next()?;
        let restart_count = file.strip_suffix(".log")?.parse().ok()?;
        let mut ids = pod_dir.splitn(3, '_');
        let (namespace, pod, uid) = (ids.next()?, ids.next()?, ids.next()?);
        if [namespace, pod, uid, container]
            .iter()
            .any(|s| s.is_empty())
        {
            return None;
        }
        Some(PodFile {
            namespace,
            pod,
            uid,
            container,
            restart_count,
        })
    }
}

#[cfg(test)]
mod tests;
