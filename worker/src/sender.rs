//! The sender: drains the outbox to the carrier's SMS API.
//!
//! - Per sending number, a rate limit (default one text a second, a long code's limit) with a short
//!   queue: a text whose turn is further off than `max_queue_delay` goes back to the outbox until then.
//! - 429, 5xx, timeouts and connection errors are retried with exponential backoff and jitter;
//!   permanent refusals (Twilio 21211, 21610, 21614; Telnyx 40300 and other 4xx) are recorded and not
//!   retried, and an "unsubscribed recipient" refusal opts the caller out.
//! - Woken at once when the worker queues a text; polls as well, for texts queued by other workers.
//! - A text leased by a sender that died may already be at the carrier: for Twilio it is looked up in
//!   the account's message list before it is sent again (Telnyx has no such lookup: at-least-once).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use textback_schemas::{Carrier, PhoneNumber};
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;

use crate::store::{Claimed, Outgoing, Store};

/// Carrier error codes that mean the recipient unsubscribed: the caller is opted out.
pub const UNSUBSCRIBED: [&str; 2] = ["21610", "40300"];

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SenderSettings {
    /// Texts per second per sending number.
    pub per_number_rate: f64,
    /// A text whose turn is further off than this waits in the outbox instead of in memory.
    pub max_queue_delay_ms: u64,
    pub max_attempts: u32,
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    pub request_timeout_ms: u64,
    /// Texts sent at once.
    pub concurrency: usize,
    /// How often the outbox is checked when nothing wakes the sender.
    pub poll_interval_ms: u64,
    pub twilio: TwilioApi,
    pub telnyx: TelnyxApi,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TwilioApi {
    pub base_url: String,
    pub account_sid: String,
    pub auth_token: String,
    /// Where Twilio posts delivery reports (the gateway's /twilio/sms/status); empty for none.
    pub status_callback: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelnyxApi {
    pub base_url: String,
    pub api_key: String,
}

impl Default for SenderSettings {
    fn default() -> Self {
        SenderSettings {
            per_number_rate: 1.0,
            max_queue_delay_ms: 5_000,
            max_attempts: 10,
            backoff_base_ms: 500,
            backoff_max_ms: 60_000,
            request_timeout_ms: 10_000,
            concurrency: 64,
            poll_interval_ms: 500,
            twilio: TwilioApi::default(),
            telnyx: TelnyxApi::default(),
        }
    }
}

impl Default for TwilioApi {
    fn default() -> Self {
        TwilioApi {
            base_url: "https://api.twilio.com".into(),
            account_sid: String::new(),
            auth_token: String::new(),
            status_callback: String::new(),
        }
    }
}

impl Default for TelnyxApi {
    fn default() -> Self {
        TelnyxApi {
            base_url: "https://api.telnyx.com".into(),
            api_key: String::new(),
        }
    }
}

impl SenderSettings {
    pub fn validate(&self) -> Result<(), String> {
        if self.per_number_rate.is_nan() || self.per_number_rate <= 0.0 {
            return Err("sender.per_number_rate must be above 0".into());
        }
        if self.concurrency == 0 || self.max_attempts == 0 {
            return Err("sender.concurrency and sender.max_attempts must be above 0".into());
        }
        for url in [&self.twilio.base_url, &self.telnyx.base_url] {
            if !url.starts_with("http://") {
                return Err(format!(
                    "{url}: this build sends over plain http only (to the carrier simulator or a TLS-terminating proxy)"
                ));
            }
        }
        Ok(())
    }
}

/// What a carrier said to one text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// Accepted, with the carrier's message id.
    Accepted(String),
    /// Try again later (429, 5xx, timeout, connection error).
    Retry(String),
    /// Refused for good, with the carrier's error code.
    Permanent(String),
}

pub struct CarrierApi {
    client: Client<HttpConnector, Full<Bytes>>,
    settings: SenderSettings,
}

#[derive(Deserialize)]
struct TwilioMessage {
    sid: String,
}

#[derive(Deserialize)]
struct TwilioList {
    messages: Vec<TwilioListed>,
}

#[derive(Deserialize)]
struct TwilioListed {
    sid: String,
    body: String,
}

#[derive(Deserialize)]
struct TwilioError {
    code: serde_json::Value,
}

#[derive(Deserialize)]
struct TelnyxCreated {
    data: TelnyxData,
}

#[derive(Deserialize)]
struct TelnyxData {
    id: String,
}

#[derive(Deserialize)]
struct TelnyxErrors {
    errors: Vec<TwilioError>,
}

fn code_of(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl CarrierApi {
    pub fn new(settings: SenderSettings) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        CarrierApi { client, settings }
    }

    async fn call(&self, req: Request<Full<Bytes>>) -> Result<(StatusCode, Bytes), String> {
        let timeout = Duration::from_millis(self.settings.request_timeout_ms);
        let resp = tokio::time::timeout(timeout, self.client.request(req))
            .await
            .map_err(|_| "timeout".to_string())?
            .map_err(|e| format!("connection: {e}"))?;
        let status = resp.status();
        let body = tokio::time::timeout(timeout, resp.into_body().collect())
            .await
            .map_err(|_| "timeout reading the answer".to_string())?
            .map_err(|e| format!("reading the answer: {e}"))?
            .to_bytes();
        Ok((status, body))
    }

    fn twilio_auth(&self) -> String {
        let t = &self.settings.twilio;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", t.account_sid, t.auth_token))
        )
    }

    pub async fn send(&self, m: &Outgoing) -> SendOutcome {
        let result = match m.carrier {
            Carrier::Twilio => self.send_twilio(m).await,
            Carrier::Telnyx => self.send_telnyx(m).await,
        };
        result.unwrap_or_else(SendOutcome::Retry)
    }

    /// One request to a carrier API: method, URL, authorization, body and its content type.
    async fn request(
        &self,
        method: Method,
        url: String,
        auth: String,
        content_type: &str,
        body: String,
    ) -> Result<(StatusCode, Bytes), String> {
        let req = Request::builder()
            .method(method)
            .uri(url)
            .header("authorization", auth)
            .header("content-type", content_type)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        self.call(req).await
    }

    async fn send_twilio(&self, m: &Outgoing) -> Result<SendOutcome, String> {
        let t = &self.settings.twilio;
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            t.base_url, t.account_sid
        );
        let form = {
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.append_pair("To", m.to.as_str())
                .append_pair("From", m.from.as_str())
                .append_pair("Body", &m.body);
            if !t.status_callback.is_empty() {
                form.append_pair("StatusCallback", &t.status_callback);
            }
            form.finish()
        };
        let form_type = "application/x-www-form-urlencoded";
        let (status, body) = self
            .request(Method::POST, url, self.twilio_auth(), form_type, form)
            .await?;
        let id = |b: &[u8]| {
            serde_json::from_slice::<TwilioMessage>(b)
                .ok()
                .map(|m| m.sid)
        };
        let code = |b: &[u8]| {
            serde_json::from_slice::<TwilioError>(b)
                .ok()
                .map(|e| code_of(&e.code))
        };
        Ok(classify(status, &body, id, code))
    }

    async fn send_telnyx(&self, m: &Outgoing) -> Result<SendOutcome, String> {
        let t = &self.settings.telnyx;
        let body =
            serde_json::json!({"from": m.from.as_str(), "to": m.to.as_str(), "text": m.body})
                .to_string();
        let url = format!("{}/v2/messages", t.base_url);
        let auth = format!("Bearer {}", t.api_key);
        let (status, body) = self
            .request(Method::POST, url, auth, "application/json", body)
            .await?;
        let id = |b: &[u8]| {
            serde_json::from_slice::<TelnyxCreated>(b)
                .ok()
                .map(|c| c.data.id)
        };
        let code = |b: &[u8]| {
            serde_json::from_slice::<TelnyxErrors>(b)
                .ok()
                .and_then(|e| e.errors.first().map(|e| code_of(&e.code)))
        };
        Ok(classify(status, &body, id, code))
    }

    /// For a text that may already be at Twilio: its sid if Twilio has it.
    pub async fn find_sent(&self, m: &Outgoing) -> Result<Option<String>, String> {
        if m.carrier != Carrier::Twilio {
            return Ok(None);
        }
        let t = &self.settings.twilio;
        let date = m.queued_at.to_zoned(jiff::tz::TimeZone::UTC).date();
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("To", m.to.as_str())
            .append_pair("From", m.from.as_str())
            .append_pair("DateSent>", &date.to_string())
            .finish();
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Messages.json?{query}",
            t.base_url, t.account_sid
        );
        let (status, body) = self
            .request(
                Method::GET,
                url,
                self.twilio_auth(),
                "application/json",
                String::new(),
            )
            .await?;
        if !status.is_success() {
            return Err(format!("listing messages: {status}"));
        }
        let list: TwilioList =
            serde_json::from_slice(&body).map_err(|e| format!("listing messages: {e}"))?;
        Ok(list
            .messages
            .into_iter()
            .find(|x| x.body == m.body)
            .map(|x| x.sid))
    }
}

