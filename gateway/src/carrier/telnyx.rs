//! Telnyx webhooks (API v2): JSON, signed with Ed25519.
//!
//! `telnyx-signature-ed25519` is the base64 signature of `"{telnyx-timestamp}|{raw body}"` under the
//! account's public key; a timestamp too far from the gateway's clock is refused, so a captured webhook
//! cannot be replayed later.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ed25519_dalek::{Signature, VerifyingKey};
use jiff::Timestamp;
use serde::Deserialize;
use textback_schemas::{
    Call, Carrier, Detail, Event, EventKind, InboundSms, MessageState, MessageStatus,
};

use super::{number, party, Parsed, Party, WebhookError};

/// `hangup_cause` values that mean nobody picked up.
const MISSED: [&str; 4] = ["timeout", "user_busy", "call_rejected", "originator_cancel"];

pub struct Telnyx {
    key: VerifyingKey,
    tolerance_secs: i64,
}

pub fn decode_public_key(b64: &str) -> Result<VerifyingKey, String> {
    let bytes = BASE64
        .decode(b64.trim())
        .map_err(|_| "not base64".to_string())?;
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| "an Ed25519 public key is 32 bytes".to_string())?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| "not a valid Ed25519 public key".to_string())
}

/// Signs as Telnyx does: for tests, benchmarks and load generators.
pub fn sign(key: &ed25519_dalek::SigningKey, timestamp: i64, body: &[u8]) -> String {
    use ed25519_dalek::Signer;
    BASE64.encode(
        key.sign(&signed_message(&timestamp.to_string(), body))
            .to_bytes(),
    )
}

fn signed_message(timestamp: &str, body: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(timestamp.len() + 1 + body.len());
    message.extend_from_slice(timestamp.as_bytes());
    message.push(b'|');
    message.extend_from_slice(body);
    message
}

#[derive(Deserialize)]
struct Envelope {
    data: Data,
}

#[derive(Deserialize)]
struct Data {
    event_type: String,
    #[serde(default)]
    occurred_at: Option<Timestamp>,
    payload: Payload,
}

