//! Leader election on a `coordination.k8s.io/v1` Lease, as client-go's leaderelection does it,
//! so that of several replicas exactly one reports (the cluster collector's `k8s_events`).
//!
//! A candidate creates the Lease, or takes it over once it has seen the same holder and
//! renew time unchanged for a whole `lease_duration` (measured on its own clock from when it
//! observed them, so clock skew between nodes does not matter); every write carries the
//! resourceVersion it read, so of two candidates racing only one wins (the other gets 409 and
//! reads again). The leader renews every `retry_period` and steps down when it has not
//! renewed for `renew_deadline`, which is shorter than `lease_duration`: it stops leading
//! before anyone else may start. The Lease also carries the leader's checkpoint (an
//! annotation), so a new leader knows where the last one stopped.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use tokio::sync::watch;

use crate::shutdown::Shutdown;

/// Where and how to elect.
#[derive(Debug, Clone)]
pub struct Election {
    pub lease_name: String,
    pub lease_namespace: String,
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
    /// The annotation holding the leader's checkpoint.
    pub checkpoint_annotation: &'static str,
}

/// What a candidate knows: whether it leads, and the checkpoint it found when it took the
/// lead.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Leadership {
    pub leading: bool,
    /// The checkpoint stored in the Lease when this candidate became leader.
    pub checkpoint: Option<String>,
    /// Counts the terms this candidate has led, so a watcher can tell a new term from the
    /// last.
    pub term: u64,
}

/// Runs the election until `shutdown`: `state` says whether this candidate leads;
/// `checkpoint` is what the leader writes into the Lease with each renewal.
pub async fn run(
    api: Api<Lease>,
    e: Election,
    state: watch::Sender<Leadership>,
    checkpoint: watch::Receiver<Option<String>>,
    shutdown: Shutdown,
) {
    // What was last seen of the Lease, and when (this candidate's clock).
    let mut observed: Option<(Option<String>, Option<Timestamp>, Instant)> = None;
    let mut last_renewal: Option<Instant> = None;
    let mut throttle = super::Throttle::default();
    loop {
        let outcome = attempt(&api, &e, &mut observed, &checkpoint).await;
        let now = Instant::now();
        let leading = state.borrow().leading;
        match outcome {
            Ok(Some(found_checkpoint)) => {
                last_renewal = Some(now);
                if !leading {
                    tracing::info!(lease = %e.lease_name, identity = %e.identity, "became leader");
                    state.send_modify(|s| {
                        s.leading = true;
                        s.checkpoint = found_checkpoint;
                        s.term += 1;
                    });
                }
            }
            Ok(None) => {
                if leading {
                    tracing::warn!(lease = %e.lease_name, "lost the lease to another holder");
                    state.send_modify(|s| s.leading = false);
                }
            }
            Err(err) => {
                if throttle.ready() {
                    tracing::warn!(lease = %e.lease_name, error = %err, "leader election request failed");
                }
                // A leader that cannot renew steps down before its lease can expire.
                if leading && last_renewal.is_none_or(|t| now.duration_since(t) >= e.renew_deadline)
                {
                    tracing::warn!(lease = %e.lease_name, "could not renew in time; stepping down");
                    state.send_modify(|s| s.leading = false);
                }
            }
        }
        if !shutdown.sleep(e.retry_period).await {
            break;
        }
    }
    // Stepping down at shutdown: the lease is given up at once rather than left to expire.
    if state.borrow().leading {
        state.send_modify(|s| s.leading = false);
        let _ = release(&api, &e, &checkpoint).await;
    }
}

fn micro_now() -> MicroTime {
    MicroTime(Timestamp::now())
}

/// One round: `Ok(Some(checkpoint))` when this candidate holds the lease after it (with the
/// checkpoint the Lease had), `Ok(None)` when another does.
async fn attempt(
    api: &Api<Lease>,
    e: &Election,
    observed: &mut Option<(Option<String>, Option<Timestamp>, Instant)>,
    checkpoint: &watch::Receiver<Option<String>>,
) -> Result<Option<Option<String>>, kube::Error> {
    let Some(mut lease) = api.get_opt(&e.lease_name).await? else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(e.lease_name.clone()),
                namespace: Some(e.lease_namespace.clone()),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(e.identity.clone()),
                lease_duration_seconds: Some(e.lease_duration.as_secs().max(1) as i32),
                acquire_time: Some(micro_now()),
                renew_time: Some(micro_now()),
                lease_transitions: Some(0),
                ..Default::default()
            }),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(Some(None)),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(None),
            Err(err) => Err(err),
        };
    };
    let spec = lease.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.clone();
    let renewed = spec.renew_time.as_ref().map(|t| t.0);
    let now = Instant::now();
    let changed = observed
        .as_ref()
        .is_none_or(|(h, r, _)| *h != holder || *r != renewed);
    if changed {
        *observed = Some((holder.clone(), renewed, now));
    }
    let mine = holder.as_deref() == Some(e.identity.as_str());
    let vacant = holder.as_deref().is_none_or(str::is_empty);
    let expired = observed
        .as_ref()
        .is_some_and(|(_, _, seen)| now.duration_since(*seen) >= e.lease_duration);
    if !(mine || vacant || expired) {
        return Ok(None);
    }
    let found = lease
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(e.checkpoint_annotation))
        .cloned();
    let mut spec = spec;
    if !mine {
        spec.holder_identity = Some(e.identity.clone());
        spec.acquire_time = Some(micro_now());
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
    }
    spec.renew_time = Some(micro_now());
    spec.lease_duration_seconds = Some(e.lease_duration.as_secs().max(1) as i32);
    if mine && let Some(c) = checkpoint.borrow().clone() {
        lease
            .metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(e.checkpoint_annotation.to_string(), c);
    }
    lease.spec = Some(spec);
    match api
        .replace(&e.lease_name, &PostParams::default(), &lease)
        .await
    {
        Ok(_) => Ok(Some(found)),
        // Someone else wrote first: read again next round.
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(None),
        Err(err) => Err(err),
    }
}

/// Gives the lease up (holder cleared), keeping the checkpoint for the next leader.
async fn release(
    api: &Api<Lease>,
    e: &Election,
    checkpoint: &watch::Receiver<Option<String>>,
) -> Result<(), kube::Error> {
    let Some(mut lease) = api.get_opt(&e.lease_name).await? else {
        return Ok(());
    };
    let spec = lease.spec.get_or_insert_with(Default::default);
    if spec.holder_identity.as_deref() != Some(e.identity.as_str()) {
        return Ok(());
    }
    spec.holder_identity = None;
    if let Some(c) = checkpoint.borrow().clone() {
        lease
            .metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(e.checkpoint_annotation.to_string(), c);
    }
    api.replace(&e.lease_name, &PostParams::default(), &lease)
        .await
        .map(|_| ())
}
