//! Helpers for black-box tests: run the real `sluice` binary, talk to it over real sockets.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn write_config(yaml: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "sluice-test-{}-{}.yaml",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, yaml).unwrap();
    path
}

/// How a test starts sluice: from a fixture config (`tests/fixtures/configs/<name>.yaml`) or
/// inline YAML. Every `${env:<NAME>_PORT}` the config refers to gets a free port unless the test
/// gives one (a peer's, with [`Launch::port`]); other `${env:...}` come from [`Launch::env`].
/// [`Launch::start`] waits until the first port the config names that the test did not give
/// (the first receiver's, by the fixtures' layout) accepts connections.
pub struct Launch {
    yaml: String,
    env: Vec<(String, String)>,
    given: Vec<String>,
    ready: Option<String>,
    open_files: Option<u64>,
}

impl Launch {
    pub fn fixture(name: &str) -> Launch {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/configs")
            .join(format!("{name}.yaml"));
        let yaml =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Launch::yaml(&yaml)
    }

    pub fn yaml(yaml: &str) -> Launch {
        Launch {
            yaml: yaml.to_string(),
            env: Vec::new(),
            given: Vec::new(),
            ready: None,
            open_files: None,
        }
    }

    /// `${env:<var>}` is this port (a peer the test runs), not a fresh one.
    pub fn port(mut self, var: &str, port: u16) -> Launch {
        self.given.push(var.to_string());
        self.env(var, &port.to_string())
    }

    pub fn env(mut self, var: &str, value: &str) -> Launch {
        self.env.push((var.to_string(), value.to_string()));
        self
    }

    /// Puts `yaml` where the fixture has the line `#= <slot>`, indented as that line is: for
    /// the part a test varies that is more than a scalar (`${env:...}` covers scalars).
    pub fn put(mut self, slot: &str, yaml: &str) -> Launch {
        let marker = format!("#= {slot}");
        let line = self
            .yaml
            .lines()
            .find(|l| l.trim() == marker)
            .unwrap_or_else(|| panic!("the fixture has no `{marker}` line"))
            .to_string();
        let indent = &line[..line.len() - line.trim_start().len()];
        let lines: Vec<&str> = yaml.trim_matches('\n').lines().collect();
        // The snippet's own indentation is taken off first, so tests write it from column 0.
        let own = lines
            .iter()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.len() - l.trim_start().len())
            .min()
            .unwrap_or(0);
        let text: Vec<String> = lines
            .iter()
            .map(|l| format!("{indent}{}", l.get(own..).unwrap_or("")))
            .collect();
        self.yaml = self.yaml.replacen(&line, &text.join("\n"), 1);
        self
    }

    /// Wait for this port variable instead of the first one.
    pub fn ready_on(mut self, var: &str) -> Launch {
        self.ready = Some(var.to_string());
        self
    }

    /// Run under an open-files limit (soft and hard), as `ulimit -n` sets it.
    pub fn open_files(mut self, n: u64) -> Launch {
        self.open_files = Some(n);
        self
    }

    pub fn start(mut self) -> Sluice {
        let mut ports = Vec::new();
        for var in port_vars(&self.yaml) {
            if let Some((_, v)) = self.env.iter().find(|(k, _)| *k == var) {
                ports.push((var, v.parse().unwrap()));
            } else {
                let port = free_port();
                self.env.push((var.clone(), port.to_string()));
                ports.push((var, port));
            }
        }
        let ready = match &self.ready {
            Some(var) => var.clone(),
            None => ports
                .iter()
                .map(|(v, _)| v.clone())
                .find(|v| !self.given.contains(v))
                .expect("the config listens on some ${env:..._PORT}"),
        };
        let ready_port = ports.iter().find(|(v, _)| *v == ready).unwrap().1;
        let config = write_config(&self.yaml);
        let mut cmd = match self.open_files {
            None => Command::new(env!("CARGO_BIN_EXE_sluice")),
            Some(n) => {
                let mut cmd = Command::new("sh");
                cmd.arg("-c")
                    .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                    .arg(env!("CARGO_BIN_EXE_sluice"));
                cmd
            }
        };
        cmd.arg("--config")
            .arg(&config)
            .envs(self.env.iter().cloned());
        let mut sluice = Sluice::spawn(cmd, &config, ready_port);
        sluice.ports = ports;
        sluice
    }
}