/// The fields of `call.hangup`, `message.received` and `message.finalized` that the gateway reads.
#[derive(Deserialize)]
struct Payload {
    // calls
    call_session_id: Option<String>,
    call_control_id: Option<String>,
    connection_id: Option<String>,
    hangup_cause: Option<String>,
    start_time: Option<Timestamp>,
    end_time: Option<Timestamp>,
    // messages
    id: Option<String>,
    text: Option<String>,
    #[serde(default)]
    media: Vec<serde::de::IgnoredAny>,
    messaging_profile_id: Option<String>,
    #[serde(default)]
    errors: Vec<MessageError>,
    // both: a string on calls, an object (from) or a list (to) on messages
    from: Option<Endpoint>,
    to: Option<Recipients>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Endpoint {
    Number(String),
    Detailed { phone_number: String },
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Recipients {
    Number(String),
    List(Vec<Recipient>),
}

#[derive(Deserialize)]
struct Recipient {
    phone_number: String,
    #[serde(default)]
    status: Option<String>,
}

#[derive(Deserialize)]
struct MessageError {
    code: serde_json::Value,
}

impl Endpoint {
    fn number(&self) -> &str {
        match self {
            Endpoint::Number(n) | Endpoint::Detailed { phone_number: n } => n,
        }
    }
}

impl Recipients {
    fn first(&self) -> Option<(&str, Option<&str>)> {
        match self {
            Recipients::Number(n) => Some((n, None)),
            Recipients::List(list) => list
                .first()
                .map(|r| (r.phone_number.as_str(), r.status.as_deref())),
        }
    }
}

impl Telnyx {
    pub fn new(public_key_b64: &str, tolerance_secs: u64) -> Result<Self, String> {
        Ok(Telnyx {
            key: decode_public_key(public_key_b64)?,
            tolerance_secs: tolerance_secs as i64,
        })
    }

    /// Verifies and normalises one webhook; `signature` and `timestamp` are the two Telnyx headers.
    pub fn handle(
        &self,
        signature: Option<&[u8]>,
        timestamp: Option<&[u8]>,
        body: &[u8],
        received_at: Timestamp,
    ) -> Parsed {
        self.verify(signature, timestamp, body, received_at)?;
        normalise(body, received_at)
    }

    /// Checks the timestamp's freshness and the signature over `"{timestamp}|{body}"`.
    pub fn verify(
        &self,
        signature: Option<&[u8]>,
        timestamp: Option<&[u8]>,
        body: &[u8],
        received_at: Timestamp,
    ) -> Result<(), WebhookError> {
        let timestamp = timestamp.ok_or(WebhookError::Forbidden("missing telnyx-timestamp"))?;
        let timestamp = std::str::from_utf8(timestamp)
            .map_err(|_| WebhookError::Forbidden("bad telnyx-timestamp"))?;
        let sent: i64 = timestamp
            .parse()
            .map_err(|_| WebhookError::Forbidden("bad telnyx-timestamp"))?;
        if (received_at.as_second() - sent).abs() > self.tolerance_secs {
            return Err(WebhookError::Forbidden("stale telnyx-timestamp"));
        }
        let signature =
            signature.ok_or(WebhookError::Forbidden("missing telnyx-signature-ed25519"))?;
        let signature = BASE64
            .decode(signature)
            .ok()
            .and_then(|b| <[u8; 64]>::try_from(b).ok())
            .ok_or(WebhookError::Forbidden("bad telnyx-signature-ed25519"))?;
        self.key
            .verify_strict(
                &signed_message(timestamp, body),
                &Signature::from_bytes(&signature),
            )
            .map_err(|_| WebhookError::Forbidden("bad telnyx-signature-ed25519"))
    }
}

/// Turns a verified webhook body into at most one event.
pub fn normalise(body: &[u8], received_at: Timestamp) -> Parsed {
    let envelope: Envelope =
        serde_json::from_slice(body).map_err(|e| WebhookError::Malformed(format!("{e}")))?;
    let data = envelope.data;
    let p = data.payload;
    let occurred_at = data.occurred_at.unwrap_or(received_at);
    let malformed =
        |what: &str| WebhookError::Malformed(format!("{} without {what}", data.event_type));
    let from = p.from.as_ref().map(Endpoint::number);
    let to = p.to.as_ref().and_then(Recipients::first);
    let event = |kind,
                 carrier_id: &str,
                 status: &str,
                 account: Option<String>,
                 business,
                 caller,
                 detail| Event {
        id: Event::derive_id(Carrier::Telnyx, kind, carrier_id, status),
        carrier: Carrier::Telnyx,
        account: account.unwrap_or_default(),
        business_number: business,
        caller_number: caller,
        occurred_at,
        received_at,
        detail,
    };
    match data.event_type.as_str() {
        "call.hangup" => {
            let call_id = p
                .call_session_id
                .or(p.call_control_id)
                .ok_or_else(|| malformed("call_session_id"))?;
            let cause = p.hangup_cause.ok_or_else(|| malformed("hangup_cause"))?;
            let business = number("to", to.map(|(n, _)| n))?;
            let Party::Number(caller) = party("from", from)? else {
                return Ok(None);
            };
            let duration_secs = match (p.start_time, p.end_time) {
                (Some(s), Some(e)) => e.duration_since(s).as_secs().max(0) as u32,
                _ => 0,
            };
            let call = Call {
                call_id: call_id.clone(),
                call_status: cause.clone(),
                duration_secs,
            };
            let (kind, detail) = if MISSED.contains(&cause.as_str()) {
                (EventKind::MissedCall, Detail::MissedCall(call))
            } else {
                (EventKind::CallAnswered, Detail::CallAnswered(call))
            };
            Ok(Some(event(
                kind,
                &call_id,
                &cause,
                p.connection_id,
                business,
                caller,
                detail,
            )))
        }
        "message.received" => {
            let message_id = p.id.ok_or_else(|| malformed("id"))?;
            let caller = number("from", from)?;
            let business = number("to", to.map(|(n, _)| n))?;
            let detail = Detail::InboundSms(InboundSms {
                message_id: message_id.clone(),
                body: p.text.unwrap_or_default(),
                media_count: p.media.len() as u32,
            });
            Ok(Some(event(
                EventKind::InboundSms,
                &message_id,
                "",
                p.messaging_profile_id,
                business,
                caller,
                detail,
            )))
        }
        "message.finalized" => {
            let message_id = p.id.ok_or_else(|| malformed("id"))?;
            let business = number("from", from)?;
            let (to_number, carrier_status) = to.ok_or_else(|| malformed("to"))?;
            let caller = number("to", Some(to_number))?;
            let carrier_status = carrier_status.unwrap_or("unknown").to_owned();
            let status = match carrier_status.as_str() {
                "delivered" => MessageState::Delivered,
                "sent" | "delivery_unconfirmed" => MessageState::Sent,
                "queued" | "sending" => MessageState::Queued,
                "delivery_failed" => MessageState::Undelivered,
                _ => MessageState::Failed,
            };
            let error_code = p.errors.first().map(|e| match &e.code {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            });
            let detail = Detail::MessageStatus(MessageStatus {
                message_id: message_id.clone(),
                status,
                carrier_status: carrier_status.clone(),
                error_code,
            });
            Ok(Some(event(
                EventKind::MessageStatus,
                &message_id,
                &carrier_status,
                p.messaging_profile_id,
                business,
                caller,
                detail,
            )))
        }
        // call.initiated, call.answered, message.sent, ...: acknowledged, nothing to do.
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use serde_json::json;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32])
    }

