//! Log records as Elastic Common Schema documents (`mapping.mode: ecs`), mapped as the OTel
//! Collector's exporter maps them:
//!
//! - resource attributes by the Collector's table (`host.name` -> `host.hostname`, kept as
//!   `host.name` too; `k8s.*` -> `kubernetes.*`; `os.*` -> `host.os.*`; `telemetry.sdk.*` and
//!   `telemetry.distro.*` left out, they make `agent.name` and `agent.version` instead);
//! - scope attributes as they are;
//! - record attributes as they are, but `event.name` -> `event.action` and `exception.*` ->
//!   `error.*`; and the captures of `regex_parser`'s Apache presets by their ECS names
//!   (`host` -> `source.address`, `status` -> `http.response.status_code`, ...). sluice knows a
//!   capture came from a preset because its key is the preset's own static string
//!   (`regex_parser::preset_capture`): an attribute that merely has the same name, parsed by
//!   another regex or sent by an SDK, keeps its name;
//! - `@timestamp`, `trace.id`, `span.id`, `event.severity`, `log.level`, `host.os.type`, and a
//!   string body as `message` (only a string: `message` is a text field). A map body (a parsed
//!   JSON log) has its fields written at the top level, which the Collector does not do; other
//!   bodies are left out, as there.
//!
//! Fields are then de-duplicated as the Collector's document model does: sorted by name, the
//! last one written of a name wins (record over scope over resource), and a field that is also
//! the parent of another (`a` beside `a.b`) is renamed `a.value`, since Elasticsearch cannot map
//! one name as both a value and an object.

use std::ops::Range;

use crate::codec::{rfc3339, write_hex, write_json_str, write_json_value};
use crate::model::{LogRecord, Origin, Value, get_attr};
use crate::processors::regex_parser::preset_capture;

use super::origin::is_routing;
use super::routing::DataStream;

/// Fields gathered for one document before they are de-duplicated and written; kept by the
/// encoder between records, so that a document allocates nothing once they have grown.
#[derive(Default)]
pub struct Scratch {
    /// Each field's sort key (its name's first eight bytes, big-endian: most comparisons end
    /// there), name (in `names`) and JSON value (in `values`), in the order written.
    fields: Vec<(u64, Range<usize>, Range<usize>)>,
    names: Vec<u8>,
    values: Vec<u8>,
    /// `agent.name` being put together.
    text: String,
}

impl Scratch {
    fn put(&mut self, name: &str, value: impl FnOnce(&mut Vec<u8>)) {
        let n = self.names.len();
        self.names.extend_from_slice(name.as_bytes());
        let start = self.values.len();
        value(&mut self.values);
        let mut head = [0u8; 8];
        let b = name.as_bytes();
        head[..b.len().min(8)].copy_from_slice(&b[..b.len().min(8)]);
        self.fields.push((
            u64::from_be_bytes(head),
            n..self.names.len(),
            start..self.values.len(),
        ));
    }

    fn put_value(&mut self, name: &str, v: &Value) {
        self.put(name, |out| write_json_value(out, v));
    }

    fn put_str(&mut self, name: &'static str, text: &[u8]) {
        if !text.is_empty() {
            self.put(name, |out| write_json_str(out, text));
        }
    }
}

/// Resource attribute names to ECS names, the Collector's table. `Some(None)`: left out.
fn resource_name(key: &str) -> Option<Option<&'static str>> {
    Some(Some(match key {
        "telemetry.sdk.name"
        | "telemetry.sdk.language"
        | "telemetry.sdk.version"
        | "telemetry.distro.name"
        | "telemetry.distro.version" => return Some(None),
        "service.instance.id" => "service.node.name",
        // The Collector's table has the older name; SDKs now send the newer one.
        "deployment.environment" | "deployment.environment.name" => "service.environment",
        "cloud.platform" => "cloud.service.name",
        "container.image.tags" => "container.image.tag",
        "host.name" => "host.hostname",
        "host.arch" => "host.architecture",
        "process.executable.path" => "process.executable",
        "process.runtime.name" => "service.runtime.name",
        "process.runtime.version" => "service.runtime.version",
        "os.name" => "host.os.name",
        "os.type" => "host.os.platform",
        "os.description" => "host.os.full",
        "os.version" => "host.os.version",
        "k8s.deployment.name" => "kubernetes.deployment.name",
        "k8s.namespace.name" => "kubernetes.namespace",
        "k8s.node.name" => "kubernetes.node.name",
        "k8s.pod.name" => "kubernetes.pod.name",
        "k8s.pod.uid" => "kubernetes.pod.uid",
        "k8s.job.name" => "kubernetes.job.name",
        "k8s.cronjob.name" => "kubernetes.cronjob.name",
        "k8s.statefulset.name" => "kubernetes.statefulset.name",
        "k8s.replicaset.name" => "kubernetes.replicaset.name",
        "k8s.daemonset.name" => "kubernetes.daemonset.name",
        "k8s.container.name" => "kubernetes.container.name",
        "k8s.cluster.name" => "orchestrator.cluster.name",
        _ => return None,
    }))
}