/// The `${env:<NAME>_PORT}` variables of a config, in the order they first appear.
fn port_vars(yaml: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for part in yaml.split("${env:").skip(1) {
        let name = part.split(['}', ':']).next().unwrap_or_default();
        if name.ends_with("_PORT") && !out.iter().any(|v| v == name) {
            out.push(name.to_string());
        }
    }
    out
}

pub struct Sluice {
    pub child: Child,
    pub log: PathBuf,
    ports: Vec<(String, u16)>,
}

impl Sluice {
    /// Starts sluice from YAML with fixed ports and waits until `ready_port` accepts
    /// connections. Prefer [`Launch`]; this is for configs whose ports the test chose itself.
    pub fn start(yaml: &str, ready_port: u16) -> Sluice {
        let config = write_config(yaml);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
        cmd.arg("--config").arg(&config);
        Self::spawn(cmd, &config, ready_port)
    }

    /// The port [`Launch`] gave `${env:<var>}`.
    pub fn port(&self, var: &str) -> u16 {
        self.ports
            .iter()
            .find(|(v, _)| v == var)
            .unwrap_or_else(|| panic!("the config has no ${{env:{var}}}"))
            .1
    }

    fn spawn(mut cmd: Command, config: &std::path::Path, ready_port: u16) -> Sluice {
        let log = config.with_extension("log");
        let child = cmd
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let s = Sluice {
            child,
            log,
            ports: Vec::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", ready_port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "sluice did not start:\n{}",
                s.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        s
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn sigterm(&self) {
        let ok = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(ok.success());
    }

    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "sluice did not exit in {limit:?}:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Sluice {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Peak resident memory of a process, from `/proc/<pid>/status`.
pub fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap()
        / 1024
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A minimal HTTP/1.1 client over one keep-alive connection.
pub struct Client {
    reader: BufReader<TcpStream>,
    port: u16,
}

impl Client {
    pub fn connect(port: u16) -> std::io::Result<Client> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        Ok(Client {
            reader: BufReader::new(stream),
            port,
        })
    }

    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<Response> {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\n",
            self.port,
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let stream = self.reader.get_mut();
        stream.write_all(head.as_bytes())?;
        stream.write_all(body)?;
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        let len: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        self.reader.read_exact(&mut body)?;
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    /// `POST /v1/logs` of an OTLP/protobuf logs request.
    pub fn post_logs(&mut self, body: &[u8]) -> std::io::Result<Response> {
        let pb = [("Content-Type", "application/x-protobuf")];
        self.request("POST", "/v1/logs", &pb, body)
    }

    pub fn post(&mut self, body: &[u8]) -> std::io::Result<Response> {
        self.request("POST", "/", &[], body)
    }
}

/// One-shot request on a fresh connection.
pub fn post(port: u16, headers: &[(&str, &str)], body: &[u8]) -> Response {
    Client::connect(port)
        .unwrap()
        .request("POST", "/", headers, body)
        .unwrap()
}

pub fn get(port: u16, path: &str) -> std::io::Result<Response> {
    Client::connect(port)?.request("GET", path, &[], b"")
}

/// Reads `name{labels} value` from a `/metrics` page.
pub fn metric(port: u16, series: &str) -> u64 {
    let page = String::from_utf8(get(port, "/metrics").unwrap().body).unwrap();
    page.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .unwrap_or_else(|| panic!("no series {series} in\n{page}"))
        .parse()
        .unwrap()
}

/// A TCP consumer that keeps every line it receives, across reconnections.
pub struct Collector {
    pub addr: SocketAddr,
    pub lines: Arc<Mutex<Vec<String>>>,
    _accept: JoinHandle<()>,
}

impl Collector {
    pub fn start() -> Collector {
        Self::on(TcpListener::bind("127.0.0.1:0").unwrap())
    }

    pub fn on_port(port: u16) -> Collector {
        Self::on(TcpListener::bind(("127.0.0.1", port)).unwrap())
    }

    fn on(listener: TcpListener) -> Collector {
        let addr = listener.local_addr().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        let accept = std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let sink = Arc::clone(&sink);
                std::thread::spawn(move || {
                    for line in BufReader::new(conn).lines() {
                        match line {
                            Ok(l) => sink.lock().unwrap().push(l),
                            Err(_) => return,
                        }
                    }
                });
            }
        });
        Collector {
            addr,
            lines,
            _accept: accept,
        }
    }

