//! The fakes besides Prometheus that rules drive an operator's own scalers through: MySQL,
//! RabbitMQ (AMQP and the management API) and the Datadog Cluster Agent. Each rule has its
//! own key in each (derived from its `${query}`), so rules run side by side; `metric` steps
//! with `source:` set what the key answers.

use std::time::Duration;

use fake_sources::{
    AgentValue, Auth, DatadogValue, FakeDatadog, FakeDatadogClusterAgent, FakeMySql, FakeOptions,
    FakeRabbitMq, Fault, FaultId, FaultSpec, QueueState, TestCa, queue_key,
};

use super::{AUTH_PASSWORD, AUTH_USERNAME};
use crate::scenario::model::{MetricAction, Source};

/// The keys the fake Datadog API demands (`${datadogApiKey}`, `${datadogAppKey}`).
const DATADOG_API_KEY: &str = "keda-conformance-api-key";
const DATADOG_APP_KEY: &str = "keda-conformance-application-key";

/// The running fakes. MySQL and RabbitMQ admit only [`AUTH_USERNAME`] with [`AUTH_PASSWORD`]
/// (`${sourceUsername}`, `${sourcePassword}`), so a rule also shows the credentials reach the
/// scaler. The Cluster Agent speaks HTTPS only, as the real one does, with a certificate from
/// a CA made for the run (the rules set `unsafeSsl`, KEDA's way to accept it). The Datadog
/// API demands [`DATADOG_API_KEY`] and [`DATADOG_APP_KEY`]; it speaks plain HTTP, which only
/// an operator that lets its base URL be set can reach (upstream KEDA cannot).
pub struct Sources {
    pub mysql: FakeMySql,
    pub rabbitmq: FakeRabbitMq,
    pub datadog_agent: FakeDatadogClusterAgent,
    pub datadog: FakeDatadog,
}

/// One rule's keys in each fake.
#[derive(Debug, Clone)]
pub struct RuleKeys {
    /// The SQL text the fake MySQL answers (`${mysqlQuery}`).
    pub mysql_query: String,
    /// The Prometheus query (`${query}`), also the queue's name.
    pub query: String,
    /// The queue's vhost: the rule's namespace, so that the connections into it are the rule's.
    pub vhost: String,
    /// The Cluster Agent's value key for DatadogMetric `${query}` in the rule's namespace.
    pub datadog_metric: String,
    /// The Datadog API query (`${datadogQuery}`).
    pub datadog_query: String,
}

impl RuleKeys {
    pub fn new(namespace: &str, query: &str) -> Self {
        RuleKeys {
            mysql_query: format!("SELECT COUNT(*) FROM {query}"),
            query: query.to_string(),
            vhost: namespace.to_string(),
            datadog_metric: fake_sources::datadog_agent::metric_key(namespace, query),
            datadog_query: format!("avg:{query}{{*}}"),
        }
    }
}

impl Sources {
    pub async fn start() -> anyhow::Result<Self> {
        let mysql = FakeMySql::start(FakeOptions::default()).await?;
        mysql.require_password(AUTH_USERNAME, AUTH_PASSWORD);
        let rabbitmq = FakeRabbitMq::start(FakeOptions::default()).await?;
        rabbitmq.require_password(AUTH_USERNAME, AUTH_PASSWORD);
        let ca = TestCa::new("keda-conformance sources")?;
        let datadog_agent = FakeDatadogClusterAgent::start(FakeOptions {
            tls: Some(ca.server_tls(false)?),
            ..FakeOptions::default()
        })
        .await?;
        let datadog = FakeDatadog::start(FakeOptions::default()).await?;
        datadog.require_auth(Auth::api_keys(DATADOG_API_KEY, DATADOG_APP_KEY));
        Ok(Sources {
            mysql,
            rabbitmq,
            datadog_agent,
            datadog,
        })
    }

    /// The placeholders every rule gets for these fakes (its own keys aside).
    pub fn vars(&self) -> Vec<(&'static str, String)> {
        vec![
            ("sourceUsername", AUTH_USERNAME.to_string()),
            ("sourcePassword", AUTH_PASSWORD.to_string()),
            ("mysqlHost", self.mysql.addr().ip().to_string()),
            ("mysqlPort", self.mysql.port().to_string()),
            ("rabbitmqAmqp", self.rabbitmq.amqp_url()),
            ("rabbitmqHttp", self.rabbitmq.management_url()),
            (
                "datadogAgentPort",
                self.datadog_agent.addr().port().to_string(),
            ),
            ("datadog", self.datadog.url()),
            ("datadogApiKey", DATADOG_API_KEY.to_string()),
            ("datadogAppKey", DATADOG_APP_KEY.to_string()),
        ]
    }

