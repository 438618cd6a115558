//! Proof that the local provider is a real cluster: the scheduler, kwok, the garbage
//! collector, the HPA controller and the aggregation layer all do their jobs, and teardown
//! leaves nothing behind.

mod support;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kind::harness::{ClusterTest, TestError, run_cluster_tests};
use kind::preflight::{self, until};
use kind::{Binaries, BinarySource, Cluster, LocalOptions};
use kube::Api;

fn main() -> ExitCode {
    run_cluster_tests(vec![
        ClusterTest::new(
            "deployment_pods_are_scheduled_to_a_kwok_node_and_run",
            deployment_pods_run,
        ),
        ClusterTest::new(
            "garbage_collector_deletes_objects_whose_owner_is_gone",
            garbage_collection,
        ),
        ClusterTest::new("hpa_controller_updates_hpa_status", hpa_controller_alive),
        ClusterTest::new(
            "apiservice_served_by_a_local_process_answers_through_the_apiserver",
            support::aggregation::apiservice_served_locally,
        ),
        ClusterTest::new("test_namespaces_are_deleted_on_drop", namespace_cleanup),
        ClusterTest::new(
            "teardown_on_panic_leaves_no_process_or_port_behind",
            teardown_leaves_nothing,
        ),
        ClusterTest::new(
            "a_component_that_crashes_at_start_is_reported_with_its_log_tail",
            crash_is_reported,
        ),
        ClusterTest::new(
            "a_taken_apiserver_port_is_refused_before_anything_starts",
            taken_port_is_refused,
        ),
        ClusterTest::new(
            "a_port_taken_after_it_was_chosen_is_chosen_again",
            taken_after_choice_is_chosen_again,
        ),
        ClusterTest::new(
            "provisioning_slower_than_the_startup_timeout_still_yields_a_cluster",
            slow_provisioning_is_not_startup,
        ),
        ClusterTest::new(
            "a_failed_provisioning_is_reported_as_such_before_anything_starts",
            failed_provisioning_is_named,
        ),
    ])
}

async fn deployment_pods_run(cluster: Arc<Cluster>) -> Result<(), TestError> {
    let ns = cluster.namespace("pods").await?;
    let nodes = preflight::pods_run(&cluster.client(), ns.name(), 2).await?;
    assert_eq!(nodes.len(), 2);
    for node in nodes {
        assert!(node.starts_with("kwok-node-"), "scheduled to {node:?}");
    }
    Ok(())
}

async fn garbage_collection(cluster: Arc<Cluster>) -> Result<(), TestError> {
    let ns = cluster.namespace("gc").await?;
    preflight::garbage_collection(&cluster.client(), ns.name()).await?;
    Ok(())
}

async fn hpa_controller_alive(cluster: Arc<Cluster>) -> Result<(), TestError> {
    let ns = cluster.namespace("hpa").await?;
    let conditions = preflight::hpa_controller(&cluster.client(), ns.name()).await?;
    assert!(
        conditions.iter().any(|c| c == "AbleToScale"),
        "{conditions:?}"
    );
    Ok(())
}

async fn namespace_cleanup(cluster: Arc<Cluster>) -> Result<(), TestError> {
    let name = {
        let ns = cluster.namespace("Cleanup Me").await?;
        assert!(ns.name().starts_with("cleanup-me-"), "{}", ns.name());
        ns.name().to_string()
    };
    let namespaces: Api<Namespace> = Api::all(cluster.client());
    until(
        "the namespace to be deleted or terminating",
        Duration::from_secs(10),
        || {
            let namespaces = namespaces.clone();
            let name = name.clone();
            async move {
                match namespaces.get_opt(&name).await.ok()? {
                    None => Some(()),
                    Some(ns) => ns.metadata.deletion_timestamp.map(|_| ()),
                }
            }
        },
    )
    .await?;
    Ok(())
}

/// Starts a second cluster on another thread, panics while it is alive, and checks that every
/// process it started is gone and every port it listened on is free again.
async fn teardown_leaves_nothing(_shared: Arc<Cluster>) -> Result<(), TestError> {
    let (tx, rx) = std::sync::mpsc::channel();
    let outcome = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let cluster = rt
            .block_on(Cluster::start_local(LocalOptions::default()))
            .expect("second cluster starts");
        let local = cluster.local().expect("a local cluster");
        tx.send((local.components().pids(), local.listening_ports()))
            .expect("send");
        panic!("deliberate panic with a running cluster");
    })
    .join();
    assert!(outcome.is_err(), "the thread was meant to panic");
    let (pids, ports) = rx.recv()?;
    assert_eq!(pids.len(), 5, "{pids:?}");
    for (name, pid) in &pids {
        assert!(
            !kind::process::process_exists(*pid),
            "{name} (pid {pid}) outlived its cluster"
        );
    }
    for port in ports {
        assert!(
            !kind::ports::is_listening(port),
            "port {port} still listens"
        );
    }
    Ok(())
}

