//! `bearertokenauth`: a shared token, like the Collector's extension of that name. Receivers
//! that use it accept only requests whose `Authorization` header is `Bearer <token>`; exporters
//! that use it send that header.
//!
//! ```yaml
//! extensions:
//!   bearertokenauth:
//!     filename: /var/run/secrets/sluice/token   # re-read when it changes (a rotated Secret)
//!     # token: ${env:SLUICE_TOKEN}              # or inline
//!     # tokens: [old, new]                      # several accepted at once, for rotation
//!     scheme: Bearer                            # default
//!     header: Authorization                     # default
//! ```
//!
//! Exporters send the first token (the file's first line). Comparisons take time that depends
//! only on lengths. A missing or wrong token gets 401 / UNAUTHENTICATED.

use std::path::PathBuf;
use std::sync::Arc;

use hyper::HeaderMap;
use hyper::header::{HeaderName, HeaderValue};
use serde::Deserialize;

use super::{AuthOnly, Extension};
use crate::auth::{
    Authenticator, Check, ClientAuth, Denied, Secret, ServerAuth, matches_any, secret_header,
};
use crate::component::{Built, Context, NO_SIGNALS, Spec, Yaml};
use crate::config::{ConfigError, decode};
use crate::watched::Watched;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The scheme before the token. Default `Bearer`; empty sends and expects the bare token.
    #[serde(default = "default_scheme")]
    pub scheme: String,
    /// The header that carries it. Default `Authorization`.
    #[serde(default = "default_header")]
    pub header: String,
    /// The token. One of `token`, `tokens` and `filename` is required.
    #[serde(default)]
    pub token: Option<Secret>,
    /// Several accepted tokens (the first is the one sent).
    #[serde(default)]
    pub tokens: Vec<Secret>,
    /// A file holding the token(s), one per line; re-read within a second of a change.
    #[serde(default)]
    pub filename: Option<PathBuf>,
}

fn default_scheme() -> String {
    "Bearer".into()
}

fn default_header() -> String {
    "Authorization".into()
}

/// Longest token accepted: a header that long is already near every proxy's limit.
const MAX_TOKEN: usize = 8 << 10;

/// The accepted header values, `<scheme> <token>`, the first one being the one sent.
struct Tokens(Vec<Vec<u8>>);

fn tokens_from(list: impl Iterator<Item = String>, scheme: &str) -> Result<Tokens, String> {
    let mut out = Vec::new();
    for t in list {
        if t.is_empty() {
            continue;
        }
        if t.len() > MAX_TOKEN || HeaderValue::try_from(t.as_str()).is_err() {
            return Err(format!(
                "a token must be at most {MAX_TOKEN} visible ASCII characters"
            ));
        }
        out.push(if scheme.is_empty() {
            t.into_bytes()
        } else {
            format!("{scheme} {t}").into_bytes()
        });
    }
    if out.is_empty() {
        return Err("no token".into());
    }
    Ok(Tokens(out))
}

/// The file's non-empty lines as tokens.
fn parse_file(bytes: &[u8], scheme: &str) -> Result<Tokens, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_string())?;
    let lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from);
    tokens_from(lines, scheme).map_err(|e| {
        if e == "no token" {
            "holds no token".into()
        } else {
            e
        }
    })
}

enum Source {
    Fixed(Tokens),
    File(Watched<Tokens>),
}

pub struct BearerToken {
    header: HeaderName,
    challenge: HeaderValue,
    source: Source,
}

impl BearerToken {
    /// The accepted values in force; from a file, re-made only when the file changed.
    fn with_tokens<R>(&self, f: impl FnOnce(&Tokens) -> R) -> R {
        match &self.source {
            Source::Fixed(t) => f(t),
            Source::File(w) => f(&w.get()),
        }
    }
}

impl ServerAuth for BearerToken {
    fn authenticate(&self, headers: &HeaderMap) -> Check {
        let Some(got) = headers.get(&self.header) else {
            return Check::Done(Err(Denied::Missing));
        };
        let ok = self.with_tokens(|t| matches_any(got.as_bytes(), &t.0));
        Check::Done(if ok { Ok(()) } else { Err(Denied::Invalid) })
    }

    fn challenge(&self) -> HeaderValue {
        self.challenge.clone()
    }
}

impl ClientAuth for BearerToken {
    fn header(&self) -> (HeaderName, HeaderValue) {
        let value = self.with_tokens(|t| {
            t.0.first()
                .and_then(|v| std::str::from_utf8(v).ok())
                .and_then(secret_header)
        });
        (
            self.header.clone(),
            value.unwrap_or(HeaderValue::from_static("")),
        )
    }
}

/// The `bearertokenauth` extension type, as the registry lists it.
pub const SPEC: Spec<Box<dyn Extension>> =
    Spec::new("bearertokenauth", NO_SIGNALS, build, "{token: abc}");

