//! Deletion at scale: N ScaledObjects (each active, its HPA made) and M ScaledJobs (each with a
//! running Job) on a fresh local cluster, then, at one moment, the target Deployments of half
//! the ScaledObjects deleted first and every ScaledObject and ScaledJob deleted at once. The
//! figures: when the last ScaledObject and ScaledJob were gone (their finalizers done), when the
//! last HPA and Job were gone (the garbage collector's part), and what was left if the bound ran
//! out. `cargo run -p benches --release --bin deletion -- --help`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use fake_sources::{FakeOptions, FakePrometheus};
use futures::{FutureExt, StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{ApiResource, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::core::PartialObjectMeta;
use kube::{Api, Client};
use serde_json::{Value, json};

use crate::density::cli::Operator;
use crate::density::run::Subject;
use crate::density::workload::{self, NAMESPACE};

/// The label on the Deployments that are deleted before their ScaledObjects.
pub const TARGET_FIRST_LABEL: &str = "deletion-bench/target-first";
const CREATE_CONCURRENCY: usize = 32;

/// What one run does.
#[derive(Debug, Clone)]
pub struct Plan {
    pub operator: Operator,
    pub scaled_objects: usize,
    pub scaled_jobs: usize,
    pub polling_interval: u32,
}

/// What one run measured.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub label: String,
    /// From the first create to every HPA and every ScaledJob's first Job existing.
    pub ready_s: f64,
    /// From the first delete to the last delete request answered.
    pub deletes_sent_s: f64,
    /// From the first delete to no ScaledObject and no ScaledJob left (finalizers done).
    pub owners_gone_s: Option<f64>,
    /// From the first delete to no HPA and no Job left.
    pub dependents_gone_s: Option<f64>,
    /// What was still there when the bound ran out, by kind (empty when everything went).
    pub left: BTreeMap<&'static str, Vec<String>>,
}

impl Outcome {
    /// How long the dependents outlived their owners (the garbage collector's lag).
    pub fn gc_lag_s(&self) -> Option<f64> {
        Some((self.dependents_gone_s? - self.owners_gone_s?).max(0.0))
    }
}

pub fn scaled_job_name(i: usize) -> String {
    format!("sj-{i:05}")
}

pub fn scaled_job_query(i: usize) -> String {
    format!("deletion_jobs{{sj=\"{}\"}}", scaled_job_name(i))
}

/// A ScaledJob asking for one Job (the value is half the target) that never finishes (kwok
/// keeps its pod running).
pub fn scaled_job(name: &str, prometheus: &str, query: &str, polling_interval: u32) -> Value {
    json!({
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledJob",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "pollingInterval": polling_interval,
            "maxReplicaCount": 2,
            "jobTargetRef": {
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "job", "image": "registry.k8s.io/pause:3.10"}],
                    },
                },
            },
            "triggers": [{
                "type": "prometheus",
                "metadata": {
                    "serverAddress": prometheus,
                    "query": query,
                    "threshold": workload::THRESHOLD,
                    "activationThreshold": workload::ACTIVATION,
                },
            }],
        },
    })
}

/// Whether the i-th ScaledObject's target is deleted before it: every second one.
pub fn target_first(i: usize) -> bool {
    i % 2 == 1
}

fn resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: "keda.sh".into(),
        version: "v1alpha1".into(),
        api_version: "keda.sh/v1alpha1".into(),
        kind: kind.into(),
        plural: plural.into(),
    }
}

fn log(plan: &Plan, message: &str) {
    eprintln!(
        "[{} {} N={} M={}] {message}",
        jiff::Timestamp::now().strftime("%H:%M:%S"),
        plan.operator.name(),
        plan.scaled_objects,
        plan.scaled_jobs
    );
}

