//! TLS on a receiver's listener, configured like the Collector's `configtls` server settings:
//!
//! ```yaml
//! tls:
//!   cert_file: /etc/sluice/tls/tls.crt      # PEM chain, leaf first
//!   key_file: /etc/sluice/tls/tls.key
//!   client_ca_file: /etc/sluice/tls/ca.crt  # mutual TLS: clients must present a certificate
//!   min_version: "1.2"                      # default; or "1.3"
//!   max_version: "1.3"                      # default
//!   reload_interval: 1m                     # look for new files this often (default: never)
//! ```
//!
//! rustls does the handshake (ring provider, as the exporters' client side). The files are read
//! when the receiver is built, so `sluice validate` reports an unreadable certificate or a key
//! that does not match it. With `reload_interval`, a new accept that finds the files changed
//! (cert-manager renewing a Secret) makes a new server config; connections already open keep
//! theirs, and files that do not load are reported while the old ones stay in use.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use serde::Deserialize;
use tokio_rustls::TlsAcceptor;

use crate::config::{ConfigError, MAX_DURATION, check_duration};
use crate::watched::Watched;

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// The server's certificate chain (PEM).
    pub cert_file: PathBuf,
    /// Its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// CA certificates (PEM) that client certificates must chain to. Set: mutual TLS, and a
    /// client without a valid certificate fails the handshake.
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
    /// `"1.2"` (default) or `"1.3"`.
    #[serde(default)]
    pub min_version: Option<String>,
    /// `"1.3"` (default) or `"1.2"`.
    #[serde(default)]
    pub max_version: Option<String>,
    /// Look at the files this often and load them again when they changed. Default: never.
    #[serde(default, deserialize_with = "crate::config::optional_duration")]
    pub reload_interval: Option<Duration>,
}

/// A handshake must complete within this, so a client that connects and sends nothing (or
/// one byte a second) gives its connection back.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A listener's TLS: the server config in force, made again when its files change.
pub struct ServerTls {
    config: Watched<ServerConfig>,
    reloads: bool,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("reloads", &self.reloads)
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// The config for the next connection; looks at the files first when a reload is due.
    pub fn acceptor(&self) -> TlsAcceptor {
        let config = if self.reloads {
            self.config.get()
        } else {
            self.config.current()
        };
        TlsAcceptor::from(config)
    }
}

fn version(v: &str) -> Option<&'static rustls::SupportedProtocolVersion> {
    match v {
        "1.2" => Some(&rustls::version::TLS12),
        "1.3" => Some(&rustls::version::TLS13),
        _ => None,
    }
}

fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not PEM certificates: {e}"))?;
    if certs.is_empty() {
        return Err("holds no PEM certificate".into());
    }
    Ok(certs)
}

/// Which file each index of the watched list is, for error paths.
const FIELDS: [&str; 3] = ["cert_file", "key_file", "client_ca_file"];

