//! The operator's error type.

/// What a reconcile can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{context}: {source}")]
    Kube {
        context: String,
        #[source]
        source: kube::Error,
    },
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    #[error("{0}")]
    Serialize(#[from] serde_json::Error),
}

/// Why a generation's scalers could not be built (either kind); the message is KEDA's or
/// names what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ScalersError {
    #[error(transparent)]
    Auth(#[from] crate::auth::ResolveError),
    #[error(transparent)]
    Build(#[from] crate::trigger_scalers::BuildError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn kube(context: impl Into<String>, source: kube::Error) -> Self {
        Error::Kube {
            context: context.into(),
            source,
        }
    }

    /// Whether the apiserver refused a write because the object changed since it was read.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Kube { source: kube::Error::Api(e), .. } if e.code == 409)
    }
}

/// Whether a kube error is a 404.
pub fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}