    pub fn count(&self) -> usize {
        self.lines.lock().unwrap().len()
    }

    /// Waits until at least `n` lines arrived.
    pub fn wait_for(&self, n: usize, limit: Duration) -> Vec<String> {
        let deadline = Instant::now() + limit;
        while self.count() < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.lines.lock().unwrap().clone()
    }
}

/// An Apache common log line, unique per `i`.
pub fn apache_line(i: usize) -> String {
    format!(
        "10.0.{}.{} - user{} [05/Feb/2023:09:{:02}:{:02} +0000] \"GET /item/{i} HTTP/1.1\" {} {}",
        (i / 256) % 256,
        i % 256,
        i % 97,
        (i / 60) % 60,
        i % 60,
        [200, 404, 500, 302][i % 4],
        1000 + i
    )
}

/// A Python with the real OTLP client packages of `tests/python/requirements.txt`, in a venv
/// under `target/pyenv` made on first use (needs `python3` and access to PyPI).
#[allow(dead_code)]
pub fn python() -> PathBuf {
    static READY: Mutex<bool> = Mutex::new(false);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let venv = root.join("target/pyenv");
    let bin = venv.join("bin/python");
    let reqs = root.join("tests/python/requirements.txt");
    let stamp = venv.join("requirements.txt");
    let mut ready = READY.lock().unwrap_or_else(|e| e.into_inner());
    let wanted = std::fs::read(&reqs).unwrap();
    if !*ready && std::fs::read(&stamp).ok().as_ref() != Some(&wanted) {
        let run = |cmd: &mut Command| {
            let out = cmd.output().expect("python3 must be installed");
            assert!(
                out.status.success(),
                "{cmd:?} failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv));
        run(Command::new(&bin)
            .args([
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(&reqs));
        std::fs::write(&stamp, wanted).unwrap();
    }
    *ready = true;
    bin
}

/// Runs `tests/python/<script>` with `args` in the [`python`] venv; its standard output, JSON.
#[allow(dead_code)]
pub fn run_python(script: &str, args: &[&str]) -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(script);
    let out = Command::new(python())
        .arg(path)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// One request an [`OtlpSink`] received.
#[derive(Clone)]
pub struct Received {
    pub path: String,
    pub at: Instant,
    pub body: Vec<u8>,
}

/// An OTLP/HTTP server that keeps every request body (uncompressed requests only) and answers
/// 200 after `hold`, so tests can see exactly what an exporter sent and when.
pub struct OtlpSink {
    pub port: u16,
    pub received: Arc<Mutex<Vec<Received>>>,
    /// While set, requests are read but not answered (a stalled peer).
    pub paused: Arc<std::sync::atomic::AtomicBool>,
}

impl OtlpSink {
    pub fn start(hold: Duration) -> OtlpSink {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let paused = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sink = Arc::clone(&received);
        let gate = Arc::clone(&paused);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let sink = Arc::clone(&sink);
                let gate = Arc::clone(&gate);
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(conn);
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                        let mut len = 0;
                        loop {
                            let mut h = String::new();
                            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                                return;
                            }
                            let h = h.trim_end();
                            if h.is_empty() {
                                break;
                            }
                            if let Some((k, v)) = h.split_once(':')
                                && k.eq_ignore_ascii_case("content-length")
                            {
                                len = v.trim().parse().unwrap_or(0);
                            }
                        }
                        let mut body = vec![0; len];
                        if reader.read_exact(&mut body).is_err() {
                            return;
                        }
                        sink.lock().unwrap().push(Received {
                            path,
                            at: Instant::now(),
                            body,
                        });
                        std::thread::sleep(hold);
                        while gate.load(Ordering::Relaxed) {
                            std::thread::sleep(Duration::from_millis(10));
                        }
                        let answer = "HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n\
                                      Content-Length: 0\r\n\r\n";
                        if reader.get_mut().write_all(answer.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        OtlpSink {
            port,
            received,
            paused,
        }
    }

    pub fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }

    /// Waits until `n` requests arrived (or `limit` passed).
    pub fn wait_for(&self, n: usize, limit: Duration) -> usize {
        let deadline = Instant::now() + limit;
        while self.count() < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.count()
    }
}

/// A `sluice-es-mock` on a free port, killed when dropped.
pub struct Mock {
    pub child: Child,
    pub port: u16,
}

impl Mock {
    pub fn start(args: &[&str]) -> Mock {
        let (child, port) = spawn_on_port_zero(env!("CARGO_BIN_EXE_sluice-es-mock"), args);
        Mock { child, port }
    }

    pub fn bulk(&self, body: &[u8], headers: &[(&str, &str)]) -> Response {
        let mut h = vec![("Content-Type", "application/x-ndjson")];
        h.extend_from_slice(headers);
        Client::connect(self.port)
            .unwrap()
            .request("POST", "/_bulk", &h, body)
            .unwrap()
    }

    pub fn json(&self, path: &str) -> serde_json::Value {
        serde_json::from_slice(&get(self.port, path).unwrap().body).unwrap()
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Mock {
    /// Every stored document as `{_index, _id, _source}`.
    pub fn docs(&self) -> Vec<serde_json::Value> {
        let body = get(self.port, "/_mock/docs").unwrap().body;
        body.split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect()
    }

    /// Waits until the mock holds at least `n` documents; returns them.
    pub fn wait_for_docs(&self, n: usize, limit: Duration) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + limit;
        loop {
            let docs = self.docs();
            if docs.len() >= n || Instant::now() > deadline {
                return docs;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl CLI (Debian package openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`ca.pem`), a server certificate for localhost / 127.0.0.1 (`server.pem`, `server.key`)
/// and a client certificate (`client.pem`, `client.key`), signed by it; and a second CA with its
/// own server certificate (`ca2.pem`, `server2.pem`, `server2.key`), for certificate rotation.
/// Made once per test process (the tests run in parallel and would overwrite each other's).
pub fn certificates() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(make_certificates).clone()
}

fn make_certificates() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sluice-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (ca, cn) in [("ca", "sluice test CA"), ("ca2", "sluice second CA")] {
        openssl(
            &dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                &format!("/CN={cn}"),
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
                "-keyout",
                &format!("{ca}.key"),
                "-out",
                &format!("{ca}.pem"),
            ],
        );
    }
    // Python 3.13's ssl verifies strictly (X509_STRICT): leaves need an authority key id.
    let server = "subjectAltName=DNS:localhost,IP:127.0.0.1\n\
                  authorityKeyIdentifier=keyid,issuer\nbasicConstraints=CA:FALSE\n\
                  extendedKeyUsage=serverAuth";
    let client = "extendedKeyUsage=clientAuth\nauthorityKeyIdentifier=keyid,issuer\n\
                  basicConstraints=CA:FALSE";
    for (name, ca, ext) in [
        ("server", "ca", server),
        ("client", "ca", client),
        ("server2", "ca2", server),
    ] {
        std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
        openssl(
            &dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                &format!("/CN={name}"),
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
            ],
        );
        openssl(
            &dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                &format!("{ca}.pem"),
                "-CAkey",
                &format!("{ca}.key"),
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &format!("{name}.ext"),
                "-out",
                &format!("{name}.pem"),
            ],
        );
    }
    dir
}

/// Starts one of the in-repo stand-in servers on port 0; it says which port it got, so there
/// is no race with other tests for a port picked in advance.
fn spawn_on_port_zero(bin: &str, args: &[&str]) -> (Child, u16) {
    let mut child = Command::new(bin)
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{bin} did not start: {line:?}"));
    (child, port)
}

/// `sluice-kube-mock`: a stand-in Kubernetes API server (list/watch, objects, a kubelet
/// summary) on a port of its own.
pub struct KubeMock {
    child: Child,
    pub port: u16,
}

impl KubeMock {
    pub fn start(args: &[&str]) -> KubeMock {
        let (child, port) = spawn_on_port_zero(env!("CARGO_BIN_EXE_sluice-kube-mock"), args);
        KubeMock { child, port }
    }

    fn send(&self, method: &str, path: &str, body: &serde_json::Value) -> serde_json::Value {
        let body = body.to_string();
        let r = Client::connect(self.port)
            .unwrap()
            .request(
                method,
                path,
                &[("Content-Type", "application/json")],
                body.as_bytes(),
            )
            .unwrap();
        assert!(
            r.status < 300,
            "{method} {path}: {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
        serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null)
    }

    /// Creates or replaces objects (one, or an array); returns them as stored (uid,
    /// resourceVersion).
    pub fn apply(&self, objects: serde_json::Value) -> serde_json::Value {
        self.send("POST", "/_mock/objects", &objects)
    }

    pub fn delete(&self, api_version: &str, kind: &str, namespace: &str, name: &str) {
        let path = format!(
            "/_mock/objects?apiVersion={api_version}&kind={kind}&namespace={namespace}&name={name}"
        );
        self.send("DELETE", &path, &serde_json::Value::Null);
    }

    /// `POST /_mock/<what>`: `compact`, `close-watches`, `summary` (with `body`).
    pub fn control(&self, what: &str, body: serde_json::Value) -> serde_json::Value {
        self.send("POST", &format!("/_mock/{what}"), &body)
    }

    pub fn stats(&self) -> serde_json::Value {
        serde_json::from_slice(&get(self.port, "/_mock/stats").unwrap().body).unwrap()
    }

    /// A kubeconfig for this server, written under the temp dir.
    pub fn kubeconfig(&self) -> PathBuf {
        let path = std::env::temp_dir().join(format!(
            "sluice-kubeconfig-{}-{}.yaml",
            std::process::id(),
            self.port
        ));
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: mock\n  cluster:\n    server: http://127.0.0.1:{}\nusers:\n- name: sluice\n  user:\n    token: test-token\ncontexts:\n- name: mock\n  context:\n    cluster: mock\n    user: sluice\ncurrent-context: mock\n",
            self.port
        );
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for KubeMock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An OTLP logs request of one record under one resource and scope.
pub fn one_record(
    record: opentelemetry_proto::tonic::logs::v1::LogRecord,
) -> opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest {
    use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};
    opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![record],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// The requests that cost the most decoded per byte on the wire: one record of `n` empty
/// attributes, a body map of `n` empty entries, a body array of `n` empty elements (2 bytes
/// each on the wire, about 4 MB for 2,000,000).
pub fn costliest_records(
    n: usize,
) -> Vec<(
    &'static str,
    opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest,
)> {
    use opentelemetry_proto::tonic::common::v1::{
        AnyValue, ArrayValue, KeyValue, KeyValueList, any_value::Value,
    };
    use opentelemetry_proto::tonic::logs::v1::LogRecord;
    let body = |v: Value| LogRecord {
        body: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    };
    vec![
        (
            "record attributes",
            one_record(LogRecord {
                attributes: vec![KeyValue::default(); n],
                ..Default::default()
            }),
        ),
        (
            "map entries",
            one_record(body(Value::KvlistValue(KeyValueList {
                values: vec![KeyValue::default(); n],
            }))),
        ),
        (
            "array elements",
            one_record(body(Value::ArrayValue(ArrayValue {
                values: vec![AnyValue::default(); n],
            }))),
        ),
    ]
}
