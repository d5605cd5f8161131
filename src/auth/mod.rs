//! Authentication: receivers checking their clients, exporters presenting sluice's own
//! credentials, configured like the Collector's `configauth`:
//!
//! ```yaml
//! extensions:
//!   bearertokenauth: { filename: /var/run/secrets/sluice/token }
//! receivers:
//!   otlp:
//!     protocols:
//!       grpc: { auth: { authenticator: bearertokenauth } }
//! exporters:
//!   otlp:
//!     auth: { authenticator: bearertokenauth }
//! service:
//!   extensions: [bearertokenauth]     # an authenticator must be enabled here, as in the Collector
//! ```
//!
//! The extensions (`extensions::bearertokenauth`, `extensions::basicauth`) hold the secrets;
//! components only keep the [`ServerAuth`] or [`ClientAuth`] they were given at build time.
//! A receiver checks a request's headers before it reads a byte of its body, so an
//! unauthenticated client costs no body memory and forwards nothing.

pub mod htpasswd;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use hyper::HeaderMap;
use hyper::header::{HeaderName, HeaderValue};
use serde::Deserialize;

use crate::config::ConfigError;
use crate::pipeline::BoxFuture;

/// A component's `auth:` section.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// The id of an auth extension (`bearertokenauth`, `basicauth/clients`, ...) that is
    /// declared under `extensions` and enabled in `service.extensions`.
    pub authenticator: String,
}

/// Why a request was refused. The client is only told "missing" or "invalid", never which part
/// of its credentials was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("missing credentials")]
    Missing,
    #[error("invalid credentials")]
    Invalid,
    /// Too many credentials are waiting to be checked (slow password hashes): retry shortly.
    /// Answered 429 with `Retry-After` / RESOURCE_EXHAUSTED with `RetryInfo`, not 401.
    #[error("too many logins are being checked; retry shortly")]
    Busy,
}

/// The retry hint sent with [`Denied::Busy`].
pub const BUSY_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// The outcome of a check: known at once (a token compare, a cached password), or after work
/// that must not run on the reactor (a bcrypt verification).
pub enum Check {
    Done(Result<(), Denied>),
    Pending(BoxFuture<Result<(), Denied>>),
}

impl Check {
    pub async fn outcome(self) -> Result<(), Denied> {
        match self {
            Check::Done(r) => r,
            Check::Pending(f) => f.await,
        }
    }
}

/// Checks the credentials a client sent with a request (HTTP headers, or gRPC metadata, which
/// arrives as the same HTTP/2 headers).
pub trait ServerAuth: Send + Sync {
    fn authenticate(&self, headers: &HeaderMap) -> Check;
    /// The `WWW-Authenticate` value sent with a 401.
    fn challenge(&self) -> HeaderValue;
}

/// Adds sluice's credentials to an outgoing request.
pub trait ClientAuth: Send + Sync {
    /// The header to add, read fresh for each request so a rotated credential is used at once.
    fn header(&self) -> (HeaderName, HeaderValue);
}

/// What an auth extension offers: one side, or both.
#[derive(Clone, Default)]
pub struct Authenticator {
    pub server: Option<Arc<dyn ServerAuth>>,
    pub client: Option<Arc<dyn ClientAuth>>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("server", &self.server.is_some())
            .field("client", &self.client.is_some())
            .finish()
    }
}

/// The auth extensions a config declares, for components to look up by id at build time.
#[derive(Default)]
pub struct Authenticators {
    /// Built and listed in `service.extensions`.
    enabled: BTreeMap<String, Authenticator>,
    /// Declared under `extensions` (built or not) but not enabled.
    declared: BTreeSet<String>,
}

impl Authenticators {
    pub const fn new() -> Self {
        Authenticators {
            enabled: BTreeMap::new(),
            declared: BTreeSet::new(),
        }
    }

    /// Records extension `id`; `enabled` when `service.extensions` lists it.
    pub fn add(&mut self, id: &str, enabled: bool, auth: Option<Authenticator>) {
        match (enabled, auth) {
            (true, Some(a)) => {
                self.enabled.insert(id.to_string(), a);
            }
            _ => {
                self.declared.insert(id.to_string());
            }
        }
    }