    /// Serves `action` for the rule's key in `source` (not Prometheus, which the engine sets
    /// itself); returns the fault installed, if any, for [`Sources::clear_fault`].
    pub fn set(&self, source: Source, keys: &RuleKeys, action: &MetricAction) -> Option<FaultId> {
        let fault = || FaultSpec {
            fault: Fault::error(500, "the conformance runner made this source fail"),
            key: Some(self.key(source, keys)),
            times: None,
        };
        match (source, action) {
            (Source::Prometheus, _) => None,
            (Source::Mysql, MetricAction::Value(v)) => {
                self.mysql.set(keys.mysql_query.clone(), *v);
                None
            }
            (Source::Mysql, MetricAction::Script(steps)) => {
                self.mysql.script(keys.mysql_query.clone(), steps.clone());
                None
            }
            (Source::Rabbitmq, MetricAction::Value(v)) => {
                self.rabbitmq.set_queue(&keys.vhost, &keys.query, ready(*v));
                None
            }
            (Source::Rabbitmq, MetricAction::Script(steps)) => {
                let steps: Vec<(Duration, QueueState)> =
                    steps.iter().map(|(after, v)| (*after, ready(*v))).collect();
                self.rabbitmq.script_queue(&keys.vhost, &keys.query, steps);
                None
            }
            (Source::DatadogClusterAgent, MetricAction::Value(v)) => {
                self.datadog_agent
                    .set(keys.datadog_metric.clone(), AgentValue::Number(*v));
                None
            }
            (Source::DatadogClusterAgent, MetricAction::Script(steps)) => {
                let steps: Vec<(Duration, AgentValue)> = steps
                    .iter()
                    .map(|(after, v)| (*after, AgentValue::Number(*v)))
                    .collect();
                self.datadog_agent
                    .script(keys.datadog_metric.clone(), steps);
                None
            }
            (Source::Datadog, MetricAction::Value(v)) => {
                self.datadog
                    .set(keys.datadog_query.clone(), DatadogValue::from(*v));
                None
            }
            (Source::Datadog, MetricAction::Script(steps)) => {
                let steps: Vec<(Duration, DatadogValue)> = steps
                    .iter()
                    .map(|(after, v)| (*after, DatadogValue::from(*v)))
                    .collect();
                self.datadog.script(keys.datadog_query.clone(), steps);
                None
            }
            (Source::Datadog, MetricAction::Fail) => Some(self.datadog.add_fault(fault())),
            (Source::Mysql, MetricAction::Fail) => Some(self.mysql.add_fault(fault())),
            (Source::Rabbitmq, MetricAction::Fail) => Some(self.rabbitmq.add_fault(fault())),
            (Source::DatadogClusterAgent, MetricAction::Fail) => {
                Some(self.datadog_agent.add_fault(fault()))
            }
        }
    }

    /// The key a fault for the rule is scoped to.
    fn key(&self, source: Source, keys: &RuleKeys) -> String {
        match source {
            Source::Prometheus => keys.query.clone(),
            Source::Mysql => keys.mysql_query.clone(),
            Source::Rabbitmq => queue_key(&keys.vhost, &keys.query),
            Source::DatadogClusterAgent => keys.datadog_metric.clone(),
            Source::Datadog => keys.datadog_query.clone(),
        }
    }

    pub fn clear_fault(&self, source: Source, id: FaultId) {
        match source {
            Source::Prometheus => {}
            Source::Mysql => {
                self.mysql.clear_fault(id);
            }
            Source::Rabbitmq => {
                self.rabbitmq.clear_fault(id);
            }
            Source::DatadogClusterAgent => {
                self.datadog_agent.clear_fault(id);
            }
            Source::Datadog => {
                self.datadog.clear_fault(id);
            }
        }
    }

    /// The AMQP connections the fake RabbitMQ accepted into the rule's vhost so far.
    pub fn amqp_connections(&self, keys: &RuleKeys) -> usize {
        self.rabbitmq
            .requests()
            .iter()
            .filter(|r| {
                r.method == "CONNECT"
                    && r.path == keys.vhost
                    && r.response == fake_sources::Response::Answered { status: 200 }
            })
            .count()
    }

    /// Forgets everything the rule set (its queue goes too).
    pub fn clear(&self, keys: &RuleKeys) {
        self.mysql.clear_value(&keys.mysql_query);
        self.rabbitmq.delete_queue(&keys.vhost, &keys.query);
        self.datadog_agent.clear_value(&keys.datadog_metric);
        self.datadog.clear_value(&keys.datadog_query);
    }
}

/// A queue holding `messages` ready messages (the model refused anything but a whole,
/// non-negative number of them).
fn ready(messages: f64) -> QueueState {
    QueueState::ready(messages as u64)
}
