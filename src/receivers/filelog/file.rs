//! One tailed file: its open handle, identity, offsets, and turning the bytes after its read
//! offset into a batch of records that share the read buffer.
//!
//! Two offsets matter. `read` is where the next read starts; `acked` is how far every exporter
//! has delivered, the only one ever checkpointed. Batches in flight sit between them, each with
//! the offset it commits once acknowledged. A batch never commits past the first line of a
//! message whose fragments are still being joined, so a restart re-reads that message whole.

use std::collections::VecDeque;
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

use bytes::{Bytes, BytesMut};

use super::checkpoint::{Checkpoint, Fingerprint};
use super::container::{self, Joiner, Message, PodFile, Text};
use crate::model::{Attrs, KeyValue, LogBatch, LogRecord, Origin, Str, Value};
use crate::pipeline::ack::{AckWait, Delivery};

/// What the receiver's config asks of every file.
pub struct Settings {
    pub fingerprint_size: usize,
    pub max_log_size: usize,
    pub include_file_name: bool,
    pub include_file_path: bool,
    /// The `container` operator, and whether it adds the pod's identity from the path.
    pub container: Option<bool>,
    /// Records in one batch, at most.
    pub max_batch_records: usize,
    /// Bytes read at once, at most.
    pub read_size: usize,
}

/// A batch sent and not yet settled.
struct InFlight {
    /// The offset acknowledging it commits.
    commit: u64,
    wait: Option<AckWait>,
    records: u64,
    /// Bytes read for it.
    bytes: usize,
}

/// What reading produced.
pub struct Read {
    pub batch: LogBatch,
    /// Bytes read for it.
    pub bytes: usize,
    pub lines: u64,
    pub unparsed: u64,
    /// The offset its acknowledgement commits.
    pub commit: u64,
    /// To put back if the pipeline refuses it.
    pub undo: Undo,
}

pub struct Undo {
    read: u64,
    joiner: Joiner,
    pending_since: [Option<u64>; 2],
}

pub struct Tracked {
    pub path: String,
    file: File,
    pub dev: u64,
    pub ino: u64,
    pub fingerprint: Fingerprint,
    pub read: u64,
    pub acked: u64,
    in_flight: VecDeque<InFlight>,
    joiner: Joiner,
    /// Per stream, the offset of the first line of the message being joined.
    pending_since: [Option<u64>; 2],
    origin: Origin,
    file_name: Str,
    file_path: Str,
    /// No longer matched by `include` (renamed or deleted): read to the end, then let go.
    pub gone: bool,
    /// Seen in the latest scan.
    pub seen: bool,
    /// The size last seen, and when it last changed: a file let go keeps its last, unfinished
    /// line until its writer has been quiet a while.
    pub size_seen: u64,
    pub changed_at: std::time::Instant,
}

