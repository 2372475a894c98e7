//! The HTTP server: routing, limits, the one place where errors become HTTP statuses, and shutdown.
//!
//! Request path of a webhook: read the body (bounded) → the carrier adapter verifies and normalises →
//! drop it if its id was published recently → publish to Kafka → answer. Nothing is published unless
//! the signature holds and the body parses; nothing is acknowledged with 200 unless Kafka took it (in
//! `durable` mode) or the producer queued it (in `fast` mode).

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use jiff::Timestamp;
use tokio::net::TcpListener;

use crate::carrier::telnyx::Telnyx;
use crate::carrier::twilio::{Hook, Twilio};
use crate::carrier::WebhookError;
use crate::dedupe::Seen;
use crate::publish::{KafkaPublisher, PublishError, Publisher};
use crate::settings::Settings;
use crate::telemetry::{Metrics, Route};
use textback_schemas::Event;

const EMPTY_TWIML: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>";

pub type Body = Full<Bytes>;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid settings: {0}")]
    Settings(String),
    #[error("cannot create the Kafka producer: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
}

pub struct Gateway {
    settings: Settings,
    twilio: Twilio,
    telnyx: Option<Telnyx>,
    seen: Seen,
    publisher: Publisher,
    metrics: Arc<Metrics>,
    dial_twiml: Bytes,
}