    fn find(&self, path: &str, cfg: &AuthConfig) -> Result<&Authenticator, ConfigError> {
        let at = format!("{path}.auth.authenticator");
        let id = &cfg.authenticator;
        if let Some(a) = self.enabled.get(id) {
            return Ok(a);
        }
        let why = if self.declared.contains(id) {
            format!(
                "extension {id:?} is not an enabled auth extension: list it in \
                 service.extensions (auth extensions: bearertokenauth, basicauth)"
            )
        } else {
            format!("extension {id:?} is not declared under extensions")
        };
        Err(ConfigError::new(at, why))
    }

    /// The server side of `cfg.authenticator`, for a receiver at `path`.
    pub fn server(&self, path: &str, cfg: &AuthConfig) -> Result<Arc<dyn ServerAuth>, ConfigError> {
        let a = self.find(path, cfg)?;
        a.server.clone().ok_or_else(|| {
            ConfigError::new(
                format!("{path}.auth.authenticator"),
                format!(
                    "extension {:?} has no server side (basicauth needs htpasswd to check clients)",
                    cfg.authenticator
                ),
            )
        })
    }

    /// The client side of `cfg.authenticator`, for an exporter at `path`.
    pub fn client(&self, path: &str, cfg: &AuthConfig) -> Result<Arc<dyn ClientAuth>, ConfigError> {
        let a = self.find(path, cfg)?;
        a.client.clone().ok_or_else(|| {
            ConfigError::new(
                format!("{path}.auth.authenticator"),
                format!(
                    "extension {:?} has no client side (basicauth needs client_auth to log in)",
                    cfg.authenticator
                ),
            )
        })
    }
}

/// Compares a presented credential with every accepted one in time that depends only on the
/// lengths, so a client cannot find a token byte by byte from answer times.
pub fn matches_any(presented: &[u8], accepted: &[Vec<u8>]) -> bool {
    use subtle::ConstantTimeEq;
    let mut hit = subtle::Choice::from(0);
    for a in accepted {
        hit |= presented.ct_eq(a);
    }
    hit.into()
}

/// A password or token from a config. Only a string is accepted, and an error never shows what
/// was written (a YAML number would be echoed by serde's own message); `Debug` shows `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Secret;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Secret, E> {
                Err(E::custom("expected a string; quote the value"))
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Secret, E> {
                Err(E::custom("expected a string; quote the value"))
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Secret, E> {
                Err(E::custom("expected a string; quote the value"))
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Secret, E> {
                Err(E::custom("expected a string; quote the value"))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Secret, E> {
                Err(E::custom("expected a string, found nothing"))
            }
        }
        d.deserialize_any(V)
    }
}

/// A header value holding a secret: never shown by `Debug`, and HTTP/2 never indexes it.
pub fn secret_header(value: &str) -> Option<HeaderValue> {
    let mut v = HeaderValue::try_from(value).ok()?;
    v.set_sensitive(true);
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_needs_an_exact_accepted_value() {
        let accepted = vec![b"Bearer one".to_vec(), b"Bearer two".to_vec()];
        assert!(matches_any(b"Bearer two", &accepted));
        assert!(!matches_any(b"Bearer tw", &accepted));
        assert!(!matches_any(b"Bearer twoo", &accepted));
        assert!(!matches_any(b"", &accepted));
        assert!(!matches_any(b"Bearer one", &[]));
    }

    #[test]
    fn an_authenticator_must_be_declared_and_enabled() {
        let mut auths = Authenticators::new();
        auths.add("basicauth", false, Some(Authenticator::default()));
        let cfg = |id: &str| AuthConfig {
            authenticator: id.into(),
        };
        let err = |r: Result<Arc<dyn ServerAuth>, ConfigError>| r.err().unwrap().to_string();
        assert_eq!(
            err(auths.server("receivers.otlp", &cfg("nope"))),
            "receivers.otlp.auth.authenticator: extension \"nope\" is not declared under extensions"
        );
        assert!(
            err(auths.server("r", &cfg("basicauth"))).contains("list it in service.extensions")
        );
        auths.add("bearertokenauth", true, Some(Authenticator::default()));
        assert!(err(auths.server("r", &cfg("bearertokenauth"))).contains("no server side"));
    }
}