    fn telnyx() -> Telnyx {
        Telnyx::new(&BASE64.encode(key().verifying_key().to_bytes()), 300).unwrap()
    }

    fn now() -> Timestamp {
        "2026-06-09T14:05:00Z".parse().unwrap()
    }

    fn hangup(cause: &str) -> Vec<u8> {
        json!({"data": {"event_type": "call.hangup", "id": "e1", "occurred_at": "2026-06-09T14:04:59.5Z",
            "payload": {"call_control_id": "v3:abc", "call_session_id": "sess-1", "connection_id": "conn-1",
                "from": "+16175550123", "to": "+16175550100", "hangup_cause": cause,
                "start_time": "2026-06-09T14:04:30Z", "end_time": "2026-06-09T14:04:59Z"}},
            "meta": {"attempt": 1}})
        .to_string()
        .into_bytes()
    }

    fn handle(body: &[u8], ts: i64) -> Parsed {
        let sig = sign(&key(), ts, body);
        telnyx().handle(
            Some(sig.as_bytes()),
            Some(ts.to_string().as_bytes()),
            body,
            now(),
        )
    }

    #[test]
    fn hangup_causes() {
        let ts = now().as_second();
        for (cause, kind) in [
            ("timeout", EventKind::MissedCall),
            ("user_busy", EventKind::MissedCall),
            ("call_rejected", EventKind::MissedCall),
            ("originator_cancel", EventKind::MissedCall),
            ("normal_clearing", EventKind::CallAnswered),
        ] {
            let e = handle(&hangup(cause), ts).unwrap().unwrap();
            assert_eq!(e.kind(), kind, "{cause}");
            assert_eq!(e.caller_number.as_str(), "+16175550123");
            assert_eq!(e.account, "conn-1");
            assert_eq!(
                e.id,
                Event::derive_id(Carrier::Telnyx, kind, "sess-1", cause)
            );
        }
    }