impl Tracked {
    /// Opens `path`; `start` says where reading starts (a checkpoint's offset, the end, or 0)
    /// given the file's fingerprint, its head and its size.
    pub fn open(
        path: &Path,
        s: &Settings,
        start: impl FnOnce(&Fingerprint, &[u8], u64) -> u64,
    ) -> std::io::Result<Tracked> {
        let file = File::open(path)?;
        let meta = file.metadata()?;
        let mut head = vec![0; s.fingerprint_size];
        let n = read_full(&file, &mut head, 0)?;
        let fingerprint = Fingerprint::of(meta.dev(), meta.ino(), &head[..n]);
        let offset = start(&fingerprint, &head[..n], meta.len()).min(meta.len());
        let text = path.to_string_lossy().into_owned();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut resource: Vec<KeyValue> = Vec::new();
        if s.container == Some(true)
            && let Some(pod) = PodFile::parse(&text)
        {
            let kv = |k: &'static str, v: &str| {
                (Str::from_static(k), Value::Str(Str::from(v.to_string())))
            };
            resource.push(kv("k8s.namespace.name", pod.namespace));
            resource.push(kv("k8s.pod.name", pod.pod));
            resource.push(kv("k8s.pod.uid", pod.uid));
            resource.push(kv("k8s.container.name", pod.container));
            resource.push((
                Str::from_static("k8s.container.restart_count"),
                Value::Int(i64::from(pod.restart_count)),
            ));
        }
        Ok(Tracked {
            file_name: Str::from(name),
            file_path: Str::from(text.clone()),
            path: text,
            dev: meta.dev(),
            ino: meta.ino(),
            fingerprint,
            read: offset,
            acked: offset,
            in_flight: VecDeque::new(),
            joiner: Joiner::default(),
            pending_since: [None; 2],
            origin: Origin {
                resource: Attrs::new(resource),
                ..Default::default()
            },
            file,
            gone: false,
            seen: true,
            size_seen: meta.len(),
            changed_at: std::time::Instant::now(),
        })
    }

    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            path: self.path.clone(),
            fingerprint: self.fingerprint.clone(),
            offset: self.acked,
        }
    }

    /// The open file.
    pub fn file(&self) -> &File {
        &self.file
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Bytes read for the batches in flight.
    pub fn in_flight_bytes(&self) -> usize {
        self.in_flight.iter().map(|f| f.bytes).sum()
    }

    /// The file's size now, through the open handle (a renamed or deleted file keeps its).
    pub fn size(&self) -> std::io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    /// Copy-truncate: the file is shorter than what was read. It is read again from the
    /// start; batches in flight still settle, but no longer move its offsets.
    pub fn truncated(&mut self, s: &Settings) -> std::io::Result<()> {
        self.read = 0;
        self.acked = 0;
        self.in_flight.clear();
        self.joiner = Joiner::default();
        self.pending_since = [None; 2];
        self.refresh_fingerprint(s)
    }

    /// Takes in more of the file's head while it is shorter than `fingerprint_size`.
    pub fn refresh_fingerprint(&mut self, s: &Settings) -> std::io::Result<()> {
        if self.fingerprint.len as usize >= s.fingerprint_size {
            return Ok(());
        }
        let mut head = vec![0; s.fingerprint_size];
        let n = read_full(&self.file, &mut head, 0)?;
        self.fingerprint = Fingerprint::of(self.dev, self.ino, &head[..n]);
        Ok(())
    }

    /// Settles the acknowledgements that have come in, oldest first; returns (records
    /// delivered, records failed). A failed batch rewinds reading to the acknowledged offset,
    /// so everything after it is read and sent again.
    pub fn settle(&mut self) -> (u64, u64) {
        let (mut delivered, mut failed) = (0, 0);
        while let Some(front) = self.in_flight.front_mut() {
            let outcome = match &mut front.wait {
                None => Delivery::Delivered,
                Some(w) => match w.outcome() {
                    Some(d) => d,
                    None => break,
                },
            };
            let done = self.in_flight.pop_front().expect("a front");
            match outcome {
                Delivery::Delivered => {
                    self.acked = self.acked.max(done.commit);
                    delivered += done.records;
                }
                Delivery::Failed => {
                    failed += done.records + self.in_flight.iter().map(|f| f.records).sum::<u64>();
                    self.in_flight.clear();
                    self.read = self.acked;
                    self.joiner = Joiner::default();
                    self.pending_since = [None; 2];
                    break;
                }
            }
        }
        (delivered, failed)
    }

    /// Waits until the oldest batch in flight settles (or returns at once if none is).
    pub async fn oldest_settled(&mut self) {
        if let Some(InFlight { wait: Some(w), .. }) = self.in_flight.front_mut() {
            w.settled().await;
        }
    }

    /// Reads what follows `read`, up to `size`, into a batch. `None` when there is no whole
    /// line yet (or, with `at_end`, the file is let go and its last partial line is taken).
    pub fn read_batch(
        &mut self,
        s: &Settings,
        size: u64,
        at_end: bool,
        now: u64,
    ) -> std::io::Result<Option<Read>> {
        if size <= self.read {
            if at_end {
                return Ok(self.flush_joiner(s, now));
            }
            return Ok(None);
        }
        let want = ((size - self.read) as usize).min(s.read_size);
        let mut buf = BytesMut::zeroed(want);
        let n = read_full(&self.file, &mut buf, self.read)?;
        buf.truncate(n);
        let buf = buf.freeze();
        let undo = Undo {
            read: self.read,
            joiner: self.joiner.snapshot(),
            pending_since: self.pending_since,
        };
        // Room for the lines the buffer likely holds, so the records are not moved as they grow.
        let mut out = Out::new(self, now, (n / 64 + 1).min(s.max_batch_records));
        let mut pos = 0usize;
        while pos < buf.len() && out.batch.records.len() < s.max_batch_records {
            let rest = &buf[pos..];
            let (line_end, next) = match memchr::memchr(b'\n', rest) {
                Some(i) => (pos + i, pos + i + 1),
                // A line longer than `max_log_size` without its end yet: cut it there.
                None if rest.len() >= s.max_log_size => {
                    (pos + s.max_log_size, pos + s.max_log_size)
                }
                // The last line of a file let go, which will never be finished.
                None if at_end && self.read + n as u64 >= size => (buf.len(), buf.len()),
                None => break,
            };
            let mut end = line_end;
            if end > pos && buf[end - 1] == b'\r' {
                end -= 1;
            }
            let line_at = self.read + pos as u64;
            self.line(s, &buf, pos..end, line_at, &mut out);
            pos = next;
        }
        if pos == 0 {
            return Ok(None);
        }
        self.read += pos as u64;
        let commit = self
            .pending_since
            .iter()
            .flatten()
            .min()
            .copied()
            .unwrap_or(self.read);
        let Out {
            batch,
            lines,
            unparsed,
            ..
        } = out;
        Ok(Some(Read {
            batch,
            bytes: pos,
            lines,
            unparsed,
            commit,
            undo,
        }))
    }

    fn line(
        &mut self,
        s: &Settings,
        buf: &Bytes,
        range: std::ops::Range<usize>,
        at: u64,
        out: &mut Out,
    ) {
        out.lines += 1;
        if s.container.is_none() {
            let body = text_of(buf, range);
            out.push(self, s, body, None, None, 0);
            return;
        }
        let line = &buf[range.clone()];
        match container::parse(line) {
            Ok(parsed) => {
                let slot = parsed.stream as usize;
                if parsed.partial && self.pending_since[slot].is_none() {
                    self.pending_since[slot] = Some(at);
                }
                let ended = !parsed.partial;
                let stream = parsed.stream;
                let mut joiner = std::mem::take(&mut self.joiner);
                joiner.push(line, parsed, s.max_log_size, |m: Message| {
                    let body = match m.text {
                        Text::Range(r) => text_of(buf, range.start + r.start..range.start + r.end),
                        Text::Owned(v) => Str::from(String::from_utf8_lossy(&v).into_owned()),
                    };
                    out.push(self, s, body, Some(m.stream), m.part, m.time_unix_nano);
                });
                self.joiner = joiner;
                if ended {
                    self.pending_since[stream as usize] = None;
                }
            }
            Err(_) => {
                out.unparsed += 1;
                let body = text_of(buf, range);
                out.push(self, s, body, None, None, 0);
            }
        }
    }

    /// A file let go with a message still being joined: it is sent as it is.
    fn flush_joiner(&mut self, s: &Settings, now: u64) -> Option<Read> {
        if self.joiner.held() == 0 && self.pending_since.iter().all(Option::is_none) {
            return None;
        }
        let undo = Undo {
            read: self.read,
            joiner: self.joiner.snapshot(),
            pending_since: self.pending_since,
        };
        let mut out = Out::new(self, now, 2);
        let mut joiner = std::mem::take(&mut self.joiner);
        joiner.flush(|m| {
            let Text::Owned(v) = m.text else { return };
            let body = Str::from(String::from_utf8_lossy(&v).into_owned());
            out.push(self, s, body, Some(m.stream), m.part, m.time_unix_nano);
        });
        self.pending_since = [None; 2];
        let Out { batch, .. } = out;
        Some(Read {
            batch,
            bytes: 0,
            lines: 0,
            unparsed: 0,
            commit: self.read,
            undo,
        })
    }

    /// The batch was sent: it commits `commit` once acknowledged.
    pub fn sent(&mut self, commit: u64, wait: Option<AckWait>, records: u64, bytes: usize) {
        self.in_flight.push_back(InFlight {
            commit,
            wait,
            records,
            bytes,
        });
    }

    /// The pipeline refused the batch: reading goes back to before it.
    pub fn refused(&mut self, undo: Undo) {
        self.read = undo.read;
        self.joiner = undo.joiner;
        self.pending_since = undo.pending_since;
    }

    /// No message is being joined: nothing is held back from what was read.
    pub fn finished(&self) -> bool {
        self.joiner.held() == 0 && self.pending_since.iter().all(Option::is_none)
    }
}

