//! A stand-in for the carriers' SMS APIs, for tests, the demo and load tests: it speaks the real
//! request and response shapes of Twilio (`POST /2010-04-01/Accounts/{sid}/Messages.json`, form body,
//! basic auth) and Telnyx (`POST /v2/messages`, JSON, bearer key), checks the credentials, records
//! every accepted text with the time it arrived, and can be told to answer 429, 500, slowly, or with a
//! permanent error.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use textback_schemas::Carrier;
use tokio::sync::Notify;

/// A text the simulator accepted.
#[derive(Debug, Clone)]
pub struct Received {
    pub carrier: Carrier,
    pub sid: String,
    pub from: String,
    pub to: String,
    pub body: String,
    pub at: Instant,
    pub at_wall: jiff::Timestamp,
}

/// How the simulator answers the next requests.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// 429 Too Many Requests.
    RateLimited,
    /// 500 Internal Server Error.
    ServerError,
    /// Answer normally, after this long.
    Slow(Duration),
    /// A permanent refusal with this carrier error code (Twilio 21610, Telnyx 40300, ...).
    Permanent(String),
}

#[derive(Default)]
struct Inner {
    received: Vec<Received>,
    faults: VecDeque<Fault>,
    requests: u64,
    next_sid: u64,
}

#[derive(Clone)]
pub struct Simulator {
    addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    arrived: Arc<Notify>,
    creds: Arc<Credentials>,
}

#[derive(Debug, Clone)]
pub struct Credentials {
    pub twilio_account_sid: String,
    pub twilio_auth_token: String,
    pub telnyx_api_key: String,
}

impl Default for Credentials {
    fn default() -> Self {
        Credentials {
            twilio_account_sid: "AC00000000000000000000000000000dev".into(),
            twilio_auth_token: "dev-twilio-auth-token".into(),
            telnyx_api_key: "KEYdev-telnyx-api-key".into(),
        }
    }
}

impl Simulator {
    /// Serves on `addr` (port 0 for any) until the runtime ends.
    pub async fn start(addr: SocketAddr, creds: Credentials) -> std::io::Result<Simulator> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let sim = Simulator {
            addr: listener.local_addr()?,
            inner: Arc::default(),
            arrived: Arc::new(Notify::new()),
            creds: Arc::new(creds),
        };
        let served = sim.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let sim = served.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let sim = sim.clone();
                        async move { Ok::<_, Infallible>(sim.answer(req).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(sim)
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn credentials(&self) -> &Credentials {
        &self.creds
    }

    /// Sender settings that text this simulator, with its credentials, for both carriers.
    pub fn sender_settings(&self) -> crate::sender::SenderSettings {
        use crate::sender::{SenderSettings, TelnyxApi, TwilioApi};
        SenderSettings {
            twilio: TwilioApi {
                base_url: self.url(),
                account_sid: self.creds.twilio_account_sid.clone(),
                auth_token: self.creds.twilio_auth_token.clone(),
                status_callback: String::new(),
            },
            telnyx: TelnyxApi {
                base_url: self.url(),
                api_key: self.creds.telnyx_api_key.clone(),
            },
            ..SenderSettings::default()
        }
    }

    /// The next `n` requests get `fault` (queued after faults already planned).
    pub fn fail_next(&self, n: usize, fault: Fault) {
        let mut inner = self.inner.lock().expect("simulator lock");
        inner.faults.extend(std::iter::repeat_n(fault, n));
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().expect("simulator lock").received.clone()
    }

    /// Every request, accepted or not.
    pub fn requests(&self) -> u64 {
        self.inner.lock().expect("simulator lock").requests
    }

    /// Waits until `done(received)` holds or `timeout` passes; returns whether it held.
    pub async fn wait_until(&self, timeout: Duration, done: impl Fn(&[Received]) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let arrived = self.arrived.notified();
            if done(&self.received()) {
                return true;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return done(&self.received());
            }
        }
    }

    async fn answer(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let path = req.uri().path().to_string();
        let query = req.uri().query().unwrap_or("").to_string();
        let is_get = req.method() == http::Method::GET;
        let auth = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = req
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let fault = {
            let mut inner = self.inner.lock().expect("simulator lock");
            inner.requests += 1;
            inner.faults.pop_front()
        };
        if let Some(Fault::Slow(d)) = &fault {
            tokio::time::sleep(*d).await;
        }
        let twilio_path = format!(
            "/2010-04-01/Accounts/{}/Messages.json",
            self.creds.twilio_account_sid
        );
        if path == twilio_path && is_get {
            self.twilio_list(&auth, &query)
        } else if path == twilio_path {
            self.twilio(&auth, &body, fault)
        } else if path == "/v2/messages" {
            self.telnyx(&auth, &body, fault)
        } else if path.starts_with("/2010-04-01/Accounts/") {
            twilio_error(
                StatusCode::NOT_FOUND,
                20404,
                "The requested resource was not found",
            )
        } else {
            json_response(
                StatusCode::NOT_FOUND,
                json!({"errors": [{"code": "10005", "title": "Resource not found"}]}),
            )
        }
    }

    fn record(&self, carrier: Carrier, from: &str, to: &str, body: &str) -> String {
        let mut inner = self.inner.lock().expect("simulator lock");
        inner.next_sid += 1;
        let sid = match carrier {
            Carrier::Twilio => format!("SM{:032x}", inner.next_sid),
            Carrier::Telnyx => format!("40317{:027x}", inner.next_sid),
        };
        inner.received.push(Received {
            carrier,
            sid: sid.clone(),
            from: from.into(),
            to: to.into(),
            body: body.into(),
            at: Instant::now(),
            at_wall: jiff::Timestamp::now(),
        });
        drop(inner);
        self.arrived.notify_waiters();
        sid
    }

    fn twilio_authorized(&self, auth: &str) -> bool {
        let expected = format!(
            "{}:{}",
            self.creds.twilio_account_sid, self.creds.twilio_auth_token
        );
        let given = auth
            .strip_prefix("Basic ")
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .and_then(|b| String::from_utf8(b).ok());
        given.as_deref() == Some(expected.as_str())
    }

    /// `GET .../Messages.json?To=&From=`: the account's messages, newest first.
    fn twilio_list(&self, auth: &str, query: &str) -> Response<Full<Bytes>> {
        if !self.twilio_authorized(auth) {
            return twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
        }
        let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let (to, from) = (get("To"), get("From"));
        let inner = self.inner.lock().expect("simulator lock");
        let messages: Vec<serde_json::Value> = inner
            .received
            .iter()
            .rev()
            .filter(|r| r.carrier == Carrier::Twilio)
            .filter(|r| to.as_deref().is_none_or(|t| t == r.to) && from.as_deref().is_none_or(|f| f == r.from))
            .map(|r| json!({"sid": r.sid, "to": r.to, "from": r.from, "body": r.body, "status": "sent"}))
            .collect();
        json_response(
            StatusCode::OK,
            json!({"messages": messages, "page": 0, "page_size": 50}),
        )
    }

    fn twilio(&self, auth: &str, body: &[u8], fault: Option<Fault>) -> Response<Full<Bytes>> {
        if !self.twilio_authorized(auth) {
            return twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
        }
        let form: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
        let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let (Some(to), Some(from), Some(text)) = (get("To"), get("From"), get("Body")) else {
            return twilio_error(StatusCode::BAD_REQUEST, 21602, "Message body is required.");
        };
        match fault {
            Some(Fault::RateLimited) => {
                return twilio_error(StatusCode::TOO_MANY_REQUESTS, 20429, "Too Many Requests")
            }
            Some(Fault::ServerError) => {
                return twilio_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    20500,
                    "Internal Server Error",
                )
            }
            Some(Fault::Permanent(code)) => {
                let code: u32 = code.parse().unwrap_or(21211);
                return twilio_error(
                    StatusCode::BAD_REQUEST,
                    code,
                    "Attempt to send to unsubscribed recipient",
                );
            }
            _ => {}
        }
        if !to.starts_with('+') {
            return twilio_error(
                StatusCode::BAD_REQUEST,
                21211,
                "The 'To' number is not a valid phone number.",
            );
        }
        let sid = self.record(Carrier::Twilio, from, to, text);
        json_response(
            StatusCode::CREATED,
            json!({"sid": sid, "account_sid": self.creds.twilio_account_sid, "from": from, "to": to, "body": text,
                   "status": "queued", "num_segments": "1", "direction": "outbound-api", "error_code": null,
                   "error_message": null, "api_version": "2010-04-01",
                   "uri": format!("/2010-04-01/Accounts/{}/Messages/{sid}.json", self.creds.twilio_account_sid)}),
        )
    }

