//! The management HTTP API's queue endpoints, answered as RabbitMQ 3.10 answers them.

use std::sync::Arc;

use http::{Method, StatusCode};
use serde_json::json;

use super::broker::{Broker, QueueView};
use super::queue::{QueueState, escape_vhost};
use crate::control::{Malformed, UnknownKeys};
use crate::http::{HttpRequest, HttpResponse, Protocol, percent_decode};

/// RabbitMQ refuses larger pages.
const MAX_PAGE_SIZE: u64 = 500;

/// The management API over the broker both protocols share.
pub struct Management {
    pub(super) broker: Arc<Broker>,
}

impl Management {
    pub(super) fn new() -> Self {
        Management {
            broker: Arc::new(Broker::default()),
        }
    }

    fn list(&self, request: &HttpRequest, vhost: Option<&str>) -> HttpResponse {
        if let Some(v) = vhost
            && !self.broker.vhost_exists(v)
        {
            return not_found();
        }
        let all = self.broker.queue_views(vhost);
        let total = all.len();
        let name = request.param("name").unwrap_or("");
        let use_regex = request.param("use_regex") == Some("true");
        let filtered: Vec<_> = if name.is_empty() {
            all
        } else if use_regex {
            // RabbitMQ matches regexes without regard to case, too.
            match regex::RegexBuilder::new(name)
                .case_insensitive(true)
                .build()
            {
                Ok(re) => all.into_iter().filter(|q| re.is_match(&q.name)).collect(),
                Err(error) => return bad_request(&format!("invalid regex {name:?}: {error}")),
            }
        } else {
            // A plain name filter is a case-insensitive substring.
            let wanted = name.to_lowercase();
            all.into_iter()
                .filter(|q| q.name.to_lowercase().contains(&wanted))
                .collect()
        };
        let items = |queues: &[QueueView]| -> Vec<serde_json::Value> {
            queues.iter().map(queue_json).collect()
        };
        let Some(page) = request.param("page") else {
            return HttpResponse::json(StatusCode::OK, &json!(items(&filtered)));
        };
        let Ok(page) = page.parse::<u64>().map(|p| p.max(1)) else {
            return bad_request(&format!("page: {page:?} is not a number"));
        };
        let page_size = match request.param("page_size").map(str::parse::<u64>) {
            None => 100,
            Some(Ok(size)) if (1..=MAX_PAGE_SIZE).contains(&size) => size,
            Some(_) => {
                let reason = format!(
                    "Invalid pagination parameters: page number {page}, page size {}",
                    request.param("page_size").unwrap_or("")
                );
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_pagination_parameters",
                    &reason,
                );
            }
        };
        let filtered_count = filtered.len() as u64;
        let page_count = filtered_count.div_ceil(page_size);
        if page > page_count.max(1) {
            let reason = format!(
                "Page out of range, page: {page} page size: {page_size}, len: {filtered_count}"
            );
            return error(StatusCode::BAD_REQUEST, "page_out_of_range", &reason);
        }
        let start = usize::try_from((page - 1).saturating_mul(page_size)).unwrap_or(usize::MAX);
        let end = start.saturating_add(usize::try_from(page_size).unwrap_or(usize::MAX));
        let on_page = filtered.get(start..end.min(filtered.len())).unwrap_or(&[]);
        HttpResponse::json(
            StatusCode::OK,
            &json!({
                "filtered_count": filtered_count,
                "item_count": on_page.len(),
                "items": items(on_page),
                "page": page,
                "page_count": page_count,
                "page_size": page_size,
                "total_count": total,
            }),
        )
    }
}

fn not_found() -> HttpResponse {
    HttpResponse::json(
        StatusCode::NOT_FOUND,
        &json!({"error": "Object Not Found", "reason": "Not Found"}),
    )
}

fn error(status: StatusCode, error: &str, reason: &str) -> HttpResponse {
    HttpResponse::json(status, &json!({"error": error, "reason": reason}))
}

fn bad_request(reason: &str) -> HttpResponse {
    HttpResponse::json(
        StatusCode::BAD_REQUEST,
        &json!({"error": "bad_request", "reason": reason}),
    )
}

fn rate(value: f64) -> serde_json::Value {
    json!({ "rate": value })
}

