//! One run: a fresh local cluster (the same flags for every operator, plus an audit log), the
//! operator started as the conformance runner starts it, N objects, and the phases in order.
//! A phase that fails is recorded and the later ones still run where they can.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use fake_sources::{FakeOptions, FakePrometheus};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{ApiResource, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::{Api, Client};

use super::audit;
use super::cli::Operator;
use super::procfs;
use super::prom_text::RequestCounts;
use super::report::RunResult;
use super::stats::Distribution;
use super::workload::{self, NAMESPACE};

/// What one run does.
#[derive(Debug, Clone)]
pub struct Plan {
    pub operator: Operator,
    pub objects: usize,
    pub polling_interval: u32,
    pub hpa_sync_period: Duration,
    pub steady: Duration,
    pub clients: usize,
    pub command: String,
}

/// The operator to start.
pub enum Subject<'a> {
    /// Our binary and the sources it was built from (see [`operator_source`], read when it was
    /// built: the tree may change while the runs go on).
    Builtin(&'a Path, &'a str),
    Upstream(&'a keda_conformance::upstream::Build, &'a str),
}

/// The User-Agent of the harness's own requests (kept apart from the operator's in the audit log).
pub const BENCH_AGENT: &str = "density-bench";
/// How many objects are being created at once.
const CREATE_CONCURRENCY: usize = 32;
const ADMISSION_SAMPLES: usize = 50;
const METRICS_API_PHASE: Duration = Duration::from_secs(15);

fn scaled_objects() -> ApiResource {
    ApiResource {
        group: "keda.sh".into(),
        version: "v1alpha1".into(),
        api_version: "keda.sh/v1alpha1".into(),
        kind: "ScaledObject".into(),
        plural: "scaledobjects".into(),
    }
}

fn log(plan: &Plan, message: &str) {
    eprintln!(
        "[{} {} N={}] {message}",
        jiff::Timestamp::now().strftime("%H:%M:%S"),
        plan.operator.name(),
        plan.objects
    );
}

pub async fn run(plan: &Plan, subject: Subject<'_>) -> anyhow::Result<RunResult> {
    let dir = tempfile::Builder::new().prefix("keda-density-").tempdir()?;
    let policy = dir.path().join("audit-policy.yaml");
    let audit_log = dir.path().join("audit.log");
    std::fs::write(&policy, audit::POLICY)?;
    let (preinstall, label, names) = match &subject {
        Subject::Builtin(binary, source) => (
            keda_conformance::operator::crds(binary)?,
            format!("ours (keda-operator {source}, release build)"),
            vec!["keda-operator".to_string()],
        ),
        Subject::Upstream(build, version) => (
            build.crds()?,
            format!("KEDA {version}"),
            ["keda", "keda-adapter", "keda-admission-webhooks"]
                .map(String::from)
                .to_vec(),
        ),
    };
    let mut options = kind::LocalOptions {
        nodes: workload::nodes_for(plan.objects),
        hpa_sync_period: plan.hpa_sync_period,
        preinstall,
        startup_timeout: Duration::from_secs(240),
        ..kind::LocalOptions::default()
    };
    options.extra_args.insert(
        "kube-apiserver".into(),
        audit::apiserver_flags(&policy, &audit_log),
    );
    log(
        plan,
        &format!("starting a local cluster with {} kwok nodes", options.nodes),
    );
    let cluster = kind::Cluster::start(kind::Provider::Local(options))
        .await
        .context("the local cluster did not start")?;
    let prometheus = FakePrometheus::start(FakeOptions::default()).await?;
    for i in 0..plan.objects {
        prometheus.set_sample(workload::query(i), workload::VALUE);
    }
    log(plan, "starting the operator");
    let mut running = match subject {
        Subject::Builtin(binary, _) => {
            keda_conformance::operator::Running::start_builtin(&cluster, binary).await?
        }
        Subject::Upstream(build, _) => keda_conformance::upstream::start(&cluster, build).await?,
    };
    let processes: Vec<(String, u32)> = running
        .processes()
        .into_iter()
        .map(|(name, pid, _)| (name, pid))
        .collect();
    let mut result = RunResult {
        operator: plan.operator.name().into(),
        label,
        objects: plan.objects,
        polling_interval_s: plan.polling_interval,
        hpa_sync_period_s: plan.hpa_sync_period.as_secs(),
        date: jiff::Timestamp::now()
            .round(jiff::Unit::Second)?
            .to_string(),
        machine: machine(),
        command: plan.command.clone(),
        processes: processes.iter().map(|(n, _)| n.clone()).collect(),
        operator_agents: names.clone(),
        metrics_api_clients: plan.clients,
        ..RunResult::default()
    };
    let client = bench_client(&cluster)?;
    let phases = Phases {
        plan,
        client: &client,
        audit_log: &audit_log,
        agents: names.iter().map(String::as_str).collect(),
        processes: &processes,
        prometheus_url: prometheus.url(),
        prometheus: &prometheus,
    };
    let outcome = phases.all(&mut result).await;
    if let Err(e) = running.check() {
        result
            .failures
            .push(format!("an operator process exited: {e}"));
    }
    if let Err(e) = outcome {
        result.failures.push(format!("{e:#}"));
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
    Ok(result)
}

/// A client that names itself, so the audit log keeps its requests apart.
fn bench_client(cluster: &kind::Cluster) -> anyhow::Result<Client> {
    let mut config = cluster.config().clone();
    config.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_static(BENCH_AGENT),
    ));
    Ok(Client::try_from(config)?)
}