pub async fn run(plan: &Plan, subject: Subject<'_>) -> anyhow::Result<Outcome> {
    let (preinstall, label) = match &subject {
        Subject::Builtin(binary, source) => (
            keda_conformance::operator::crds(binary)?,
            format!("ours (keda-operator {source}, release build)"),
        ),
        Subject::Upstream(build, version) => (build.crds()?, format!("KEDA {version}")),
    };
    let options = kind::LocalOptions {
        nodes: workload::nodes_for(plan.scaled_objects + plan.scaled_jobs),
        preinstall,
        startup_timeout: Duration::from_secs(240),
        ..kind::LocalOptions::default()
    };
    log(
        plan,
        &format!("starting a local cluster with {} kwok nodes", options.nodes),
    );
    let cluster = kind::Cluster::start(kind::Provider::Local(options))
        .await
        .context("the local cluster did not start")?;
    let prometheus = FakePrometheus::start(FakeOptions::default()).await?;
    for i in 0..plan.scaled_objects {
        prometheus.set_sample(workload::query(i), workload::VALUE);
    }
    for i in 0..plan.scaled_jobs {
        prometheus.set_sample(scaled_job_query(i), workload::VALUE);
    }
    log(plan, "starting the operator");
    let mut running = match subject {
        Subject::Builtin(binary, _) => {
            keda_conformance::operator::Running::start_builtin(&cluster, binary).await?
        }
        Subject::Upstream(build, _) => keda_conformance::upstream::start(&cluster, build).await?,
    };
    let client = Client::try_from(cluster.config().clone())?;
    let mut outcome = Outcome {
        label,
        ..Outcome::default()
    };
    let phases = Phases {
        plan,
        client: &client,
        prometheus_url: prometheus.url(),
    };
    let result = phases.all(&mut outcome).await;
    let exited = running.check();
    if result.is_err() || exited.is_err() {
        let logs = running.keep_logs();
        log(
            plan,
            &format!("kept the operator's logs in {}", logs.display()),
        );
    }
    log(plan, "stopping the operator and the cluster");
    drop(running);
    drop(prometheus);
    drop(client);
    cluster.shutdown();
    result?;
    exited.context("an operator process exited during the run")?;
    Ok(outcome)
}

struct Phases<'a> {
    plan: &'a Plan,
    client: &'a Client,
    prometheus_url: String,
}