/// The fields of a queue object the scalers read, and the ones around them. The message
/// statistics are counts since the queue was created and rates over the last five seconds
/// (plus any rate a script set).
fn queue_json(view: &QueueView) -> serde_json::Value {
    let state: &QueueState = &view.state;
    json!({
        "name": view.name,
        "vhost": view.vhost,
        "type": "classic",
        "state": "running",
        "node": "rabbit@fake-sources",
        "durable": view.durable,
        "auto_delete": view.auto_delete,
        "exclusive": view.exclusive,
        "arguments": {},
        "consumers": state.consumers,
        "messages": state.messages(),
        "messages_details": rate(0.0),
        "messages_ready": state.messages_ready,
        "messages_ready_details": rate(0.0),
        "messages_unacknowledged": state.messages_unacknowledged,
        "messages_unacknowledged_details": rate(0.0),
        "message_stats": {
            "publish": view.publish,
            "publish_details": rate(state.publish_rate),
            "deliver_get": view.deliver_get,
            "deliver_get_details": rate(state.deliver_get_rate),
            "ack": view.ack,
            "ack_details": rate(0.0),
            "redeliver": view.redeliver,
            "redeliver_details": rate(0.0),
        },
    })
}

/// `/api/queues[/<vhost>[/<queue>]]` split into decoded segments; `None` for other paths.
fn queue_path(raw_path: &str) -> Option<Vec<String>> {
    let rest = raw_path.strip_prefix("/api/queues")?;
    if rest.is_empty() || rest == "/" {
        return Some(Vec::new());
    }
    let rest = rest.strip_prefix('/')?;
    Some(rest.split('/').map(percent_decode).collect())
}

impl Protocol for Management {
    type Value = QueueState;

    fn name(&self) -> &'static str {
        "rabbitmq-management"
    }

    fn key(&self, request: &HttpRequest) -> Option<String> {
        match queue_path(&request.raw_path)?.as_slice() {
            [vhost, queue] => Some(format!("{}/{queue}", escape_vhost(vhost))),
            _ => None,
        }
    }

    /// The queue's value comes from the shared queues (`value` is the HTTP layer's own,
    /// which this fake does not use).
    fn answer(
        &self,
        request: &HttpRequest,
        _value: Option<QueueState>,
        _unknown: UnknownKeys,
    ) -> HttpResponse {
        let get = request.method == Method::GET || request.method == Method::HEAD;
        if request.raw_path == "/api/overview" && get {
            return HttpResponse::json(
                StatusCode::OK,
                &json!({"rabbitmq_version": "3.10.8", "product_name": "RabbitMQ",
                        "cluster_name": "fake-sources", "node": "rabbit@fake-sources"}),
            );
        }
        let Some(segments) = queue_path(&request.raw_path) else {
            return not_found();
        };
        if !get {
            return HttpResponse::json(
                StatusCode::METHOD_NOT_ALLOWED,
                &json!({"error": "Method Not Allowed", "reason": "fake-sources serves GET only"}),
            );
        }
        match segments.as_slice() {
            [] => self.list(request, None),
            [vhost] => self.list(request, Some(vhost)),
            [vhost, queue] => match self
                .broker
                .queue_views(Some(vhost))
                .into_iter()
                .find(|view| view.name == *queue)
            {
                Some(view) => HttpResponse::json(StatusCode::OK, &queue_json(&view)),
                None => not_found(),
            },
            _ => not_found(),
        }
    }

    fn unauthorized(&self, reason: &str) -> HttpResponse {
        // Without credentials RabbitMQ answers an empty body; with wrong ones, a JSON reason.
        let response = if reason.starts_with("missing") {
            HttpResponse {
                status: StatusCode::UNAUTHORIZED,
                headers: Vec::new(),
                body: bytes::Bytes::new(),
            }
        } else {
            HttpResponse::json(
                StatusCode::UNAUTHORIZED,
                &json!({"error": "not_authorized", "reason": "Login failed"}),
            )
        };
        response.with_header("www-authenticate", "Basic realm=\"RabbitMQ Management\"")
    }

    fn malformed(&self, kind: Malformed) -> HttpResponse {
        let body = match kind {
            Malformed::InvalidJson => r#"{"name":"q","messages":3,"messages_ready""#,
            Malformed::WrongShape => r#"{"name":"q","messages":"three","items":{}}"#,
            Malformed::EmptyBody => "",
        };
        HttpResponse::new(StatusCode::OK, "application/json", body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_paths_split_on_raw_slashes_only() {
        assert_eq!(queue_path("/api/queues"), Some(vec![]));
        assert_eq!(
            queue_path("/api/queues/%2F/a%2Fb"),
            Some(vec!["/".to_string(), "a/b".to_string()])
        );
        assert_eq!(queue_path("/api/exchanges/%2F"), None);
    }
}