impl TlsSettings {
    /// Loads the files and makes the listener's TLS, offering `alpn` (`h2` for gRPC,
    /// `http/1.1` for HTTP). Errors go to `errors` under `<path>.tls.<field>`.
    pub fn server(
        &self,
        path: &str,
        alpn: &'static [u8],
        errors: &mut Vec<ConfigError>,
    ) -> Option<ServerTls> {
        let at = |field: &str| format!("{path}.tls.{field}");
        let before = errors.len();
        let min = self.min_version.as_deref().unwrap_or("1.2");
        let max = self.max_version.as_deref().unwrap_or("1.3");
        let mut versions: Vec<&'static rustls::SupportedProtocolVersion> = Vec::new();
        match (version(min), version(max)) {
            (None, _) => errors.push(ConfigError::new(
                at("min_version"),
                format!("{min:?} is not supported: use \"1.2\" or \"1.3\""),
            )),
            (_, None) => errors.push(ConfigError::new(
                at("max_version"),
                format!("{max:?} is not supported: use \"1.2\" or \"1.3\""),
            )),
            (Some(_), Some(_)) if min > max => errors.push(ConfigError::new(
                at("min_version"),
                format!("{min:?} is above max_version {max:?}"),
            )),
            (Some(_), Some(_)) => {
                if max == "1.3" {
                    versions.push(&rustls::version::TLS13);
                }
                if min == "1.2" {
                    versions.push(&rustls::version::TLS12);
                }
            }
        }
        if let Some(d) = self.reload_interval {
            check_duration(
                errors,
                at("reload_interval"),
                d,
                Duration::from_secs(1),
                MAX_DURATION,
            );
        }
        if errors.len() > before {
            return None;
        }
        let mut paths = vec![self.cert_file.clone(), self.key_file.clone()];
        paths.extend(self.client_ca_file.clone());
        let make = move |files: &[Vec<u8>]| make_config(files, &versions, alpn);
        let interval = self.reload_interval.unwrap_or(MAX_DURATION);
        match Watched::load_all(paths, interval, Box::new(make)) {
            Ok(config) => Some(ServerTls {
                config,
                reloads: self.reload_interval.is_some(),
            }),
            Err((i, e)) => {
                errors.push(ConfigError::new(at(FIELDS[i.min(2)]), e));
                None
            }
        }
    }
}

/// A server config from the certificate, key and (optional) client CA files' contents.
fn make_config(
    files: &[Vec<u8>],
    versions: &[&'static rustls::SupportedProtocolVersion],
    alpn: &'static [u8],
) -> Result<ServerConfig, (usize, String)> {
    let chain = certificates(&files[0]).map_err(|e| (0, e))?;
    let key = PrivateKeyDer::from_pem_slice(&files[1])
        .map_err(|e| (1, format!("not a PEM private key: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(versions)
        .map_err(|e| (0, e.to_string()))?;
    let builder = match files.get(2) {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in certificates(ca).map_err(|e| (2, e))? {
                roots
                    .add(cert)
                    .map_err(|e| (2, format!("not a usable CA certificate: {e}")))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| (2, e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| (1, format!("does not go with cert_file: {e}")))?;
    config.alpn_protocols = vec![alpn.to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(yaml: &str) -> Vec<String> {
        let s: TlsSettings = serde_yaml_ng::from_str(yaml).unwrap();
        let mut errors = Vec::new();
        s.server("receivers.otlp.protocols.grpc", b"h2", &mut errors);
        errors.iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn unreadable_files_and_bad_versions_are_named_with_their_paths() {
        assert_eq!(
            errors("{cert_file: /nonexistent/c.pem, key_file: /nonexistent/k.pem}"),
            [
                "receivers.otlp.protocols.grpc.tls.cert_file: cannot read /nonexistent/c.pem: No such file or directory (os error 2)"
            ]
        );
        assert_eq!(
            errors("{cert_file: a, key_file: b, min_version: '1.1'}"),
            [
                "receivers.otlp.protocols.grpc.tls.min_version: \"1.1\" is not supported: use \"1.2\" or \"1.3\""
            ]
        );
        assert_eq!(
            errors("{cert_file: a, key_file: b, min_version: '1.3', max_version: '1.2'}"),
            ["receivers.otlp.protocols.grpc.tls.min_version: \"1.3\" is above max_version \"1.2\""]
        );
        assert_eq!(
            errors("{cert_file: a, key_file: b, reload_interval: 1ms}").len(),
            1
        );
    }

    #[test]
    fn a_file_that_is_not_pem_is_refused() {
        let dir = std::env::temp_dir().join(format!("sluice-rtls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("c.pem"), "not a certificate").unwrap();
        std::fs::write(dir.join("k.pem"), "not a key").unwrap();
        let e = errors(&format!(
            "{{cert_file: {0}/c.pem, key_file: {0}/k.pem}}",
            dir.display()
        ));
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("receivers.otlp.protocols.grpc.tls.cert_file: "),
            "{e:?}"
        );
        assert!(e[0].ends_with("holds no PEM certificate"), "{e:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
