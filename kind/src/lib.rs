//! Real Kubernetes clusters for tests and for the conformance runner.
//!
//! Three providers stand behind one [`Cluster`]:
//! - [`Provider::Local`] (the default): etcd, kube-apiserver, kube-controller-manager,
//!   kube-scheduler and kwok as processes on 127.0.0.1, built from the Go module proxy and cached
//!   (see [`binaries`]);
//! - [`Provider::Kind`]: a kind cluster, where Docker and kind exist;
//! - [`Provider::Existing`]: any kubeconfig; nothing is started or stopped.
//!
//! Every process a cluster starts is stopped when the [`Cluster`] drops (also on panic), and
//! dies with the test process if that is killed.

pub mod apply;
pub mod binaries;
pub mod cluster;
pub mod error;
pub mod harness;
pub mod helm;
pub mod kind_cli;
pub mod kubeconfig;
pub mod local;
pub mod namespace;
pub mod pki;
pub mod ports;
pub mod preflight;
pub mod process;
pub mod tls;

pub use binaries::{Binaries, BinarySource};
pub use cluster::{Cluster, ExistingOptions, LocalService, Provider};
pub use error::{Error, Result};
pub use kind_cli::KindOptions;
pub use local::{LocalCluster, LocalOptions};
pub use namespace::TestNamespace;
