//! What every component type provides and gets: its [`Spec`] (the registry lists these) and the
//! [`Context`] its `build` receives. Components import this module, never the registry, so the
//! registry is the only place that knows them all.

pub use serde_yaml_ng::Value as Yaml;

use crate::auth::Authenticators;
use crate::config::{ComponentId, ConfigError};
use crate::extensions::Lent;
use crate::extensions::file_storage::Storages;
use crate::model::Signal;
use crate::telemetry::Registry;

/// What a component's `build` gets besides its own config.
pub struct Context<'a> {
    pub id: &'a ComponentId,
    /// The enabled auth extensions, for `auth: {authenticator: ...}`.
    pub auth: &'a Authenticators,
    /// The enabled storage extensions, for `storage: <extension>`.
    pub storage: &'a Storages,
    /// The YAML path of the component's section, e.g. `exporters.tcp`, for error messages.
    pub path: &'a str,
    pub telemetry: &'a Registry,
    /// The pipeline a processor instance is built for; empty for shared components.
    pub pipeline: &'a str,
}

/// No extensions, for components built outside a service (and for extensions themselves).
pub static NOTHING_LENT: Lent = Lent::new();

impl<'a> Context<'a> {
    /// A context for building one component alone (tests, `sluice components`).
    pub fn alone(id: &'a ComponentId, path: &'a str, telemetry: &'a Registry) -> Self {
        Context {
            id,
            auth: &NOTHING_LENT.auth,
            storage: &NOTHING_LENT.storage,
            path,
            telemetry,
            pipeline: "",
        }
    }

    #[cfg(test)]
    pub fn for_test(id: &'a ComponentId, path: &'a str, telemetry: &'a Registry) -> Self {
        Self::alone(id, path, telemetry)
    }
}

/// Decodes and validates a component's config and constructs it. No sockets, no tasks: that
/// happens when it starts, so `sluice validate` can build everything safely.
pub type Build<T> = fn(&Context, Yaml) -> Built<T>;

/// What `build` returns: the component, or every problem in its config, each with its path.
pub type Built<T> = Result<T, Vec<ConfigError>>;

/// A component type: each component module exports one as `SPEC`, and the registry lists them.
pub struct Spec<T: 'static> {
    /// The type name in configs (`otlp`, `batch`, ...).
    pub kind: &'static str,
    /// The signals of the pipelines it can be part of (none for extensions).
    pub signals: &'static [Signal],
    pub build: Build<T>,
    /// A config that builds: the fields it requires, everything else at its default. The
    /// registry test builds every component from it, so the documented defaults are real.
    pub example: &'static str,
}

impl<T> Spec<T> {
    pub const fn new(
        kind: &'static str,
        signals: &'static [Signal],
        build: Build<T>,
        example: &'static str,
    ) -> Self {
        Spec {
            kind,
            signals,
            build,
            example,
        }
    }
}

/// Every signal: logs, traces and metrics.
pub const ALL_SIGNALS: &[Signal] = &[Signal::Logs, Signal::Traces, Signal::Metrics];
/// Logs only.
pub const LOGS: &[Signal] = &[Signal::Logs];
/// Outside pipelines (extensions).
pub const NO_SIGNALS: &[Signal] = &[];

/// Declares a section's component modules and lists their `SPEC`s in one place, so adding a
/// component is its file plus its name in that list:
/// `components!(RECEIVERS: Box<dyn Receiver> = [http_logs, otlp]);`
macro_rules! components {
    ($list:ident: $ty:ty = [$($name:ident),* $(,)?]) => {
        $(pub mod $name;)*
        /// Every component type of this section, as the registry lists them.
        pub const $list: &[$crate::component::Spec<$ty>] = &[$($name::SPEC),*];
    };
}
pub(crate) use components;