struct Phases<'a> {
    plan: &'a Plan,
    client: &'a Client,
    audit_log: &'a Path,
    agents: Vec<&'a str>,
    processes: &'a [(String, u32)],
    prometheus_url: String,
    prometheus: &'a FakePrometheus,
}

impl Phases<'_> {
    async fn all(&self, result: &mut RunResult) -> anyhow::Result<()> {
        let namespace: Namespace =
            serde_json::from_value(serde_json::json!({"metadata": {"name": NAMESPACE}}))?;
        Api::<Namespace>::all(self.client.clone())
            .create(&PostParams::default(), &namespace)
            .await
            .context("creating the density namespace")?;
        self.create_until_ready(result).await?;
        result.load.insert("ready".into(), procfs::load_average());
        // The first polls, the pods of the first scale-up and the HPAs' first syncs settle.
        let settle = Duration::from_secs(u64::from(self.plan.polling_interval).max(30));
        log(self.plan, &format!("settling for {settle:?}"));
        tokio::time::sleep(settle).await;
        if let Err(e) = self.steady(result).await {
            result.failures.push(format!("steady state: {e:#}"));
        }
        result.load.insert("steady".into(), procfs::load_average());
        if let Err(e) = self.metrics_api(result).await {
            result.failures.push(format!("metrics API: {e:#}"));
        }
        result
            .load
            .insert("metrics-api".into(), procfs::load_average());
        if let Err(e) = self.admission(result).await {
            result.failures.push(format!("admission: {e:#}"));
        }
        result
            .load
            .insert("admission".into(), procfs::load_average());
        if let Err(e) = self.zero_to_one(result).await {
            result.failures.push(format!("0 -> 1: {e:#}"));
        }
        result
            .load
            .insert("zero-to-one".into(), procfs::load_average());
        self.delete_all(result).await?;
        result.load.insert("delete".into(), procfs::load_average());
        Ok(())
    }

    async fn apiserver_counts(&self) -> anyhow::Result<RequestCounts> {
        let request = http::Request::get("/metrics").body(Vec::new())?;
        let text = self.client.request_text(request).await?;
        RequestCounts::from_metrics(&text).map_err(|e| anyhow::anyhow!(e))
    }

    fn audit_since(&self, from: u64) -> anyhow::Result<audit::Window> {
        let to = audit::offset(self.audit_log)?;
        let text = audit::read_window(self.audit_log, from, to)?;
        Ok(audit::count(&text))
    }

    /// The operator's writes in a window, by `verb resource`.
    fn operator_writes(&self, window: &audit::Window) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for agent in &self.agents {
            for (what, n) in window.writes.get(*agent).into_iter().flatten() {
                *out.entry(format!("{agent}: {what}")).or_default() += n;
            }
        }
        out
    }

    async fn create_until_ready(&self, result: &mut RunResult) -> anyhow::Result<()> {
        let n = self.plan.objects;
        let deployments: Api<Deployment> = Api::namespaced(self.client.clone(), NAMESPACE);
        let sos: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), NAMESPACE, &scaled_objects());
        let before = self.apiserver_counts().await?;
        let from = audit::offset(self.audit_log)?;
        log(
            self.plan,
            &format!("creating {n} Deployments and ScaledObjects"),
        );
        let started = Instant::now();
        futures::stream::iter(0..n)
            .map(|i| {
                let (deployments, sos) = (deployments.clone(), sos.clone());
                let url = self.prometheus_url.clone();
                let poll = self.plan.polling_interval;
                async move {
                    let target = workload::deployment_name(i);
                    let d: Deployment = serde_json::from_value(workload::deployment(&target))?;
                    deployments
                        .create(&PostParams::default(), &d)
                        .await
                        .with_context(|| format!("creating Deployment {target}"))?;
                    let name = workload::scaled_object_name(i);
                    let so: DynamicObject = serde_json::from_value(workload::scaled_object(
                        &name,
                        &target,
                        &url,
                        &workload::query(i),
                        poll,
                    ))?;
                    sos.create(&PostParams::default(), &so)
                        .await
                        .with_context(|| format!("creating ScaledObject {name}"))?;
                    anyhow::Ok(())
                }
            })
            .buffer_unordered(CREATE_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
        log(
            self.plan,
            &format!(
                "created in {:.1}s; waiting for Ready and HPAs",
                started.elapsed().as_secs_f64()
            ),
        );
        let limit = Duration::from_secs(120) + Duration::from_millis(600 * n as u64);
        let mut ready = 0;
        loop {
            ready = self.ready_count(&sos).await.unwrap_or(ready);
            if ready == n {
                break;
            }
            if started.elapsed() > limit {
                bail!(
                    "only {ready} of {n} ScaledObjects were Ready with their HPA after {limit:?}"
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let elapsed = started.elapsed();
        result.ready_s = Some(elapsed.as_secs_f64());
        log(
            self.plan,
            &format!(
                "all {n} Ready with their HPA in {:.1}s",
                elapsed.as_secs_f64()
            ),
        );
        let after = self.apiserver_counts().await?;
        result.ready_apiserver_requests_total = Some(after.since(before).total);
        let window = self.audit_since(from)?;
        result.ready_operator_requests = Some(audit::total_of(&window.by_agent, &self.agents));
        result.ready_operator_writes = self.operator_writes(&window);
        result.ready_requests_by_agent = window.by_agent;
        Ok(())
    }

    /// ScaledObjects whose Ready condition is True and whose HPA exists.
    async fn ready_count(&self, sos: &Api<DynamicObject>) -> anyhow::Result<usize> {
        let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(self.client.clone(), NAMESPACE);
        let names: BTreeSet<String> = hpas
            .list_metadata(&ListParams::default())
            .await?
            .items
            .into_iter()
            .filter_map(|h| h.metadata.name)
            .collect();
        let list = sos.list(&ListParams::default()).await?;
        Ok(list
            .items
            .iter()
            .filter(|so| {
                let name = so.metadata.name.clone().unwrap_or_default();
                let status = &so.data["status"];
                let ready = status["conditions"].as_array().is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                });
                let hpa = status["hpaName"]
                    .as_str()
                    .map(String::from)
                    .unwrap_or_else(|| format!("keda-hpa-{name}"));
                ready && names.contains(&hpa)
            })
            .count())
    }

    async fn steady(&self, result: &mut RunResult) -> anyhow::Result<()> {
        let window = self.plan.steady;
        log(self.plan, &format!("steady-state window of {window:?}"));
        let ticks = procfs::ticks_per_second();
        let usage = |pids: &[(String, u32)]| -> anyhow::Result<Vec<procfs::Usage>> {
            pids.iter()
                .map(|(name, pid)| {
                    procfs::usage(*pid, ticks).map_err(|e| anyhow::anyhow!("{name}: {e}"))
                })
                .collect()
        };
        let first = usage(self.processes)?;
        let from = audit::offset(self.audit_log)?;
        let before = self.apiserver_counts().await?;
        let started = Instant::now();
        tokio::time::sleep(window).await;
        let last = usage(self.processes)?;
        let elapsed = started.elapsed().as_secs_f64();
        let after = self.apiserver_counts().await?;
        let window_requests = self.audit_since(from)?;
        let cpu: f64 = first
            .iter()
            .zip(&last)
            .map(|(a, b)| (b.cpu.saturating_sub(a.cpu)).as_secs_f64())
            .sum();
        result.steady_window_s = elapsed;
        result.cpu_cores = Some(cpu / elapsed);
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        result.rss_mib = Some(last.iter().map(|u| mib(u.rss_bytes)).sum());
        result.rss_mib_by_process = self
            .processes
            .iter()
            .zip(&last)
            .map(|((name, _), u)| (name.clone(), mib(u.rss_bytes)))
            .collect();
        let operator = audit::total_of(&window_requests.by_agent, &self.agents);
        result.steady_operator_writes = self.operator_writes(&window_requests);
        let minutes = elapsed / 60.0;
        result.steady_operator_writes_per_min = Some(operator.writes as f64 / minutes);
        result.steady_operator_requests_per_min = Some(operator.requests as f64 / minutes);
        result.steady_all_writes_per_min = Some(after.since(before).writes / minutes);
        Ok(())
    }

    async fn metrics_api(&self, result: &mut RunResult) -> anyhow::Result<()> {
        let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(self.client.clone(), NAMESPACE);
        let mut paths = Vec::new();
        for hpa in hpas.list(&ListParams::default()).await?.items {
            let Some(metric) = hpa
                .spec
                .metrics
                .as_ref()
                .and_then(|m| m.first())
                .and_then(|m| m.external.as_ref())
            else {
                continue;
            };
            let selector = metric
                .metric
                .selector
                .as_ref()
                .and_then(|s| s.match_labels.as_ref())
                .map(|labels| {
                    labels
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            let selector: String = form_urlencoded_byte_serialize(&selector);
            paths.push(format!(
                "/apis/external.metrics.k8s.io/v1beta1/namespaces/{NAMESPACE}/{}?labelSelector={selector}",
                metric.metric.name
            ));
        }
        if paths.is_empty() {
            bail!("no HPA with an external metric to read");
        }
        let clients = self.plan.clients;
        log(
            self.plan,
            &format!(
                "metrics API: {clients} clients over {} metrics for {METRICS_API_PHASE:?}",
                paths.len()
            ),
        );
        let started = Instant::now();
        let paths = std::sync::Arc::new(paths);
        let tasks: Vec<_> = (0..clients)
            .map(|c| {
                let client = self.client.clone();
                let paths = paths.clone();
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    let mut errors = 0u64;
                    let mut i = c;
                    while started.elapsed() < METRICS_API_PHASE {
                        let path = &paths[i % paths.len()];
                        i += clients;
                        let Ok(request) = http::Request::get(path.as_str()).body(Vec::new()) else {
                            errors += 1;
                            continue;
                        };
                        let sent = Instant::now();
                        match client.request_text(request).await {
                            Ok(_) => latencies.push(sent.elapsed()),
                            Err(_) => errors += 1,
                        }
                    }
                    (latencies, errors)
                })
            })
            .collect();
        let mut latencies = Vec::new();
        let mut errors = 0;
        for task in tasks {
            let (l, e) = task.await?;
            latencies.extend(l);
            errors += e;
        }
        let elapsed = started.elapsed().as_secs_f64();
        result.metrics_api_errors = errors;
        result.metrics_api_per_s = Some(latencies.len() as f64 / elapsed);
        result.metrics_api = Distribution::of(&latencies);
        if latencies.is_empty() {
            bail!("every one of {errors} metrics API reads failed");
        }
        Ok(())
    }

    async fn admission(&self, result: &mut RunResult) -> anyhow::Result<()> {
        let deployments: Api<Deployment> = Api::namespaced(self.client.clone(), NAMESPACE);
        let target = "probe-target";
        let d: Deployment = serde_json::from_value(workload::deployment(target))?;
        deployments.create(&PostParams::default(), &d).await?;
        let sos: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), NAMESPACE, &scaled_objects());
        let so: DynamicObject = serde_json::from_value(workload::scaled_object(
            "probe",
            target,
            &self.prometheus_url,
            &workload::query(self.plan.objects),
            self.plan.polling_interval,
        ))?;
        let dry_run = PostParams {
            dry_run: true,
            ..PostParams::default()
        };
        log(
            self.plan,
            &format!("admission: {ADMISSION_SAMPLES} dry-run creates"),
        );
        let mut latencies = Vec::new();
        for _ in 0..ADMISSION_SAMPLES {
            let sent = Instant::now();
            sos.create(&dry_run, &so)
                .await
                .context("a dry-run create of one more ScaledObject")?;
            latencies.push(sent.elapsed());
        }
        result.admission = Distribution::of(&latencies);
        Ok(())
    }

    /// Every object to 0 (value below activation, cooldown), a hold of two polls (the scale
    /// loop's lateness: the HPAs are disabled at 0 replicas, so only the scale loop asks the
    /// fake), then every value above activation at once, until every Deployment asks for a
    /// replica.
    async fn zero_to_one(&self, result: &mut RunResult) -> anyhow::Result<()> {
        let n = self.plan.objects;
        let poll = Duration::from_secs(u64::from(self.plan.polling_interval));
        let deployments: Api<Deployment> = Api::namespaced(self.client.clone(), NAMESPACE);
        for i in 0..n {
            self.prometheus.set_sample(workload::query(i), 0.0);
        }
        log(
            self.plan,
            "0 -> 1: every value to 0, waiting for every Deployment at 0",
        );
        let started = Instant::now();
        let limit = poll * 2 + Duration::from_secs(workload::COOLDOWN_SECONDS + 120);
        loop {
            let list = deployments.list(&ListParams::default()).await?;
            let up = list
                .items
                .iter()
                .filter(|d| d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1) > 0)
                .count();
            if up == 0 {
                break;
            }
            if started.elapsed() > limit {
                bail!("{up} Deployments still had replicas {limit:?} after the values went to 0");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        // The HPAs see 0 replicas at their next sync and stop reading the metrics API.
        tokio::time::sleep(self.plan.hpa_sync_period + Duration::from_secs(1)).await;
        self.prometheus.clear_requests();
        let hold = poll * 2 + Duration::from_secs(1);
        log(
            self.plan,
            &format!("0 -> 1: all at 0; holding {hold:?} for the scale loop's lateness"),
        );
        tokio::time::sleep(hold).await;
        let mut by_query: BTreeMap<String, Vec<Instant>> = BTreeMap::new();
        for request in self.prometheus.controls().requests() {
            if let Some(key) = request.key {
                by_query.entry(key).or_default().push(request.at.into());
            }
        }
        let mut lateness = Vec::new();
        for times in by_query.values_mut() {
            times.sort();
            for pair in times.windows(2) {
                let interval = pair[1].duration_since(pair[0]).as_secs_f64();
                lateness.push((interval - poll.as_secs_f64()) * 1e3);
            }
        }
        result.poll_lateness = super::stats::Distribution::of_millis(lateness);

        let watch = deployments.clone();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let watcher = tokio::spawn(async move {
            let stream = kube::runtime::watcher(watch, kube::runtime::watcher::Config::default());
            futures::pin_mut!(stream);
            while let Some(event) = stream.next().await {
                let objects = match event {
                    Ok(kube::runtime::watcher::Event::Apply(d))
                    | Ok(kube::runtime::watcher::Event::InitApply(d)) => vec![d],
                    _ => continue,
                };
                for d in objects {
                    if d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0) > 0 {
                        let _ = tx.send((d.metadata.name.unwrap_or_default(), Instant::now()));
                    }
                }
            }
        });
        // The watch is established before the flip: its initial list shows every one at 0.
        tokio::time::sleep(Duration::from_secs(2)).await;
        self.prometheus.clear_requests();
        for i in 0..n {
            self.prometheus
                .set_sample(workload::query(i), workload::VALUE);
        }
        let flipped = Instant::now();
        log(self.plan, "0 -> 1: every value above activation");
        let mut first: BTreeMap<String, Duration> = BTreeMap::new();
        let deadline = flipped + poll + Duration::from_secs(60);
        while first.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, rx.recv()).await {
                Ok(Some((name, at))) => {
                    if name.starts_with("app-") {
                        first
                            .entry(name)
                            .or_insert(at.saturating_duration_since(flipped));
                    }
                }
                _ => break,
            }
        }
        watcher.abort();
        let delays: Vec<Duration> = first.values().copied().collect();
        result.zero_to_one = super::stats::Distribution::of(&delays);
        // Where the flip falls in the poll cycle decides most of the above; from the poll that
        // saw the new value (the fake's log) to the replica is the operator's own share.
        let mut seen: BTreeMap<String, Instant> = BTreeMap::new();
        for request in self.prometheus.controls().requests() {
            if let Some(key) = request.key {
                let at: Instant = request.at.into();
                if at >= flipped {
                    seen.entry(key).or_insert(at);
                }
            }
        }
        let reactions: Vec<Duration> = (0..n)
            .filter_map(|i| {
                let replica = flipped + *first.get(&workload::deployment_name(i))?;
                let poll = *seen.get(&workload::query(i))?;
                Some(replica.saturating_duration_since(poll))
            })
            .collect();
        result.zero_to_one_after_poll = super::stats::Distribution::of(&reactions);
        if first.len() < n {
            bail!(
                "{} of {n} Deployments asked for a replica within {:?} of the flip",
                first.len(),
                deadline - flipped
            );
        }
        // HPAs take over again before the deletion phase.
        Ok(())
    }

    async fn delete_all(&self, result: &mut RunResult) -> anyhow::Result<()> {
        let sos: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), NAMESPACE, &scaled_objects());
        let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(self.client.clone(), NAMESPACE);
        log(self.plan, "deleting every ScaledObject at once");
        let started = Instant::now();
        sos.delete_collection(&DeleteParams::background(), &ListParams::default())
            .await
            .context("deleting the ScaledObjects")?;
        let limit =
            Duration::from_secs(120) + Duration::from_millis(300 * self.plan.objects as u64);
        loop {
            let left_sos = sos.list_metadata(&ListParams::default()).await?.items.len();
            let left_hpas = hpas
                .list_metadata(&ListParams::default())
                .await?
                .items
                .len();
            if left_sos == 0 && left_hpas == 0 {
                break;
            }
            if started.elapsed() > limit {
                bail!(
                    "{left_sos} ScaledObjects and {left_hpas} HPAs were left {limit:?} after deleting them"
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        result.delete_s = Some(started.elapsed().as_secs_f64());
        log(
            self.plan,
            &format!("all deleted in {:.1}s", started.elapsed().as_secs_f64()),
        );
        Ok(())
    }
}

/// A query-string value with everything but unreserved characters percent-encoded.
fn form_urlencoded_byte_serialize(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The CPU model, core count and memory, from /proc.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split(':').nth(1))
        })
        .map(str::trim)
        .unwrap_or("unknown CPU");
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|r| r.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / (1024.0 * 1024.0));
    format!("{model}, {cores} cores, {gib:.0} GiB")
}