/// Why a request was not answered 200. `response` is the only mapping to HTTP statuses.
enum Refusal {
    NotFound,
    MethodNotAllowed(&'static str),
    TooLarge,
    UnreadableBody,
    Webhook(WebhookError),
    Unavailable(PublishError),
    NotReady,
}

impl Refusal {
    fn status(&self) -> StatusCode {
        match self {
            Refusal::NotFound => StatusCode::NOT_FOUND,
            Refusal::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Refusal::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Refusal::UnreadableBody | Refusal::Webhook(WebhookError::Malformed(_)) => {
                StatusCode::BAD_REQUEST
            }
            Refusal::Webhook(WebhookError::Forbidden(_)) => StatusCode::FORBIDDEN,
            Refusal::Unavailable(_) | Refusal::NotReady => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn reason(&self) -> String {
        match self {
            Refusal::NotFound => "no such route".into(),
            Refusal::MethodNotAllowed(allowed) => format!("method not allowed; use {allowed}"),
            Refusal::TooLarge => "request body too large".into(),
            Refusal::UnreadableBody => "request body could not be read".into(),
            Refusal::Webhook(e) => e.to_string(),
            Refusal::Unavailable(e) => format!("try again: {e}"),
            Refusal::NotReady => "Kafka is not reachable".into(),
        }
    }

    fn response(&self) -> Response<Body> {
        let mut body = self.reason();
        body.push('\n');
        let mut builder = Response::builder()
            .status(self.status())
            .header(CONTENT_TYPE, "text/plain; charset=utf-8");
        match self {
            Refusal::MethodNotAllowed(allowed) => builder = builder.header(ALLOW, *allowed),
            Refusal::Unavailable(_) => builder = builder.header(RETRY_AFTER, "1"),
            _ => {}
        }
        builder
            .body(Full::new(Bytes::from(body)))
            .expect("static response parts are valid")
    }
}

fn route_of(path: &str) -> Route {
    match path {
        "/twilio/voice/dial" => Route::TwilioDial,
        "/twilio/voice/status" => Route::TwilioVoiceStatus,
        "/twilio/sms" => Route::TwilioSms,
        "/twilio/sms/status" => Route::TwilioSmsStatus,
        "/telnyx" => Route::Telnyx,
        "/healthz" => Route::Healthz,
        "/readyz" => Route::Readyz,
        "/metrics" => Route::Metrics,
        _ => Route::Unknown,
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a [u8]> {
    headers.get(name).map(|v| v.as_bytes())
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl Gateway {
    /// A gateway publishing to Kafka.
    pub fn new(settings: Settings) -> Result<Arc<Self>, StartError> {
        settings.validate().map_err(StartError::Settings)?;
        let metrics = Arc::new(Metrics::default());
        let publisher = Publisher::Kafka(KafkaPublisher::new(
            &settings.kafka,
            settings.ack_mode,
            metrics.clone(),
        )?);
        Self::build(settings, publisher, metrics)
    }

    /// A gateway handing events to a worker in the same process (the embedded default).
    pub fn in_process(
        settings: Settings,
        tx: tokio::sync::mpsc::Sender<Event>,
    ) -> Result<Arc<Self>, StartError> {
        settings.validate().map_err(StartError::Settings)?;
        let metrics = Arc::new(Metrics::default());
        let publisher = Publisher::InProcess {
            tx,
            metrics: metrics.clone(),
        };
        Self::build(settings, publisher, metrics)
    }

    fn build(
        settings: Settings,
        publisher: Publisher,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Self>, StartError> {
        let twilio = Twilio::new(&settings.public_base_url, &settings.twilio.auth_tokens);
        let telnyx = match settings.telnyx.public_key.as_str() {
            "" => None,
            key => Some(
                Telnyx::new(key, settings.telnyx.timestamp_tolerance_secs)
                    .map_err(StartError::Settings)?,
            ),
        };
        let say = match settings.dial_action_message.trim() {
            "" => String::new(),
            message => format!("<Say>{}</Say>", xml_escape(message)),
        };
        let dial_twiml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>{say}<Hangup/></Response>"
        )
        .into();
        Ok(Arc::new(Gateway {
            seen: Seen::new(Duration::from_secs(settings.dedupe_ttl_secs)),
            settings,
            twilio,
            telnyx,
            publisher,
            metrics,
            dial_twiml,
        }))
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets in-flight requests finish and
    /// flushes the producer, each within the configured grace period.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let background = [
            tokio::spawn(self.clone().probe_kafka()),
            tokio::spawn(self.clone().sweep_seen()),
        ];
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(self.settings.header_read_timeout())
            .keep_alive(true);
        let graceful = GracefulShutdown::new();
        tokio::pin!(shutdown);
        tracing::info!(listen = %listener.local_addr()?, ack_mode = ?self.settings.ack_mode, "gateway listening");
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, _) = match accepted {
                        Ok(conn) => conn,
                        Err(e) => {
                            // Out of file descriptors and the like: keep serving the connections we have.
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    let gateway = self.clone();
                    let service = service_fn(move |req| {
                        let gateway = gateway.clone();
                        async move { Ok::<_, Infallible>(gateway.respond(req).await) }
                    });
                    let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
                    tokio::spawn(async move {
                        // Errors here are clients going away or timing out; nothing to act on.
                        let _ = connection.await;
                    });
                }
                () = &mut shutdown => break,
            }
        }
        drop(listener);
        let grace = Duration::from_millis(self.settings.shutdown_grace_ms);
        tracing::info!("shutting down: finishing in-flight requests");
        if tokio::time::timeout(grace, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("in-flight requests did not finish within the grace period");
        }
        for task in background {
            task.abort();
        }
        let publisher = self.publisher.clone();
        let flushed = tokio::task::spawn_blocking(move || publisher.flush_blocking(grace))
            .await
            .unwrap_or(false);
        if !flushed {
            tracing::error!(
                in_flight = self.publisher.in_flight(),
                "producer not flushed within the grace period"
            );
        }
        Ok(())
    }

    async fn respond(self: Arc<Self>, req: Request<Incoming>) -> Response<Body> {
        let started = Instant::now();
        let route = route_of(req.uri().path());
        let response = match self.dispatch(route, req).await {
            Ok(response) => response,
            Err(refusal) => {
                let code = refusal.status().as_u16();
                if route.is_webhook() && code < 500 {
                    self.metrics
                        .webhook_rejected(route, code, &refusal.reason());
                }
                refusal.response()
            }
        };
        self.metrics
            .request_answered(route, response.status().as_u16(), started.elapsed());
        response
    }

    async fn dispatch(
        &self,
        route: Route,
        req: Request<Incoming>,
    ) -> Result<Response<Body>, Refusal> {
        let is_get = matches!(*req.method(), Method::GET | Method::HEAD);
        match route {
            Route::Unknown => Err(Refusal::NotFound),
            Route::Healthz | Route::Readyz | Route::Metrics if !is_get => {
                Err(Refusal::MethodNotAllowed("GET"))
            }
            Route::Healthz => Ok(text(StatusCode::OK, "ok\n".into())),
            Route::Readyz if self.metrics.is_kafka_up() => {
                Ok(text(StatusCode::OK, "ready\n".into()))
            }
            Route::Readyz => Err(Refusal::NotReady),
            Route::Metrics => Ok(Response::builder()
                .header(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")
                .body(Full::new(Bytes::from(self.metrics.render(self.seen.len()))))
                .expect("static response parts are valid")),
            _ if req.method() != Method::POST => Err(Refusal::MethodNotAllowed("POST")),
            _ => self.webhook(route, req).await,
        }
    }

    async fn webhook(
        &self,
        route: Route,
        req: Request<Incoming>,
    ) -> Result<Response<Body>, Refusal> {
        let (parts, body) = req.into_parts();
        let max = self.settings.max_body_bytes;
        let declared = parts
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|len| len > max as u64) {
            return Err(Refusal::TooLarge);
        }
        let body = match Limited::new(body, max).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => return Err(Refusal::TooLarge),
            Err(_) => return Err(Refusal::UnreadableBody),
        };
        let received_at = Timestamp::now();
        let headers = &parts.headers;
        let path_and_query = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
        let twilio = |hook| {
            self.twilio.handle(
                hook,
                path_and_query,
                header(headers, "x-twilio-signature"),
                &body,
                received_at,
            )
        };
        let parsed = match route {
            Route::TwilioDial => twilio(Hook::DialAction),
            Route::TwilioVoiceStatus => twilio(Hook::VoiceStatus),
            Route::TwilioSms => twilio(Hook::Sms),
            Route::TwilioSmsStatus => twilio(Hook::SmsStatus),
            _ => match &self.telnyx {
                Some(telnyx) => telnyx.handle(
                    header(headers, "telnyx-signature-ed25519"),
                    header(headers, "telnyx-timestamp"),
                    &body,
                    received_at,
                ),
                None => Err(WebhookError::Forbidden("Telnyx is not configured")),
            },
        };
        if let Some(event) = parsed.map_err(Refusal::Webhook)? {
            self.accept(&event).await?;
        }
        Ok(self.reply(route))
    }

    /// Publishes an event unless it was published recently.
    async fn accept(&self, event: &Event) -> Result<(), Refusal> {
        if self.seen.contains(&event.id, Instant::now()) {
            self.metrics.duplicate_dropped(event);
            return Ok(());
        }
        match self.publisher.publish(event).await {
            Ok(()) => {
                self.seen.remember(event.id, Instant::now());
                Ok(())
            }
            Err(e) => {
                self.metrics
                    .publish_failed(event, e.failure(), &e.to_string());
                Err(Refusal::Unavailable(e))
            }
        }
    }

    fn reply(&self, route: Route) -> Response<Body> {
        let twiml = match route {
            Route::TwilioDial => self.dial_twiml.clone(),
            Route::Telnyx => return text(StatusCode::OK, Bytes::new()),
            _ => Bytes::from_static(EMPTY_TWIML.as_bytes()),
        };
        Response::builder()
            .header(CONTENT_TYPE, "text/xml")
            .body(Full::new(twiml))
            .expect("static response parts are valid")
    }

    async fn probe_kafka(self: Arc<Self>) {
        let interval = Duration::from_millis(self.settings.kafka.probe_interval_ms.max(100));
        loop {
            let publisher = self.publisher.clone();
            let up = tokio::task::spawn_blocking(move || publisher.probe_blocking(interval))
                .await
                .unwrap_or(false);
            self.metrics.kafka_reachable(up);
            tokio::time::sleep(interval).await;
        }
    }

    async fn sweep_seen(self: Arc<Self>) {
        let every = (self.seen.ttl() / 10).max(Duration::from_secs(1));
        loop {
            tokio::time::sleep(every).await;
            self.seen.sweep(Instant::now());
        }
    }
}

fn text(status: StatusCode, body: Bytes) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Full::new(body))
        .expect("static response parts are valid")
}
