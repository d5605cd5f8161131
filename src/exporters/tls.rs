//! Client TLS for the `otlp` and `otlphttp` exporters, configured like the Collector's
//! `configtls` client settings:
//!
//! ```yaml
//! tls:
//!   insecure: false               # otlp (gRPC) only: true sends plaintext HTTP/2
//!   ca_file: /etc/ssl/gateway-ca.pem   # else the system's roots
//!   cert_file: /etc/ssl/agent.pem      # with key_file: a client certificate (mTLS)
//!   key_file: /etc/ssl/agent-key.pem
//!   server_name_override: gateway.observability.svc
//!   insecure_skip_verify: false
//!   min_version: "1.2"            # or "1.3"
//! ```
//!
//! rustls (with the ring provider, no OpenSSL to link or patch) does the handshake. The config
//! is built when the exporter is built, so `sluice validate` already reports an unreadable or
//! malformed certificate, with its config path.

use std::path::PathBuf;
use std::sync::Arc;

use hyper_rustls::{FixedServerNameResolver, HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::Deserialize;

use crate::config::ConfigError;

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// `otlp` only: plaintext HTTP/2 instead of TLS. Default `false`. (`otlphttp` follows the
    /// endpoint's scheme.)
    #[serde(default)]
    pub insecure: bool,
    /// PEM file of the CA certificates to trust. Default: the system's root store.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate chain, presented to servers that ask (mutual TLS).
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// The name to verify the server's certificate against (and send as SNI) instead of the
    /// endpoint's host; with `balancing: dns` the host is always used, as calls go to IPs.
    #[serde(default)]
    pub server_name_override: Option<String>,
    /// Accept any server certificate. For tests only: it defeats TLS's authentication.
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// `"1.2"` (default) or `"1.3"`.
    #[serde(default)]
    pub min_version: Option<String>,
}

impl Tls {
    /// The rustls client config these settings describe; errors go to `errors` under
    /// `<path>.tls.<field>`.
    pub fn client_config(&self, path: &str, errors: &mut Vec<ConfigError>) -> Option<ClientConfig> {
        let at = |field: &str| format!("{path}.tls.{field}");
        let before = errors.len();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions: &[&rustls::SupportedProtocolVersion] = match self.min_version.as_deref() {
            None | Some("1.2") => &[&rustls::version::TLS13, &rustls::version::TLS12],
            Some("1.3") => &[&rustls::version::TLS13],
            Some(other) => {
                errors.push(ConfigError::new(
                    at("min_version"),
                    format!("{other:?} is not a supported version: use \"1.2\" or \"1.3\""),
                ));
                &[]
            }
        };
        let mut roots = RootCertStore::empty();
        match &self.ca_file {
            Some(file) => match CertificateDer::pem_file_iter(file)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            {
                Ok(certs) if certs.is_empty() => errors.push(ConfigError::new(
                    at("ca_file"),
                    format!("{} holds no PEM certificate", file.display()),
                )),
                Ok(certs) => {
                    for cert in certs {
                        if let Err(e) = roots.add(cert) {
                            errors.push(ConfigError::new(
                                at("ca_file"),
                                format!("{}: {e}", file.display()),
                            ));
                        }
                    }
                }
                Err(e) => errors.push(ConfigError::new(
                    at("ca_file"),
                    format!("cannot read {}: {e}", file.display()),
                )),
            },
            None => {
                let native = rustls_native_certs::load_native_certs();
                for cert in native.certs {
                    // A system store can hold certificates webpki rejects; skip those.
                    let _ = roots.add(cert);
                }
            }
        }
        let client_cert = match (&self.cert_file, &self.key_file) {
            (None, None) => None,
            (Some(cert), Some(key)) => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .and_then(|c| c.collect::<Result<Vec<_>, _>>());
                let key_der = PrivateKeyDer::from_pem_file(key);
                match (chain, key_der) {
                    (Ok(chain), Ok(key)) if !chain.is_empty() => Some((chain, key)),
                    (Ok(_), Ok(_)) => {
                        errors.push(ConfigError::new(
                            at("cert_file"),
                            format!("{} holds no PEM certificate", cert.display()),
                        ));
                        None
                    }
                    (Err(e), _) => {
                        errors.push(ConfigError::new(
                            at("cert_file"),
                            format!("cannot read {}: {e}", cert.display()),
                        ));
                        None
                    }
                    (_, Err(e)) => {
                        errors.push(ConfigError::new(
                            at("key_file"),
                            format!("cannot read a PEM private key from {}: {e}", key.display()),
                        ));
                        None
                    }
                }
            }
            (Some(_), None) => {
                errors.push(ConfigError::new(at("key_file"), "required with cert_file"));
                None
            }
            (None, Some(_)) => {
                errors.push(ConfigError::new(at("cert_file"), "required with key_file"));
                None
            }
        };
        if let Some(name) = &self.server_name_override
            && ServerName::try_from(name.as_str()).is_err()
        {
            errors.push(ConfigError::new(
                at("server_name_override"),
                format!("{name:?} is not a DNS name or an IP address"),
            ));
        }
        if errors.len() > before {
            return None;
        }
        let builder = match ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(versions)
        {
            Ok(b) => b,
            Err(e) => {
                errors.push(ConfigError::new(at("min_version"), e.to_string()));
                return None;
            }
        };
        let builder = if self.insecure_skip_verify {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAny(
                    provider.signature_verification_algorithms,
                )))
        } else {
            builder.with_root_certificates(roots)
        };
        match client_cert {
            None => Some(builder.with_no_client_auth()),
            Some((chain, key)) => match builder.with_client_auth_cert(chain, key) {
                Ok(c) => Some(c),
                Err(e) => {
                    errors.push(ConfigError::new(at("key_file"), e.to_string()));
                    None
                }
            },
        }
    }
}

