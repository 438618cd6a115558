use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong while providing a cluster. Messages are one line that names
/// the cause; a component that died adds the tail of its log on the lines after.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "{dir} (from {origin}) lacks {missing}; it must hold etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok and kwok-stages/"
    )]
    MissingBinaries {
        dir: PathBuf,
        origin: String,
        missing: String,
    },

    #[error("building the control-plane binaries failed ({status}); see the output above")]
    BuildFailed { status: String },

    #[error("provisioning the control-plane binaries failed after {after:.1?}: {source}")]
    Provisioning {
        after: Duration,
        #[source]
        source: Box<Error>,
    },

    #[error("port {port} on 127.0.0.1 is already in use (wanted for {component})")]
    PortInUse { port: u16, component: String },

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{component} exited ({status}) — last lines of {log}:\n{tail}")]
    ComponentExited {
        component: String,
        status: String,
        log: PathBuf,
        tail: String,
    },

    #[error("{what} was not ready after {after:?}{detail}")]
    Timeout {
        what: String,
        after: Duration,
        detail: String,
    },

    #[error("kubeconfig {path}: {reason}")]
    Kubeconfig { path: PathBuf, reason: String },

    #[error("{context}: {source}")]
    Kube {
        context: String,
        #[source]
        source: kube::Error,
    },

    #[error("the {provider} provider is not available here: {reason}")]
    ProviderUnavailable { provider: String, reason: String },

    #[error("`{command}` failed: {reason}")]
    Command { command: String, reason: String },

    #[error("certificate generation failed: {0}")]
    Certificate(#[from] rcgen::Error),

    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A component exited because a port it was to listen on was taken after it was chosen.
    pub fn is_port_collision(&self) -> bool {
        matches!(self, Error::ComponentExited { tail, .. } if tail.contains("address already in use"))
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn kube(context: impl Into<String>, source: kube::Error) -> Self {
        Error::Kube {
            context: context.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exited(tail: &str) -> Error {
        Error::ComponentExited {
            component: "etcd".into(),
            status: "exit status: 1".into(),
            log: PathBuf::from("etcd.log"),
            tail: tail.into(),
        }
    }

    #[test]
    fn only_an_exit_on_a_taken_port_is_a_port_collision() {
        let bind = r#"  | {"level":"fatal","msg":"discovery failed","error":"listen tcp 127.0.0.1:44613: bind: address already in use"}"#;
        assert!(exited(bind).is_port_collision());
        assert!(!exited("  | unknown flag: --no-such-flag").is_port_collision());
        assert!(
            !Error::PortInUse {
                port: 1,
                component: "kube-apiserver".into()
            }
            .is_port_collision(),
            "a port the user chose is not chosen again"
        );
    }
}
