//! `basicauth`: HTTP Basic authentication, like the Collector's extension of that name.
//! Receivers check users against an htpasswd file; exporters log in with `client_auth`.
//!
//! ```yaml
//! extensions:
//!   basicauth/server:
//!     htpasswd:
//!       file: /etc/sluice/htpasswd       # re-read when it changes
//!       inline: |                        # more users, in the same format
//!         agent:$apr1$abcdefgh$h9FWgUz3n9YxylKLlR5SQ/
//!   basicauth/client:
//!     client_auth:
//!       username: agent
//!       password: ${env:SLUICE_PASSWORD}
//! ```
//!
//! Password hashes are slow on purpose (bcrypt: tens of milliseconds), so they are verified on
//! the blocking pool, two at a time at most, and a verified `Authorization` value is remembered
//! for five minutes (by a keyed digest, not in clear) until the htpasswd file changes: a client
//! that sends the same credentials on every request pays for one verification, and a flood of
//! wrong passwords cannot take more than two threads. At most [`WAITING`] more wait their
//! turn; beyond that a login is answered 429 with `Retry-After` (RESOURCE_EXHAUSTED with
//! `RetryInfo` over gRPC), so a flood cannot queue a legitimate client behind it for long.
//! A name not in the file is checked against the costliest hash that is (see `htpasswd`), so
//! user names cannot be told apart by the time of the answer; hash costs above a stated
//! maximum are refused when the file is read. A shutdown does not wait for verifications: the
//! runtime is left after a short grace, whatever still runs on its blocking pool.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use base64::Engine;
use hyper::HeaderMap;
use hyper::header::{AUTHORIZATION, HeaderName, HeaderValue};
use serde::Deserialize;
use sha1::{Digest, Sha1};
use tokio::sync::Semaphore;

use super::{AuthOnly, Extension};
use crate::auth::htpasswd::Htpasswd;
use crate::auth::{Authenticator, Check, ClientAuth, Denied, Secret, ServerAuth, secret_header};
use crate::component::{Built, Context, NO_SIGNALS, Spec, Yaml};
use crate::config::{ConfigError, decode};
use crate::watched::Watched;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The users a receiver accepts. Needed to use this extension on a receiver.
    #[serde(default)]
    pub htpasswd: Option<HtpasswdConfig>,
    /// The login an exporter sends. Needed to use this extension on an exporter.
    #[serde(default)]
    pub client_auth: Option<ClientConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HtpasswdConfig {
    #[serde(default)]
    pub file: Option<PathBuf>,
    #[serde(default)]
    pub inline: Option<Secret>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    pub username: String,
    pub password: Secret,
}

/// How long a verified credential is remembered.
const REMEMBER: Duration = Duration::from_secs(300);
/// Credentials remembered at most; beyond, the oldest half is forgotten.
const REMEMBERED: usize = 1024;
/// Slow verifications running at once.
const VERIFYING: usize = 2;
/// Verifications waiting for one of those, at most.
pub const WAITING: usize = 8;

/// Shared by the receivers that use the extension, and by their pending verifications.
struct Users(Arc<Shared>);

struct Shared {
    file: Option<Watched<Htpasswd>>,
    inline: Option<Arc<Htpasswd>>,
    /// Verified `Authorization` values by keyed digest, valid for the file version they were
    /// checked against.
    remembered: Mutex<Remembered>,
    key: [u8; 16],
    verifying: Arc<Semaphore>,
    /// Verifications running or waiting to run.
    queued: Arc<std::sync::atomic::AtomicUsize>,
}

/// A place among the verifications queued, given back when dropped.
struct Queued(Arc<std::sync::atomic::AtomicUsize>);

