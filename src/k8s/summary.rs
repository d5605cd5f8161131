//! The kubelet's Summary API (`GET /stats/summary`, `stats/v1alpha1`), the parts
//! `kubeletstats` reads: node, pod, container and volume statistics. Every field is optional,
//! as the kubelet leaves out what it cannot measure (a container runtime without a network
//! namespace, a volume plugin without statistics), and unknown fields are ignored, so newer
//! kubelets keep working.

use serde::Deserialize;

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    #[serde(default)]
    pub node: NodeStats,
    #[serde(default)]
    pub pods: Vec<PodStats>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct NodeStats {
    #[serde(default)]
    pub node_name: String,
    pub start_time: Option<String>,
    pub cpu: Option<Cpu>,
    pub memory: Option<Memory>,
    pub network: Option<Network>,
    pub fs: Option<Fs>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PodRef {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub uid: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PodStats {
    #[serde(default)]
    pub pod_ref: PodRef,
    pub start_time: Option<String>,
    #[serde(default)]
    pub containers: Vec<ContainerStats>,
    pub cpu: Option<Cpu>,
    pub memory: Option<Memory>,
    pub network: Option<Network>,
    #[serde(default)]
    pub volume: Vec<VolumeStats>,
    #[serde(rename = "ephemeral-storage")]
    pub ephemeral_storage: Option<Fs>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStats {
    #[serde(default)]
    pub name: String,
    pub start_time: Option<String>,
    pub cpu: Option<Cpu>,
    pub memory: Option<Memory>,
    pub rootfs: Option<Fs>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Cpu {
    pub usage_nano_cores: Option<u64>,
    pub usage_core_nano_seconds: Option<u64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Memory {
    pub available_bytes: Option<u64>,
    pub usage_bytes: Option<u64>,
    pub working_set_bytes: Option<u64>,
    pub rss_bytes: Option<u64>,
    pub page_faults: Option<u64>,
    pub major_page_faults: Option<u64>,
}

/// The default interface's counters (the kubelet also lists every interface; the Collector,
/// and so this receiver, reports the default one).
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Network {
    #[serde(default)]
    pub name: String,
    pub rx_bytes: Option<u64>,
    pub rx_errors: Option<u64>,
    pub tx_bytes: Option<u64>,
    pub tx_errors: Option<u64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Fs {
    pub available_bytes: Option<u64>,
    pub capacity_bytes: Option<u64>,
    pub used_bytes: Option<u64>,
    pub inodes_free: Option<u64>,
    pub inodes: Option<u64>,
    pub inodes_used: Option<u64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PvcRef {
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct VolumeStats {
    #[serde(default)]
    pub name: String,
    pub pvc_ref: Option<PvcRef>,
    #[serde(flatten)]
    pub fs: Fs,
}