/// Record attribute names to ECS names, the Collector's table.
fn record_name(key: &str) -> Option<&'static str> {
    Some(match key {
        "event.name" => "event.action",
        "exception.message" => "error.message",
        "exception.stacktrace" => "error.stacktrace",
        "exception.type" => "error.type",
        "exception.escaped" => "event.error.exception.handled",
        _ => return None,
    })
}

/// The ECS names of the Apache presets' captures.
fn apache_name(capture: &str) -> Option<&'static str> {
    Some(match capture {
        "host" => "source.address",
        "user" => "user.name",
        "method" => "http.request.method",
        "path" => "url.original",
        "protocol" => "http.version",
        "status" => "http.response.status_code",
        "bytes_out" => "http.response.body.bytes",
        "referer" => "http.request.referrer",
        "user_agent" => "user_agent.original",
        _ => return None,
    })
}

/// A record attribute: a preset capture by its ECS name (Apache's `-` for "none" left out,
/// `HTTP/1.1` as `1.1`), a known semantic-convention name by its ECS name, anything else as
/// it is.
fn record_attribute(sc: &mut Scratch, key: &crate::model::Str, v: &Value) {
    if let Some(capture) = preset_capture(key)
        && let Some(name) = apache_name(capture)
    {
        match v {
            Value::Str(s) if s.as_str() == "-" => {}
            Value::Str(s) if name == "http.version" => {
                let version = s.as_str().strip_prefix("HTTP/").unwrap_or(s.as_str());
                sc.put(name, |out| write_json_str(out, version.as_bytes()));
            }
            v => sc.put_value(name, v),
        }
        return;
    }
    match record_name(key.as_str()) {
        Some(name) => sc.put_value(name, v),
        None => sc.put_value(key.as_str(), v),
    }
}

/// `agent.name`: the SDK's name (`otlp` when unnamed), its language and its distribution, as
/// the Collector joins them (`opentelemetry/python`, `opentelemetry/java/elastic`).
fn agent(sc: &mut Scratch, o: &Origin) {
    let text = |key: &str| match get_attr(&o.resource, key) {
        Some(Value::Str(s)) => Some(s.as_str()),
        _ => None,
    };
    let sdk = text("telemetry.sdk.name").unwrap_or("otlp");
    let distro = text("telemetry.distro.name");
    let language = match (text("telemetry.sdk.language"), distro) {
        (Some(l), _) => Some(l),
        (None, Some(_)) => Some("unknown"),
        (None, None) => None,
    };
    let mut name = std::mem::take(&mut sc.text);
    name.clear();
    name.push_str(sdk);
    for part in [language, distro].into_iter().flatten() {
        name.push('/');
        name.push_str(part);
    }
    sc.put("agent.name", |out| write_json_str(out, name.as_bytes()));
    sc.text = name;
    if let Some(v) = text("telemetry.distro.version").or_else(|| text("telemetry.sdk.version")) {
        sc.put("agent.version", |out| write_json_str(out, v.as_bytes()));
    }
}

/// `host.os.type`, from the few values ECS allows.
fn os_type(sc: &mut Scratch, o: &Origin) {
    let text = |key: &str| match get_attr(&o.resource, key) {
        Some(Value::Str(s)) => s.as_str(),
        _ => "",
    };
    let mut ty = match text("os.type") {
        t @ ("windows" | "linux") => t,
        "darwin" => "macos",
        "aix" | "hpux" | "solaris" => "unix",
        _ => "",
    };
    match text("os.name") {
        "Android" => ty = "android",
        "iOS" => ty = "ios",
        _ => {}
    }
    sc.put_str("host.os.type", ty.as_bytes());
}

