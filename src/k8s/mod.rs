//! Access to the Kubernetes API for the components that read it (`k8sattributes`, and the
//! receivers that follow): how to reach and authenticate to the API server, with kube-rs's
//! client, and the metadata kept from it (`pods`).

pub mod bounded;
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
/// must not flood the log. A failure of another cause is logged at once.
#[derive(Debug, Default)]
pub struct Throttle {
    last: Option<std::time::Instant>,
    /// The last cause logged, its digits left out (resource versions, sizes, addresses).
    cause: u64,
}

impl Throttle {
    const EVERY: std::time::Duration = std::time::Duration::from_secs(60);

    /// Whether to log now (and if so, the next one waits a minute).
    pub fn ready(&mut self) -> bool {
        self.ready_for("")
    }

    /// Whether to log a failure whose message is `cause` now: a minute after the last, or at
    /// once when the cause differs from the last one logged.
    pub fn ready_for(&mut self, cause: &str) -> bool {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        cause
            .bytes()
            .filter(|b| !b.is_ascii_digit())
            .for_each(|b| b.hash(&mut h));
        let cause = h.finish();
        let now = std::time::Instant::now();
        let ready = self.cause != cause
            || self
                .last
                .is_none_or(|t| now.duration_since(t) >= Self::EVERY);
        if ready {
            self.last = Some(now);
            self.cause = cause;
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

pub use bounded::ApiLimits;

/// A client for the API server, authenticated as `auth` says, its answers bounded by
/// `limits`. Reads files; opens no connection (that happens with the first request).
pub async fn client(auth: AuthType, limits: &ApiLimits) -> Result<kube::Client, ClientError> {
    let config = match auth {
        AuthType::ServiceAccount => kube::Config::incluster()?,
        AuthType::KubeConfig => {
            kube::Config::from_kubeconfig(&kube::config::KubeConfigOptions::default()).await?
        }
    };
    Ok(bounded::client(config, limits)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_is_logged_once_a_minute_but_a_new_cause_at_once() {
        let mut t = Throttle::default();
        assert!(t.ready_for("watch failed at resourceVersion 10"));
        assert!(
            !t.ready_for("watch failed at resourceVersion 11"),
            "the same cause, another number"
        );
        assert!(t.ready_for("the answer is over max_answer_size"));
        assert!(!t.ready_for("the answer is over max_answer_size"));
    }
}