impl Queued {
    fn take(count: &Arc<std::sync::atomic::AtomicUsize>) -> Option<Queued> {
        use std::sync::atomic::Ordering;
        let mut n = count.load(Ordering::Relaxed);
        loop {
            if n >= VERIFYING + WAITING {
                return None;
            }
            match count.compare_exchange_weak(n, n + 1, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return Some(Queued(Arc::clone(count))),
                Err(now) => n = now,
            }
        }
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

#[derive(Default)]
struct Remembered {
    version: Weak<Htpasswd>,
    seen: HashMap<[u8; 20], Instant>,
}

impl Shared {
    fn digest(&self, value: &[u8]) -> [u8; 20] {
        let mut h = Sha1::new();
        h.update(self.key);
        h.update(value);
        h.finalize().into()
    }

    /// Whether `digest` was verified recently against the file version `current`.
    fn recalls(&self, digest: &[u8; 20], current: Option<&Arc<Htpasswd>>) -> bool {
        let mut r = self.remembered.lock().unwrap_or_else(|p| p.into_inner());
        let same = match current {
            Some(c) => r.version.upgrade().is_some_and(|v| Arc::ptr_eq(&v, c)),
            None => true,
        };
        if !same {
            r.seen.clear();
            r.version = current.map(Arc::downgrade).unwrap_or_default();
            return false;
        }
        r.seen.get(digest).is_some_and(|t| t.elapsed() < REMEMBER)
    }

    fn remember(&self, digest: [u8; 20], version: Option<&Arc<Htpasswd>>) {
        let mut r = self.remembered.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(v) = version
            && !r.version.upgrade().is_some_and(|old| Arc::ptr_eq(&old, v))
        {
            return;
        }
        if r.seen.len() >= REMEMBERED {
            let mut times: Vec<Instant> = r.seen.values().copied().collect();
            times.sort_unstable();
            let cut = times[times.len() / 2];
            r.seen.retain(|_, t| *t > cut);
        }
        r.seen.insert(digest, Instant::now());
    }
}

/// `user`, `password` from `Basic <base64(user:password)>`.
fn credentials(value: &HeaderValue) -> Option<(String, Vec<u8>)> {
    let v = value.as_bytes();
    let scheme = v.get(..6)?;
    if !scheme.eq_ignore_ascii_case(b"basic ") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(v[6..].trim_ascii())
        .ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    let user = String::from_utf8(decoded[..colon].to_vec()).ok()?;
    Some((user, decoded[colon + 1..].to_vec()))
}

impl ServerAuth for Users {
    fn authenticate(&self, headers: &HeaderMap) -> Check {
        let Some(value) = headers.get(AUTHORIZATION) else {
            return Check::Done(Err(Denied::Missing));
        };
        let shared = &self.0;
        let file = shared.file.as_ref().map(|w| w.get());
        let digest = shared.digest(value.as_bytes());
        if shared.recalls(&digest, file.as_ref()) {
            return Check::Done(Ok(()));
        }
        let Some((user, password)) = credentials(value) else {
            return Check::Done(Err(Denied::Invalid));
        };
        let Some(queued) = Queued::take(&shared.queued) else {
            return Check::Done(Err(Denied::Busy));
        };
        let shared = Arc::clone(shared);
        Check::Pending(Box::pin(async move {
            let _queued = queued;
            let Ok(_permit) = Arc::clone(&shared.verifying).acquire_owned().await else {
                return Err(Denied::Invalid);
            };
            let (inline, checked) = (shared.inline.clone(), file.clone());
            let ok = tokio::task::spawn_blocking(move || {
                // Where the user is not listed, the list that is checked pays its decoy's cost.
                match (inline.as_ref(), checked.as_ref()) {
                    (Some(h), _) if h.has(&user) => h.verify(&user, &password),
                    (_, Some(f)) => f.verify(&user, &password),
                    (Some(h), None) => h.verify(&user, &password),
                    (None, None) => false,
                }
            })
            .await
            .unwrap_or(false);
            if ok {
                shared.remember(digest, file.as_ref());
                Ok(())
            } else {
                Err(Denied::Invalid)
            }
        }))
    }

    fn challenge(&self) -> HeaderValue {
        HeaderValue::from_static("Basic realm=\"sluice\"")
    }
}

struct Login(HeaderValue);

impl ClientAuth for Login {
    fn header(&self) -> (HeaderName, HeaderValue) {
        (AUTHORIZATION, self.0.clone())
    }
}

fn random_key() -> [u8; 16] {
    let a = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let b = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&a.to_le_bytes());
    k[8..].copy_from_slice(&b.to_le_bytes());
    k
}

/// The `basicauth` extension type, as the registry lists it.
pub const SPEC: Spec<Box<dyn Extension>> = Spec::new(
    "basicauth",
    NO_SIGNALS,
    build,
    "{client_auth: {username: a, password: b}}",
);

pub fn build(ctx: &Context, raw: Yaml) -> Built<Box<dyn Extension>> {
    let cfg: Config = decode(ctx.path, raw).map_err(|e| vec![e])?;
    let at = |field: &str| format!("{}.{field}", ctx.path);
    let mut errors = Vec::new();
    if cfg.htpasswd.is_none() && cfg.client_auth.is_none() {
        errors.push(ConfigError::new(
            ctx.path,
            "set htpasswd (to check clients) or client_auth (to log in), or both",
        ));
    }
    let mut server = None;
    if let Some(h) = &cfg.htpasswd {
        let inline = match &h.inline {
            Some(text) => match Htpasswd::parse(text.0.as_bytes()) {
                Ok(p) => Some(Arc::new(p)),
                Err(e) => {
                    errors.push(ConfigError::new(at("htpasswd.inline"), e));
                    None
                }
            },
            None => None,
        };
        let file = match &h.file {
            Some(path) => match Watched::load(path.clone(), Htpasswd::parse) {
                Ok(w) => Some(w),
                Err(e) => {
                    errors.push(ConfigError::new(at("htpasswd.file"), e));
                    None
                }
            },
            None => None,
        };
        let empty = inline.as_ref().is_none_or(|h| h.is_empty())
            && file.as_ref().is_none_or(|f| f.get().is_empty());
        if errors.is_empty() && empty {
            errors.push(ConfigError::new(
                at("htpasswd"),
                "no users: give file or inline",
            ));
        }
        server = Some(Arc::new(Users(Arc::new(Shared {
            file,
            inline,
            remembered: Mutex::new(Remembered::default()),
            key: random_key(),
            verifying: Arc::new(Semaphore::new(VERIFYING)),
            queued: Arc::default(),
        }))));
    }
    let mut client = None;
    if let Some(c) = &cfg.client_auth {
        if c.username.contains(':') {
            errors.push(ConfigError::new(
                at("client_auth.username"),
                "may not contain ':'",
            ));
        }
        let token = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", c.username, c.password.0));
        match secret_header(&format!("Basic {token}")) {
            Some(v) => client = Some(Arc::new(Login(v)) as Arc<dyn ClientAuth>),
            None => errors.push(ConfigError::new(at("client_auth"), "not a valid header")),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Box::new(AuthOnly(Authenticator {
        server: server.map(|s| s as Arc<dyn ServerAuth>),
        client,
    })))
}