fn classify(
    status: StatusCode,
    body: &[u8],
    id: impl Fn(&[u8]) -> Option<String>,
    code: impl Fn(&[u8]) -> Option<String>,
) -> SendOutcome {
    if status.is_success() {
        return match id(body) {
            Some(id) => SendOutcome::Accepted(id),
            None => SendOutcome::Retry("accepted without a message id".into()),
        };
    }
    if status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
    {
        return SendOutcome::Retry(format!("carrier answered {status}"));
    }
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        // Our credentials, not the text: keep it and retry, loudly.
        tracing::error!(
            http.status = status.as_u16(),
            "carrier refused our credentials"
        );
        return SendOutcome::Retry(format!("carrier answered {status}"));
    }
    SendOutcome::Permanent(code(body).unwrap_or_else(|| status.as_u16().to_string()))
}

/// Exponential backoff with jitter: base·2^attempt, capped, then a random point in its upper half.
pub fn backoff(settings: &SenderSettings, attempt: u32) -> Duration {
    let exp = settings
        .backoff_base_ms
        .saturating_mul(1u64 << attempt.min(20))
        .min(settings.backoff_max_ms);
    let jitter = (uuid::Uuid::new_v4().as_u128() % (exp as u128 / 2 + 1)) as u64;
    Duration::from_millis(exp / 2 + jitter)
}