    #[test]
    fn refuses_forged_stale_and_unsigned() {
        let body = hangup("timeout");
        let ts = now().as_second();
        let t = telnyx();
        let sig = sign(&key(), ts, &body);
        let forged = sign(&SigningKey::from_bytes(&[8u8; 32]), ts, &body);
        assert_eq!(
            t.handle(
                Some(forged.as_bytes()),
                Some(ts.to_string().as_bytes()),
                &body,
                now()
            )
            .unwrap_err(),
            WebhookError::Forbidden("bad telnyx-signature-ed25519")
        );
        // Signed correctly but 301 s old: a replay.
        let old = ts - 301;
        let stale = sign(&key(), old, &body);
        assert_eq!(
            t.handle(
                Some(stale.as_bytes()),
                Some(old.to_string().as_bytes()),
                &body,
                now()
            )
            .unwrap_err(),
            WebhookError::Forbidden("stale telnyx-timestamp")
        );
        // 299 s old is still fine.
        assert!(handle(&body, ts - 299).is_ok());
        // The timestamp header is part of what is signed.
        assert!(t
            .handle(
                Some(sig.as_bytes()),
                Some((ts + 1).to_string().as_bytes()),
                &body,
                now()
            )
            .is_err());
        assert!(t
            .handle(None, Some(ts.to_string().as_bytes()), &body, now())
            .is_err());
        assert!(t.handle(Some(sig.as_bytes()), None, &body, now()).is_err());
    }

    #[test]
    fn malformed_json_is_400_after_a_valid_signature() {
        let ts = now().as_second();
        assert!(matches!(
            handle(b"{\"data\": ", ts),
            Err(WebhookError::Malformed(_))
        ));
        let no_cause = json!({"data": {"event_type": "call.hangup", "payload": {"call_session_id": "s", "from": "+16175550123", "to": "+16175550100"}}});
        let err = handle(no_cause.to_string().as_bytes(), ts).unwrap_err();
        assert_eq!(
            err,
            WebhookError::Malformed("call.hangup without hangup_cause".into())
        );
    }

    #[test]
    fn messages() {
        let ts = now().as_second();
        let received = json!({"data": {"event_type": "message.received", "id": "e2", "occurred_at": "2026-06-09T14:05:00Z",
            "payload": {"id": "msg-1", "direction": "inbound", "text": "tmrw at 3?", "media": [],
                "messaging_profile_id": "mp-1", "type": "SMS",
                "from": {"phone_number": "+16175550123", "carrier": "T-Mobile"},
                "to": [{"phone_number": "+16175550100", "status": "webhook_delivered"}]}}});
        let e = handle(received.to_string().as_bytes(), ts)
            .unwrap()
            .unwrap();
        assert_eq!(
            e.detail,
            Detail::InboundSms(InboundSms {
                message_id: "msg-1".into(),
                body: "tmrw at 3?".into(),
                media_count: 0
            })
        );
        assert_eq!(e.account, "mp-1");

        let finalized = json!({"data": {"event_type": "message.finalized",
            "payload": {"id": "msg-2", "direction": "outbound", "messaging_profile_id": "mp-1",
                "from": {"phone_number": "+16175550100"},
                "to": [{"phone_number": "+16175550123", "status": "delivery_failed"}],
                "errors": [{"code": "40300", "title": "Blocked as spam"}]}}});
        let e = handle(finalized.to_string().as_bytes(), ts)
            .unwrap()
            .unwrap();
        assert_eq!(e.caller_number.as_str(), "+16175550123");
        let Detail::MessageStatus(s) = e.detail else {
            panic!()
        };
        assert_eq!(
            (s.status, s.error_code.as_deref()),
            (MessageState::Undelivered, Some("40300"))
        );

        let other = json!({"data": {"event_type": "call.initiated", "payload": {}}});
        assert_eq!(handle(other.to_string().as_bytes(), ts), Ok(None));
    }
}