    fn telnyx(&self, auth: &str, body: &[u8], fault: Option<Fault>) -> Response<Full<Bytes>> {
        if auth.strip_prefix("Bearer ") != Some(self.creds.telnyx_api_key.as_str()) {
            return telnyx_error(StatusCode::UNAUTHORIZED, "10009", "Authentication failed");
        }
        let Ok(req) = serde_json::from_slice::<serde_json::Value>(body) else {
            return telnyx_error(StatusCode::BAD_REQUEST, "10015", "Invalid JSON");
        };
        let field = |k: &str| req.get(k).and_then(|v| v.as_str()).map(str::to_string);
        let (Some(from), Some(to), Some(text)) = (field("from"), field("to"), field("text")) else {
            return telnyx_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "10002",
                "Missing required parameter",
            );
        };
        match fault {
            Some(Fault::RateLimited) => {
                return telnyx_error(StatusCode::TOO_MANY_REQUESTS, "10011", "Too many requests")
            }
            Some(Fault::ServerError) => {
                return telnyx_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "10007",
                    "Unexpected error",
                )
            }
            Some(Fault::Permanent(code)) => {
                return telnyx_error(
                    StatusCode::BAD_REQUEST,
                    &code,
                    "Blocked: recipient opted out",
                )
            }
            _ => {}
        }
        let id = self.record(Carrier::Telnyx, &from, &to, &text);
        json_response(
            StatusCode::OK,
            json!({"data": {"record_type": "message", "direction": "outbound", "id": id, "type": "SMS",
                   "from": {"phone_number": from}, "to": [{"phone_number": to, "status": "queued"}],
                   "text": text, "parts": 1, "errors": []}}),
        )
    }
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("static response parts are valid")
}

fn twilio_error(status: StatusCode, code: u32, message: &str) -> Response<Full<Bytes>> {
    json_response(
        status,
        json!({"code": code, "message": message, "more_info": format!("https://www.twilio.com/docs/errors/{code}"), "status": status.as_u16()}),
    )
}

fn telnyx_error(status: StatusCode, code: &str, title: &str) -> Response<Full<Bytes>> {
    json_response(
        status,
        json!({"errors": [{"code": code, "title": title, "detail": title}]}),
    )
}