/// What the sender did, for tests and metrics.
pub trait SendObserver: Send + Sync + 'static {
    fn sent(&self, _m: &Outgoing, _accepted_at: Timestamp) {}
    fn failed(&self, _m: &Outgoing, _code: &str) {}
    fn retried(&self, _m: &Outgoing, _reason: &str) {}
}

/// Does nothing.
pub struct Quiet;
impl SendObserver for Quiet {}

/// Runs until `shutdown` resolves. `wake` is notified by the worker after it queues texts.
pub async fn run<S: Store + Clone>(
    store: S,
    api: Arc<CarrierApi>,
    wake: Arc<Notify>,
    observer: Arc<dyn SendObserver>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let settings = api.settings.clone();
    let interval = Duration::from_secs_f64(1.0 / settings.per_number_rate);
    let max_delay = Duration::from_millis(settings.max_queue_delay_ms);
    let lease = SignedDuration::from_millis(
        (settings.max_queue_delay_ms + 3 * settings.request_timeout_ms) as i64,
    );
    let permits = Arc::new(Semaphore::new(settings.concurrency));
    let mut next_slot: HashMap<PhoneNumber, Instant> = HashMap::new();
    tokio::pin!(shutdown);
    loop {
        let claimed = match store
            .claim_due(Timestamp::now(), settings.concurrency * 2, lease)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the outbox");
                Vec::new()
            }
        };
        let full_batch = claimed.len() == settings.concurrency * 2;
        let now = Instant::now();
        next_slot.retain(|_, at| *at > now);
        for c in claimed {
            let slot = next_slot
                .get(&c.message.from)
                .map_or(now, |at| (*at).max(now));
            if slot.duration_since(now) > max_delay {
                let later = Timestamp::now()
                    + SignedDuration::try_from(slot.duration_since(now)).unwrap_or_default();
                if let Err(e) = store.postpone(c.message.id, later).await {
                    tracing::warn!(error = %e, "cannot postpone a text");
                }
                continue;
            }
            next_slot.insert(c.message.from.clone(), slot + interval);
            let (store, api, observer, permits) = (
                store.clone(),
                api.clone(),
                observer.clone(),
                permits.clone(),
            );
            tokio::spawn(async move {
                // Wait for this number's turn first, then for a permit: a permit bounds the
                // requests in flight, not the texts waiting for their turn.
                tokio::time::sleep_until(slot).await;
                let Ok(_permit) = permits.acquire_owned().await else {
                    return;
                };
                deliver(&store, &api, observer.as_ref(), c).await;
            });
        }
        if full_batch {
            continue;
        }
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(Duration::from_millis(settings.poll_interval_ms)) => {}
            () = &mut shutdown => break,
        }
    }
    // Let texts in flight finish (bounded by the request timeout).
    let _ = tokio::time::timeout(
        Duration::from_millis(settings.request_timeout_ms + settings.max_queue_delay_ms),
        permits.acquire_many(settings.concurrency as u32),
    )
    .await;
}