/// A connector for `http://` and `https://` URIs, with ALPN `h2` (gRPC) or `http/1.1`, verifying
/// the server as `server_name` when given instead of the URI's host.
pub fn connector(
    config: ClientConfig,
    http2: bool,
    server_name: Option<String>,
) -> HttpsConnector<HttpConnector> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let builder = HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http();
    // A name that is neither a DNS name nor an IP cannot be verified; the URI's host is then
    // used, and the handshake fails with the reason.
    let builder = match server_name.and_then(|n| ServerName::try_from(n).ok()) {
        Some(name) => builder.with_server_name_resolver(FixedServerNameResolver::new(name)),
        None => builder,
    };
    if http2 {
        builder.enable_http2().wrap_connector(http)
    } else {
        builder.enable_http1().wrap_connector(http)
    }
}

/// A connector for plaintext `http://` URIs only, of the same type as [`connector`]'s.
pub fn plaintext_connector() -> HttpsConnector<HttpConnector> {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    HttpsConnector::from((
        http,
        Arc::new(
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("ring supports the default versions")
                .with_root_certificates(RootCertStore::empty())
                .with_no_client_auth(),
        ),
    ))
}

/// `insecure_skip_verify`: any certificate passes, but handshake signatures are still checked
/// so the connection is at least bound to the key the server presented.
#[derive(Debug)]
struct AcceptAny(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(tls: &Tls) -> Vec<String> {
        let mut errors = Vec::new();
        tls.client_config("exporters.otlp", &mut errors);
        errors.iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn the_system_roots_are_the_default() {
        assert!(errors(&Tls::default()).is_empty());
    }

    #[test]
    fn bad_files_and_versions_are_named_with_their_path() {
        let tls = Tls {
            ca_file: Some("/nonexistent/ca.pem".into()),
            min_version: Some("1.1".into()),
            cert_file: Some("/nonexistent/cert.pem".into()),
            ..Tls::default()
        };
        let e = errors(&tls);
        assert!(
            e.iter()
                .any(|e| e.starts_with("exporters.otlp.tls.ca_file: cannot read")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|e| e.starts_with("exporters.otlp.tls.min_version"))
        );
        assert!(e.contains(&"exporters.otlp.tls.key_file: required with cert_file".to_string()));
    }
}