pub fn build(ctx: &Context, raw: Yaml) -> Built<Box<dyn Extension>> {
    let cfg: Config = decode(ctx.path, raw).map_err(|e| vec![e])?;
    let at = |field: &str| format!("{}.{field}", ctx.path);
    let mut errors = Vec::new();
    let header = HeaderName::try_from(cfg.header.as_str());
    if header.is_err() {
        errors.push(ConfigError::new(
            at("header"),
            "not a valid HTTP header name",
        ));
    }
    if cfg.scheme.len() > 64
        || !cfg
            .scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        errors.push(ConfigError::new(
            at("scheme"),
            "at most 64 letters, digits and '-'",
        ));
    }
    let inline = cfg.token.iter().chain(&cfg.tokens).map(|s| s.0.clone());
    let source = match (&cfg.filename, cfg.token.is_some() || !cfg.tokens.is_empty()) {
        (Some(_), true) => {
            errors.push(ConfigError::new(
                at("filename"),
                "choose one of token / tokens and filename",
            ));
            None
        }
        (None, false) => {
            errors.push(ConfigError::new(ctx.path, "set token, tokens or filename"));
            None
        }
        (None, true) => match tokens_from(inline, &cfg.scheme) {
            Ok(t) => Some(Source::Fixed(t)),
            Err(e) => {
                errors.push(ConfigError::new(at("token"), e));
                None
            }
        },
        (Some(file), false) => {
            let scheme = cfg.scheme.clone();
            let parse = move |b: &[u8]| parse_file(b, &scheme);
            match Watched::load(file.clone(), parse) {
                Ok(w) => Some(Source::File(w)),
                Err(e) => {
                    errors.push(ConfigError::new(at("filename"), e));
                    None
                }
            }
        }
    };
    match (header, source) {
        (Ok(header), Some(source)) if errors.is_empty() => {
            let token = Arc::new(BearerToken {
                challenge: HeaderValue::from_str(&cfg.scheme)
                    .ok()
                    .filter(|v| !v.is_empty())
                    .unwrap_or(HeaderValue::from_static("Bearer")),
                header,
                source,
            });
            Ok(Box::new(AuthOnly(Authenticator {
                server: Some(token.clone()),
                client: Some(token),
            })))
        }
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ComponentId;
    use crate::telemetry::Registry;

    fn built(yaml: &str) -> Result<Authenticator, Vec<String>> {
        let id = ComponentId::parse("bearertokenauth").unwrap();
        let reg = Registry::default();
        let ctx = Context::for_test(&id, "extensions.bearertokenauth", &reg);
        build(&ctx, serde_yaml_ng::from_str(yaml).unwrap())
            .map(|e| e.authenticator().unwrap())
            .map_err(|es| es.iter().map(|e| e.to_string()).collect())
    }

    fn check(a: &Authenticator, value: Option<&str>) -> Result<(), Denied> {
        let mut h = HeaderMap::new();
        if let Some(v) = value {
            h.insert("authorization", HeaderValue::from_str(v).unwrap());
        }
        match a.server.as_ref().unwrap().authenticate(&h) {
            Check::Done(r) => r,
            Check::Pending(_) => panic!("a token check is immediate"),
        }
    }

    #[test]
    fn only_the_scheme_and_a_listed_token_pass() {
        let a = built("{tokens: [old, new]}").unwrap();
        assert_eq!(check(&a, Some("Bearer new")), Ok(()));
        assert_eq!(check(&a, Some("Bearer old")), Ok(()));
        assert_eq!(check(&a, Some("Bearer ne")), Err(Denied::Invalid));
        assert_eq!(check(&a, Some("new")), Err(Denied::Invalid));
        assert_eq!(check(&a, None), Err(Denied::Missing));
        let (name, value) = a.client.unwrap().header();
        assert_eq!(name, "authorization");
        assert_eq!(value, "Bearer old");
        assert!(value.is_sensitive());
    }

    #[test]
    fn a_token_file_is_required_to_exist_and_hold_a_token() {
        let e = built("{filename: /nonexistent/token}").unwrap_err();
        assert_eq!(
            e,
            [
                "extensions.bearertokenauth.filename: cannot read /nonexistent/token: No such file or directory (os error 2)"
            ]
        );
        assert_eq!(
            built("{}").unwrap_err(),
            ["extensions.bearertokenauth: set token, tokens or filename"]
        );
    }

    #[test]
    fn a_token_that_is_not_a_string_is_refused_without_being_echoed() {
        let e = built("{token: 123456789}").unwrap_err().join("\n");
        assert!(!e.contains("123456789"), "{e}");
        assert!(e.contains("quote the value"), "{e}");
    }
}