async fn deliver<S: Store>(store: &S, api: &CarrierApi, observer: &dyn SendObserver, c: Claimed) {
    let m = &c.message;
    if c.maybe_sent {
        match api.find_sent(m).await {
            Ok(Some(sid)) => {
                tracing::info!(message.id = %m.id, "text found at the carrier after a restart; not sent again");
                if let Err(e) = store.mark_sent(m.id, &sid, Timestamp::now()).await {
                    tracing::warn!(error = %e, "cannot record a sent text");
                }
                return;
            }
            Ok(None) => {}
            Err(e) => {
                // Unknown: do not risk a duplicate now, look again later.
                let next = Timestamp::now()
                    + SignedDuration::try_from(backoff(&api.settings, c.attempts))
                        .unwrap_or_default();
                tracing::warn!(message.id = %m.id, error = %e, "cannot check whether a text was sent");
                let _ = store.postpone(m.id, next).await;
                return;
            }
        }
    }
    let outcome = api.send(m).await;
    let now = Timestamp::now();
    let recorded = match &outcome {
        SendOutcome::Accepted(id) => {
            observer.sent(m, now);
            store.mark_sent(m.id, id, now).await
        }
        SendOutcome::Retry(reason) if c.attempts + 1 < api.settings.max_attempts => {
            observer.retried(m, reason);
            tracing::info!(message.id = %m.id, attempt = c.attempts + 1, reason = %reason, "text will be retried");
            let wait =
                SignedDuration::try_from(backoff(&api.settings, c.attempts)).unwrap_or_default();
            store.mark_retry(m.id, now + wait).await
        }
        SendOutcome::Retry(reason) => {
            observer.failed(m, "retries_exhausted");
            tracing::warn!(message.id = %m.id, reason = %reason, "text given up after the last retry");
            store
                .mark_failed(m.id, "retries_exhausted", false, now)
                .await
        }
        SendOutcome::Permanent(code) => {
            observer.failed(m, code);
            let unsubscribed = UNSUBSCRIBED.contains(&code.as_str());
            tracing::info!(message.id = %m.id, error.code = %code, unsubscribed, "carrier refused a text for good");
            store.mark_failed(m.id, code, unsubscribed, now).await
        }
    };
    if let Err(e) = recorded {
        // The lease runs out and the text is claimed again (as maybe sent).
        tracing::warn!(message.id = %m.id, error = %e, "cannot record the outcome of a text");
    }
}