/// The records of one batch being built.
struct Out {
    batch: LogBatch,
    lines: u64,
    unparsed: u64,
    now: u64,
}

impl Out {
    fn new(file: &Tracked, now: u64, records: usize) -> Out {
        Out {
            batch: LogBatch {
                origins: vec![file.origin.clone()],
                records: Vec::with_capacity(records),
            },
            lines: 0,
            unparsed: 0,
            now,
        }
    }

    fn push(
        &mut self,
        file: &Tracked,
        s: &Settings,
        body: Str,
        stream: Option<container::Stream>,
        part: Option<u32>,
        time: u64,
    ) {
        let mut attributes: Vec<KeyValue> = Vec::with_capacity(4);
        if let Some(stream) = stream {
            attributes.push((
                Str::from_static("log.iostream"),
                Value::Str(Str::from_static(stream.name())),
            ));
        }
        if s.include_file_name {
            attributes.push((
                Str::from_static("log.file.name"),
                Value::Str(file.file_name.clone()),
            ));
        }
        if s.include_file_path {
            attributes.push((
                Str::from_static("log.file.path"),
                Value::Str(file.file_path.clone()),
            ));
        }
        if let Some(n) = part {
            attributes.push((Str::from_static("log.split_part"), Value::Int(i64::from(n))));
        }
        self.batch.records.push(LogRecord {
            origin: 0,
            time_unix_nano: time,
            observed_time_unix_nano: self.now,
            body: Value::Str(body),
            attributes,
            ..Default::default()
        });
    }
}

/// `buf[range]` as text: shared when it is UTF-8, else with invalid bytes replaced.
fn text_of(buf: &Bytes, range: std::ops::Range<usize>) -> Str {
    Str::from_utf8_slice(buf, range.clone())
        .unwrap_or_else(|_| Str::from(String::from_utf8_lossy(&buf[range]).into_owned()))
}

/// Reads until `buf` is full or the file ends; returns the bytes read.
fn read_full(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], offset + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