async fn crash_is_reported(_shared: Arc<Cluster>) -> Result<(), TestError> {
    let dir = tempfile::tempdir()?;
    let mut options = LocalOptions {
        work_dir: Some(dir.path().join("cluster")),
        ..Default::default()
    };
    options.extra_args.insert(
        "kube-apiserver".into(),
        vec!["--no-such-flag-for-this-test".into()],
    );
    let err = Cluster::start_local(options)
        .await
        .expect_err("the apiserver cannot start with an unknown flag")
        .to_string();
    assert!(err.starts_with("kube-apiserver exited"), "{err}");
    assert!(err.contains("--no-such-flag-for-this-test"), "{err}");
    // etcd was running when the apiserver died: it must have been stopped too.
    let leftovers = support::processes_mentioning(&dir.path().display().to_string());
    assert!(leftovers.is_empty(), "still running: {leftovers:?}");
    Ok(())
}

async fn taken_port_is_refused(_shared: Arc<Cluster>) -> Result<(), TestError> {
    let held = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = held.local_addr()?.port();
    let dir = tempfile::tempdir()?;
    let err = Cluster::start_local(LocalOptions {
        api_port: Some(port),
        work_dir: Some(dir.path().join("cluster")),
        ..Default::default()
    })
    .await
    .expect_err("the port is taken")
    .to_string();
    assert_eq!(
        err,
        format!("port {port} on 127.0.0.1 is already in use (wanted for kube-apiserver)")
    );
    assert!(support::processes_mentioning(&dir.path().display().to_string()).is_empty());
    Ok(())
}

/// Another process may bind a chosen port before the component does (CI once saw etcd exit
/// with `bind: address already in use`). Here a port etcd is told to listen on is held until
/// etcd has failed on it once: the cluster must then start on its next attempt.
async fn taken_after_choice_is_chosen_again(_shared: Arc<Cluster>) -> Result<(), TestError> {
    let held = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = held.local_addr()?.port();
    let dir = tempfile::tempdir()?;
    let cluster_dir = dir.path().join("cluster");
    let mut options = LocalOptions {
        work_dir: Some(cluster_dir.clone()),
        ..Default::default()
    };
    options.extra_args.insert(
        "etcd".into(),
        vec![format!("--listen-metrics-urls=http://127.0.0.1:{port}")],
    );
    let etcd_log = cluster_dir.join("logs").join("etcd.log");
    let refused = tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while tokio::time::Instant::now() < deadline {
            let log = std::fs::read_to_string(&etcd_log).unwrap_or_default();
            if log.contains("address already in use") {
                drop(held);
                return true;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        false
    });
    let cluster = Cluster::start_local(options).await;
    assert!(refused.await?, "etcd never found port {port} taken");
    let cluster = cluster?;
    let local = cluster.local().expect("a local cluster");
    assert_eq!(local.components().pids().len(), 5);
    drop(cluster);
    assert!(support::processes_mentioning(&dir.path().display().to_string()).is_empty());
    Ok(())
}

/// A first run builds the binaries for minutes before anything starts. The start-up timeout
/// must count from when they exist: a provider slower than the whole timeout (standing in for
/// the cold build) still gets a cluster. Before the fix, etcd's first health probe ran after
/// the deadline had passed ("etcd /health was not ready after 749µs").
async fn slow_provisioning_is_not_startup(_shared: Arc<Cluster>) -> Result<(), TestError> {
    // Long enough for a cluster to start on a loaded 2-core runner, and shorter than the delay.
    let startup_timeout = Duration::from_secs(45);
    let delay = startup_timeout + Duration::from_secs(1);
    let dir = tempfile::tempdir()?;
    let provided = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = provided.clone();
    let options = LocalOptions {
        binaries: BinarySource::Provider(Arc::new(move || {
            std::thread::sleep(delay);
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
            Binaries::ensure()
        })),
        startup_timeout,
        work_dir: Some(dir.path().join("cluster")),
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let cluster = Cluster::start_local(options).await?;
    assert!(provided.load(std::sync::atomic::Ordering::SeqCst));
    assert!(started.elapsed() > startup_timeout);
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(cluster.client());
    assert_eq!(nodes.list(&Default::default()).await?.items.len(), 1);
    drop(cluster);
    assert!(support::processes_mentioning(&dir.path().display().to_string()).is_empty());
    Ok(())
}

async fn failed_provisioning_is_named(_shared: Arc<Cluster>) -> Result<(), TestError> {
    let dir = tempfile::tempdir()?;
    let err = Cluster::start_local(LocalOptions {
        binaries: BinarySource::Provider(Arc::new(|| {
            Err(kind::Error::Invalid(
                "the mirror refused the download".into(),
            ))
        })),
        work_dir: Some(dir.path().join("cluster")),
        ..Default::default()
    })
    .await
    .expect_err("no binaries, no cluster")
    .to_string();
    assert!(
        err.starts_with("provisioning the control-plane binaries failed after"),
        "{err}"
    );
    assert!(err.ends_with(": the mirror refused the download"), "{err}");
    assert!(support::processes_mentioning(&dir.path().display().to_string()).is_empty());
    Ok(())
}
