//! Extensions: components outside the data path (health checks, authenticators).

crate::component::components!(
    EXTENSIONS: Box<dyn Extension> = [health_check, bearertokenauth, basicauth, file_storage]
);

/// What enabled extensions lend to the components that name them: authenticators and storage
/// directories.
#[derive(Default)]
pub struct Lent {
    pub auth: crate::auth::Authenticators,
    pub storage: file_storage::Storages,
}

impl Lent {
    pub const fn new() -> Self {
        Lent {
            auth: crate::auth::Authenticators::new(),
            storage: file_storage::Storages::new(),
        }
    }

    /// Records extension `id`; `enabled` when `service.extensions` lists it.
    pub fn add(&mut self, id: &str, enabled: bool, ext: &dyn Extension) {
        self.auth.add(id, enabled, ext.authenticator());
        self.storage.add(id, enabled, ext.storage());
    }
}

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use crate::pipeline::{BoxFuture, Running, StartError};
use crate::shutdown::Shutdown;

/// The service's readiness, as health checks and load balancers see it.
#[derive(Clone, Debug, Default)]
pub struct Health(Arc<AtomicU8>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Starting = 0,
    Ready = 1,
    Draining = 2,
}

impl Health {
    pub fn set(&self, s: State) {
        self.0.store(s as u8, Ordering::Release);
    }

    pub fn get(&self) -> State {
        match self.0.load(Ordering::Acquire) {
            1 => State::Ready,
            2 => State::Draining,
            _ => State::Starting,
        }
    }
}

pub trait Extension: Send {
    fn start(
        self: Box<Self>,
        health: Health,
        shutdown: Shutdown,
    ) -> BoxFuture<Result<Running, StartError>>;

    /// What an auth extension offers receivers and exporters (see `crate::auth`).
    fn authenticator(&self) -> Option<crate::auth::Authenticator> {
        None
    }

    /// The directory of a storage extension (`file_storage`).
    fn storage(&self) -> Option<std::path::PathBuf> {
        None
    }
}

/// An auth extension (`bearertokenauth`, `basicauth`): nothing runs; its files are looked at by
/// the requests that use it (`crate::watched`).
pub struct AuthOnly(pub crate::auth::Authenticator);

impl Extension for AuthOnly {
    fn start(
        self: Box<Self>,
        _health: Health,
        _shutdown: Shutdown,
    ) -> BoxFuture<Result<Running, StartError>> {
        Box::pin(async { Ok(Box::pin(async {}) as Running) })
    }

    fn authenticator(&self) -> Option<crate::auth::Authenticator> {
        Some(self.0.clone())
    }
}