/// Appends the ECS document of `r`.
pub fn document(
    r: &LogRecord,
    o: &Origin,
    stream: Option<&DataStream>,
    sc: &mut Scratch,
    out: &mut Vec<u8>,
) {
    sc.fields.clear();
    sc.names.clear();
    sc.values.clear();
    for (k, v) in &o.resource {
        if is_routing(k.as_bytes()) {
            continue;
        }
        match resource_name(k.as_str()) {
            Some(None) => {}
            Some(Some(name)) => {
                sc.put_value(name, v);
                if k.as_str() == "host.name" {
                    sc.put_value("host.name", v);
                }
            }
            None => sc.put_value(k.as_str(), v),
        }
    }
    for (k, v) in &o.scope_attributes {
        if !is_routing(k.as_bytes()) {
            sc.put_value(k.as_str(), v);
        }
    }
    for (k, v) in &r.attributes {
        if !is_routing(k.as_bytes()) {
            record_attribute(sc, k, v);
        }
    }
    if let Value::Map(kvs) = &r.body {
        for (k, v) in kvs {
            record_attribute(sc, k, v);
        }
    }
    agent(sc, o);
    os_type(sc, o);
    let t = if r.time_unix_nano != 0 {
        r.time_unix_nano
    } else {
        r.observed_time_unix_nano
    };
    sc.put("@timestamp", |out| {
        out.push(b'"');
        out.extend_from_slice(&rfc3339(t));
        out.push(b'"');
    });
    if r.trace_id != [0; 16] {
        sc.put("trace.id", |out| hex(out, &r.trace_id));
    }
    if r.span_id != [0; 8] {
        sc.put("span.id", |out| hex(out, &r.span_id));
    }
    if r.severity_number != 0 {
        sc.put("event.severity", |out| {
            out.extend_from_slice(itoa::Buffer::new().format(r.severity_number).as_bytes())
        });
    }
    sc.put_str("log.level", r.severity_text.as_bytes());
    if let Value::Str(s) = &r.body {
        sc.put("message", |out| write_json_str(out, s.as_bytes()));
    }
    if let Some(s) = stream {
        sc.put("data_stream.type", |out| out.extend_from_slice(b"\"logs\""));
        sc.put("data_stream.dataset", |out| {
            write_json_str(out, s.dataset.as_bytes())
        });
        sc.put("data_stream.namespace", |out| {
            write_json_str(out, s.namespace.as_bytes())
        });
    }
    write_deduplicated(sc, out);
}

fn hex(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    write_hex(out, bytes);
    out.push(b'"');
}

/// Sorts the fields by name, keeps the last of each name, renames a field that is also a
/// parent (`a` beside `a.b`) to `a.value`, and writes the object.
fn write_deduplicated(sc: &mut Scratch, out: &mut Vec<u8>) {
    let names = &sc.names;
    // Stable: among equal names, the order written is kept, and the last is the one kept.
    // Zero-padded heads order as the names do, but for a name that is a prefix of another
    // with a NUL after it, which field names do not hold.
    sc.fields.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| names[a.1.clone()].cmp(&names[b.1.clone()]))
    });
    let fields = &sc.fields;
    let name_of = |i: usize| &names[fields[i].1.clone()];
    out.push(b'{');
    let mut first = true;
    for i in 0..fields.len() {
        let name = name_of(i);
        if i + 1 < fields.len() && name_of(i + 1) == name {
            continue; // a later field of the same name wins
        }
        // A parent of another field: the names that start with this one sort right after it;
        // one of them continues with a dot. Usually the next name does not start with it.
        let parent = (i + 1..fields.len())
            .map(name_of)
            .take_while(|k| k.starts_with(name))
            .any(|k| k.get(name.len()) == Some(&b'.'));
        if !first {
            out.push(b',');
        }
        first = false;
        write_json_str(out, name);
        if parent {
            out.pop(); // the closing quote
            out.extend_from_slice(b".value\"");
        }
        out.push(b':');
        out.extend_from_slice(&sc.values[fields[i].2.clone()]);
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests;