impl Phases<'_> {
    fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), NAMESPACE)
    }

    fn keda(&self, kind: &str, plural: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), NAMESPACE, &resource(kind, plural))
    }

    async fn all(&self, outcome: &mut Outcome) -> anyhow::Result<()> {
        let namespace: Namespace =
            serde_json::from_value(json!({"metadata": {"name": NAMESPACE}}))?;
        Api::<Namespace>::all(self.client.clone())
            .create(&PostParams::default(), &namespace)
            .await
            .context("creating the namespace")?;
        let started = Instant::now();
        self.create().await?;
        self.wait_ready(started).await?;
        outcome.ready_s = started.elapsed().as_secs_f64();
        log(
            self.plan,
            &format!(
                "every HPA and every ScaledJob's Job exists after {:.1}s",
                outcome.ready_s
            ),
        );
        self.delete(outcome).await
    }

    async fn create(&self) -> anyhow::Result<()> {
        let (n, m) = (self.plan.scaled_objects, self.plan.scaled_jobs);
        log(
            self.plan,
            &format!("creating {n} Deployments and ScaledObjects and {m} ScaledJobs"),
        );
        let deployments: Api<Deployment> = self.api();
        let sos = self.keda("ScaledObject", "scaledobjects");
        let sjs = self.keda("ScaledJob", "scaledjobs");
        let poll = self.plan.polling_interval;
        let url = &self.prometheus_url;
        let objects = futures::stream::iter(0..n).map(|i| {
            let (deployments, sos) = (deployments.clone(), sos.clone());
            async move {
                let target = workload::deployment_name(i);
                let mut d = workload::deployment(&target);
                if target_first(i) {
                    d["metadata"]["labels"] = json!({ TARGET_FIRST_LABEL: "true" });
                }
                deployments
                    .create(&PostParams::default(), &serde_json::from_value(d)?)
                    .await
                    .with_context(|| format!("creating Deployment {target}"))?;
                let name = workload::scaled_object_name(i);
                let so = workload::scaled_object(&name, &target, url, &workload::query(i), poll);
                sos.create(&PostParams::default(), &serde_json::from_value(so)?)
                    .await
                    .with_context(|| format!("creating ScaledObject {name}"))?;
                anyhow::Ok(())
            }
            .boxed()
        });
        let jobs = futures::stream::iter(0..m).map(|i| {
            let sjs = sjs.clone();
            async move {
                let name = scaled_job_name(i);
                let sj = scaled_job(&name, url, &scaled_job_query(i), poll);
                sjs.create(&PostParams::default(), &serde_json::from_value(sj)?)
                    .await
                    .with_context(|| format!("creating ScaledJob {name}"))?;
                anyhow::Ok(())
            }
            .boxed()
        });
        objects
            .chain(jobs)
            .buffer_unordered(CREATE_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    /// Until every ScaledObject has its HPA and every ScaledJob has a Job.
    async fn wait_ready(&self, started: Instant) -> anyhow::Result<()> {
        let (n, m) = (self.plan.scaled_objects, self.plan.scaled_jobs);
        let hpas: Api<HorizontalPodAutoscaler> = self.api();
        let jobs: Api<Job> = self.api();
        let limit = Duration::from_secs(120) + Duration::from_millis(600 * (n + m) as u64);
        loop {
            let hpa_count = hpas
                .list_metadata(&ListParams::default())
                .await?
                .items
                .len();
            let with_jobs = jobs
                .list_metadata(&ListParams::default())
                .await?
                .items
                .iter()
                .filter_map(|j| owner(j, "ScaledJob"))
                .collect::<std::collections::BTreeSet<_>>()
                .len();
            if hpa_count >= n && with_jobs >= m {
                return Ok(());
            }
            if started.elapsed() > limit {
                bail!(
                    "after {limit:?} only {hpa_count} of {n} HPAs existed and {with_jobs} of {m} ScaledJobs had a Job"
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn delete(&self, outcome: &mut Outcome) -> anyhow::Result<()> {
        let deployments: Api<Deployment> = self.api();
        let hpas: Api<HorizontalPodAutoscaler> = self.api();
        let jobs: Api<Job> = self.api();
        let sos = self.keda("ScaledObject", "scaledobjects");
        let sjs = self.keda("ScaledJob", "scaledjobs");
        log(
            self.plan,
            "deleting half the targets, then every ScaledObject and ScaledJob at once",
        );
        // One request per object (as `kubectl delete --all` does): one deletecollection of a
        // thousand objects outlives the apiserver's request timeout on a loaded machine.
        let first: Vec<String> = names(
            deployments
                .list_metadata(&ListParams::default().labels(&format!("{TARGET_FIRST_LABEL}=true")))
                .await?
                .items,
        );
        let owners_so = names(sos.list_metadata(&ListParams::default()).await?.items);
        let owners_sj = names(sjs.list_metadata(&ListParams::default()).await?.items);
        let started = Instant::now();
        delete_each(&deployments, first)
            .await
            .context("deleting the targets that go first")?;
        let (so_result, sj_result) =
            futures::join!(delete_each(&sos, owners_so), delete_each(&sjs, owners_sj));
        so_result.context("deleting the ScaledObjects")?;
        sj_result.context("deleting the ScaledJobs")?;
        outcome.deletes_sent_s = started.elapsed().as_secs_f64();
        log(
            self.plan,
            &format!("every delete sent in {:.1}s", outcome.deletes_sent_s),
        );
        let objects = self.plan.scaled_objects + self.plan.scaled_jobs;
        let limit = Duration::from_secs(120) + Duration::from_millis(300 * objects as u64);
        loop {
            let left_sos = names(sos.list_metadata(&ListParams::default()).await?.items);
            let left_sjs = names(sjs.list_metadata(&ListParams::default()).await?.items);
            let left_hpas = names(hpas.list_metadata(&ListParams::default()).await?.items);
            let left_jobs = names(jobs.list_metadata(&ListParams::default()).await?.items);
            let elapsed = started.elapsed().as_secs_f64();
            if left_sos.is_empty() && left_sjs.is_empty() && outcome.owners_gone_s.is_none() {
                outcome.owners_gone_s = Some(elapsed);
                log(
                    self.plan,
                    &format!("no ScaledObject or ScaledJob left after {elapsed:.1}s"),
                );
            }
            if left_hpas.is_empty() && left_jobs.is_empty() && outcome.dependents_gone_s.is_none() {
                outcome.dependents_gone_s = Some(elapsed);
            }
            if outcome.owners_gone_s.is_some() && outcome.dependents_gone_s.is_some() {
                log(
                    self.plan,
                    &format!(
                        "no HPA or Job left after {:.1}s",
                        outcome.dependents_gone_s.unwrap_or_default()
                    ),
                );
                return Ok(());
            }
            if started.elapsed() > limit {
                for (kind, left) in [
                    ("ScaledObject", left_sos),
                    ("ScaledJob", left_sjs),
                    ("HorizontalPodAutoscaler", left_hpas),
                    ("Job", left_jobs),
                ] {
                    if !left.is_empty() {
                        outcome.left.insert(kind, left);
                    }
                }
                let summary: Vec<String> = outcome
                    .left
                    .iter()
                    .map(|(kind, names)| format!("{} {kind}s", names.len()))
                    .collect();
                bail!(
                    "{} were left {limit:?} after the deletion",
                    summary.join(", ")
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Deletes each named object (background propagation), `CREATE_CONCURRENCY` at a time; one
/// already gone is not an error.
async fn delete_each<K>(api: &Api<K>, names: Vec<String>) -> anyhow::Result<()>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    futures::stream::iter(names)
        .map(|name| async move {
            match api.delete(&name, &DeleteParams::background()).await {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
                Err(e) => Err(anyhow::Error::new(e).context(format!("deleting {name}"))),
            }
        })
        .buffer_unordered(CREATE_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

fn names<K>(items: Vec<PartialObjectMeta<K>>) -> Vec<String> {
    items.into_iter().filter_map(|o| o.metadata.name).collect()
}

/// The name of `object`'s owner of `kind`, if it has one.
fn owner<K>(object: &PartialObjectMeta<K>, kind: &str) -> Option<String> {
    object
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.kind == kind)
        .map(|o| o.name.clone())
}

/// The markdown table of the runs, one row each.
pub fn table(plan_rows: &[(Plan, Outcome)]) -> String {
    let mut out = String::from(
        "| operator | ScaledObjects (half their targets first) | ScaledJobs | every delete sent | all ScaledObjects and ScaledJobs gone | all HPAs and Jobs gone | garbage collector after the owners |\n\
         | --- | --: | --: | --: | --: | --: | --: |\n",
    );
    let secs = |v: Option<f64>| v.map_or("not reached".to_string(), |v| format!("{v:.1} s"));
    for (plan, outcome) in plan_rows {
        out += &format!(
            "| {} | {} | {} | {:.1} s | {} | {} | {} |\n",
            outcome.label,
            plan.scaled_objects,
            plan.scaled_jobs,
            outcome.deletes_sent_s,
            secs(outcome.owners_gone_s),
            secs(outcome.dependents_gone_s),
            secs(outcome.gc_lag_s()),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_the_targets_go_first() {
        let first = (0..1000).filter(|&i| target_first(i)).count();
        assert_eq!(first, 500);
        assert!(!target_first(0) && target_first(1));
    }

    #[test]
    fn a_scaled_job_asks_for_one_job_on_its_own_query() {
        let sj = scaled_job("sj-00002", "http://127.0.0.1:1", &scaled_job_query(2), 30);
        assert_eq!(sj["kind"], "ScaledJob");
        assert_eq!(
            sj["spec"]["triggers"][0]["metadata"]["query"],
            "deletion_jobs{sj=\"sj-00002\"}"
        );
        let threshold: f64 = workload::THRESHOLD.parse().unwrap_or_default();
        assert!(workload::VALUE <= threshold && workload::VALUE > 0.0);
    }

    #[test]
    fn the_garbage_collector_lag_is_what_the_dependents_outlived_their_owners() {
        let outcome = Outcome {
            owners_gone_s: Some(4.0),
            dependents_gone_s: Some(6.5),
            ..Outcome::default()
        };
        assert_eq!(outcome.gc_lag_s(), Some(2.5));
        let unfinished = Outcome {
            owners_gone_s: Some(4.0),
            ..Outcome::default()
        };
        assert_eq!(unfinished.gc_lag_s(), None);
        let row = table(&[(
            Plan {
                operator: Operator::Builtin,
                scaled_objects: 10,
                scaled_jobs: 2,
                polling_interval: 30,
            },
            unfinished,
        )]);
        assert!(
            row.contains("| 0.0 s | 4.0 s | not reached | not reached |"),
            "{row}"
        );
    }
}
