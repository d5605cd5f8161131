//! Access to the Kubernetes API for the components that read it (`k8sattributes`, and the
//! receivers that follow): how to reach and authenticate to the API server, with kube-rs's
//! client, and the metadata kept from it (`pods`).

pub mod leader;
pub mod pods;
pub mod summary;

use serde::Deserialize;

/// `auth_type`, as the Collector's Kubernetes components take it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum AuthType {
    /// The pod's service account: its token and CA under
    /// `/var/run/secrets/kubernetes.io/serviceaccount`, and the API server from
    /// `KUBERNETES_SERVICE_HOST` / `_PORT` (the default, as in a cluster).
    #[default]
    #[serde(rename = "serviceAccount")]
    ServiceAccount,
    /// A kubeconfig: `KUBECONFIG`, else `~/.kube/config` (outside a cluster, and in tests).
    #[serde(rename = "kubeConfig")]
    KubeConfig,
}

/// Lets a repeated failure be logged at most once a minute: the Kubernetes components retry
/// on their own (watch backoff, the next scrape or renewal), and an unreachable API server
/// must not flood the log.
#[derive(Debug, Default)]
pub struct Throttle {
    last: Option<std::time::Instant>,
}

impl Throttle {
    const EVERY: std::time::Duration = std::time::Duration::from_secs(60);

    /// Whether to log now (and if so, the next one waits a minute).
    pub fn ready(&mut self) -> bool {
        let now = std::time::Instant::now();
        let ready = self
            .last
            .is_none_or(|t| now.duration_since(t) >= Self::EVERY);
        if ready {
            self.last = Some(now);
        }
        ready
    }
}

/// Why the API cannot be reached.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no in-cluster service account: {0}")]
    InCluster(#[from] kube::config::InClusterError),
    #[error("cannot read the kubeconfig: {0}")]
    KubeConfig(#[from] kube::config::KubeconfigError),
    #[error("cannot build the Kubernetes client: {0}")]
    Client(#[from] kube::Error),
}

/// A client for the API server, authenticated as `auth` says. Reads files; opens no
/// connection (that happens with the first request).
pub async fn client(auth: AuthType) -> Result<kube::Client, ClientError> {
    let config = match auth {
        AuthType::ServiceAccount => kube::Config::incluster()?,
        AuthType::KubeConfig => {
            kube::Config::from_kubeconfig(&kube::config::KubeConfigOptions::default()).await?
        }
    };
    Ok(kube::Client::try_from(config)?)
}