/// Which sources our operator was built from: the commit, and whether `operator/` had changes
/// not committed yet.
pub fn operator_source() -> Option<String> {
    let root = keda_conformance::operator::workspace_root()?;
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(&root)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "--short", "HEAD"])?;
    let dirty = git(&["status", "--porcelain", "--", "operator"])?;
    Some(match dirty.is_empty() {
        true => commit,
        false => format!("{commit} + uncommitted operator changes"),
    })
}

/// Our operator from a release build: `$KEDA_OPERATOR_BIN`, else `cargo build --release`; copied
/// into `keep` so that a rebuild during the runs does not change what later runs start.
pub fn our_release_binary(keep: &Path) -> anyhow::Result<PathBuf> {
    let built = match std::env::var_os(keda_conformance::operator::BINARY_ENV) {
        Some(path) => PathBuf::from(path),
        None => build_release()?,
    };
    let copy = keep.join("keda-operator");
    std::fs::copy(&built, &copy)
        .with_context(|| format!("copying {} to {}", built.display(), copy.display()))?;
    Ok(copy)
}

fn build_release() -> anyhow::Result<PathBuf> {
    let root = keda_conformance::operator::workspace_root()
        .context("the operator's sources are not next to this program (set KEDA_OPERATOR_BIN)")?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = keda_conformance::operator::nested_cargo(cargo)
        .args([
            "build",
            "--release",
            "-p",
            "keda-operator",
            "--bin",
            "keda-operator",
            "--message-format=json-render-diagnostics",
        ])
        .current_dir(&root)
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("running cargo build --release -p keda-operator")?;
    if !out.status.success() {
        bail!(
            "cargo build --release -p keda-operator failed ({})",
            out.status
        );
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "keda-operator")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .context("cargo built keda-operator but named no executable")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_label_selector_is_percent_encoded() {
        assert_eq!(
            form_urlencoded_byte_serialize("scaledobject.keda.sh/name=so-00001"),
            "scaledobject.keda.sh%2Fname%3Dso-00001"
        );
    }
}
