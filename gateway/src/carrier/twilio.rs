//! Twilio webhooks: form-encoded, signed with `X-Twilio-Signature`.
//!
//! The signature is HMAC-SHA1, keyed by the auth token of the sending account, over the full URL Twilio
//! requested followed by every POST parameter as name then value, sorted by name; base64. The URL is
//! the configured public base URL plus the path and query the gateway received, because the gateway
//! sits behind a proxy that changes scheme, host and port.

use std::borrow::Cow;
use std::collections::HashMap;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use jiff::Timestamp;
use sha1::Sha1;
use textback_schemas::{
    Call, Carrier, Detail, Event, EventKind, InboundSms, MessageState, MessageStatus,
};

use super::{number, party, required, Parsed, Party, WebhookError};

/// The four Twilio callbacks the gateway serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    /// The `<Dial action="...">` callback: `DialCallStatus` says whether the forwarded call was answered.
    DialAction,
    /// The voice status callback: `CallStatus`.
    VoiceStatus,
    /// An inbound SMS to the business's number.
    Sms,
    /// A status callback for an SMS the worker sent.
    SmsStatus,
}

/// Call statuses that mean nobody picked up.
const MISSED: [&str; 4] = ["no-answer", "busy", "failed", "canceled"];

pub struct Twilio {
    public_base_url: String,
    auth_tokens: HashMap<String, Vec<u8>>,
}

/// The decoded form body.
pub struct Form<'a> {
    pairs: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl<'a> Form<'a> {
    pub fn parse(body: &'a [u8]) -> Self {
        Form {
            pairs: form_urlencoded::parse(body).collect(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_ref())
    }
}

/// The signature Twilio sends for `url` and `params`, base64.
pub fn signature<'k, 'v>(
    auth_token: &[u8],
    url: &str,
    params: impl IntoIterator<Item = (&'k str, &'v str)>,
) -> String {
    BASE64.encode(mac(auth_token, url, params).finalize().into_bytes())
}

fn mac<'k, 'v>(
    auth_token: &[u8],
    url: &str,
    params: impl IntoIterator<Item = (&'k str, &'v str)>,
) -> Hmac<Sha1> {
    let mut sorted: Vec<(&str, &str)> = params.into_iter().collect();
    // Twilio sorts by name, then by value for repeated names, and counts a repeated pair once.
    sorted.sort_unstable();
    sorted.dedup();
    let mut mac = Hmac::<Sha1>::new_from_slice(auth_token).expect("HMAC takes a key of any length");
    mac.update(url.as_bytes());
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    mac
}

impl Twilio {
    pub fn new<'a>(
        public_base_url: &str,
        auth_tokens: impl IntoIterator<Item = (&'a String, &'a String)>,
    ) -> Self {
        Twilio {
            public_base_url: public_base_url.to_owned(),
            auth_tokens: auth_tokens
                .into_iter()
                .map(|(sid, t)| (sid.clone(), t.as_bytes().to_vec()))
                .collect(),
        }
    }

    /// Verifies and normalises one webhook. `path_and_query` is what the gateway received; `signature`
    /// the `X-Twilio-Signature` header.
    pub fn handle(
        &self,
        hook: Hook,
        path_and_query: &str,
        signature: Option<&[u8]>,
        body: &[u8],
        received_at: Timestamp,
    ) -> Parsed {
        let form = Form::parse(body);
        let account = required("AccountSid", form.get("AccountSid"))?;
        let token = self
            .auth_tokens
            .get(account)
            .ok_or(WebhookError::Forbidden("unknown Twilio account"))?;
        let given = signature.ok_or(WebhookError::Forbidden("missing X-Twilio-Signature"))?;
        let given = BASE64
            .decode(given)
            .map_err(|_| WebhookError::Forbidden("bad X-Twilio-Signature"))?;
        let mut url = String::with_capacity(self.public_base_url.len() + path_and_query.len());
        url.push_str(&self.public_base_url);
        url.push_str(path_and_query);
        let params = form.pairs.iter().map(|(k, v)| (k.as_ref(), v.as_ref()));
        mac(token, &url, params)
            .verify_slice(&given)
            .map_err(|_| WebhookError::Forbidden("bad X-Twilio-Signature"))?;
        normalise(hook, &form, account, received_at)
    }
}

/// Turns a verified webhook into at most one event.
pub fn normalise(hook: Hook, form: &Form<'_>, account: &str, received_at: Timestamp) -> Parsed {
    let occurred_at = form
        .get("Timestamp")
        .and_then(|t| jiff::fmt::rfc2822::parse(t).ok())
        .map(|z| z.timestamp())
        .unwrap_or(received_at);
    let envelope =
        |kind: EventKind, carrier_id: &str, status: &str, business, caller, detail| Event {
            id: Event::derive_id(Carrier::Twilio, kind, carrier_id, status),
            carrier: Carrier::Twilio,
            account: account.to_owned(),
            business_number: business,
            caller_number: caller,
            occurred_at,
            received_at,
            detail,
        };
    match hook {
        Hook::DialAction | Hook::VoiceStatus => {
            let (status_field, duration_field) = match hook {
                Hook::DialAction => ("DialCallStatus", "DialCallDuration"),
                _ => ("CallStatus", "CallDuration"),
            };
            let call_id = required("CallSid", form.get("CallSid"))?;
            let status = required(status_field, form.get(status_field))?;
            let business = number("To", form.get("To"))?;
            let Party::Number(caller) = party("From", form.get("From"))? else {
                return Ok(None);
            };
            let duration_secs = match form.get(duration_field) {
                None | Some("") => 0,
                Some(d) => d.parse().map_err(|_| {
                    WebhookError::Malformed(format!("{duration_field} is not a number"))
                })?,
            };
            let call = Call {
                call_id: call_id.to_owned(),
                call_status: status.to_owned(),
                duration_secs,
            };
            let (kind, detail) = if MISSED.contains(&status) {
                (EventKind::MissedCall, Detail::MissedCall(call))
            } else if status == "completed" || status == "answered" {
                (EventKind::CallAnswered, Detail::CallAnswered(call))
            } else {
                // queued, ringing, in-progress: not an outcome yet.
                return Ok(None);
            };
            Ok(Some(envelope(
                kind, call_id, status, business, caller, detail,
            )))
        }
        Hook::Sms => {
            let message_id = required("MessageSid", form.get("MessageSid").or(form.get("SmsSid")))?;
            let business = number("To", form.get("To"))?;
            let caller = number("From", form.get("From"))?;
            let body = form.get("Body").unwrap_or_default();
            let media_count = form
                .get("NumMedia")
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            let detail = Detail::InboundSms(InboundSms {
                message_id: message_id.to_owned(),
                body: body.to_owned(),
                media_count,
            });
            Ok(Some(envelope(
                EventKind::InboundSms,
                message_id,
                "",
                business,
                caller,
                detail,
            )))
        }
        Hook::SmsStatus => {
            let message_id = required("MessageSid", form.get("MessageSid").or(form.get("SmsSid")))?;
            let carrier_status = required(
                "MessageStatus",
                form.get("MessageStatus").or(form.get("SmsStatus")),
            )?;
            let status = match carrier_status {
                "accepted" | "scheduled" | "queued" | "sending" => MessageState::Queued,
                "sent" => MessageState::Sent,
                "delivered" | "read" => MessageState::Delivered,
                "undelivered" => MessageState::Undelivered,
                "failed" | "canceled" => MessageState::Failed,
                // receiving / received belong to inbound messages.
                _ => return Ok(None),
            };
            // An outgoing message: the business sent it, the caller receives it.
            let business = number("From", form.get("From"))?;
            let caller = number("To", form.get("To"))?;
            let error_code = form
                .get("ErrorCode")
                .filter(|c| !c.is_empty() && *c != "0")
                .map(str::to_owned);
            let detail = Detail::MessageStatus(MessageStatus {
                message_id: message_id.to_owned(),
                status,
                carrier_status: carrier_status.to_owned(),
                error_code,
            });
            Ok(Some(envelope(
                EventKind::MessageStatus,
                message_id,
                carrier_status,
                business,
                caller,
                detail,
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vector from twilio-python's test suite (tests/unit/test_request_validator.py).
    #[test]
    fn official_signature_vector() {
        let params = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ];
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(
            signature(b"12345", url, params),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
        // Order of the parameters as sent does not matter; their values do.
        let mut reversed = params;
        reversed.reverse();
        assert_eq!(
            signature(b"12345", url, reversed),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
        let mut changed = params;
        changed[2].1 = "1235";
        assert_ne!(
            signature(b"12345", url, changed),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
    }

    const SID: &str = "AC00000000000000000000000000000001";

    fn gateway() -> Twilio {
        let tokens = [(SID.to_string(), "secret-token".to_string())];
        Twilio::new(
            "https://hooks.example.com",
            tokens.iter().map(|(a, b)| (a, b)),
        )
    }

    fn signed(path: &str, params: &[(&str, &str)]) -> (Vec<u8>, String) {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        let sig = signature(
            b"secret-token",
            &format!("https://hooks.example.com{path}"),
            params.iter().copied(),
        );
        (body.into_bytes(), sig)
    }

    fn now() -> Timestamp {
        "2026-06-09T14:05:00Z".parse().unwrap()
    }

    #[test]
    fn missed_call_status_callback_becomes_missed_call() {
        let params = [
            ("AccountSid", SID),
            ("CallSid", "CA42"),
            ("CallStatus", "no-answer"),
            ("From", "+16175550123"),
            ("To", "+16175550100"),
            ("Timestamp", "Tue, 09 Jun 2026 14:04:58 +0000"),
        ];
        let (body, sig) = signed("/twilio/voice/status", &params);
        let event = gateway()
            .handle(
                Hook::VoiceStatus,
                "/twilio/voice/status",
                Some(sig.as_bytes()),
                &body,
                now(),
            )
            .unwrap()
            .unwrap();
        assert_eq!(event.kind(), EventKind::MissedCall);
        assert_eq!(event.caller_number.as_str(), "+16175550123");
        assert_eq!(event.business_number.as_str(), "+16175550100");
        assert_eq!(
            event.occurred_at,
            "2026-06-09T14:04:58Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!(
            event.id,
            Event::derive_id(Carrier::Twilio, EventKind::MissedCall, "CA42", "no-answer")
        );
    }

    #[test]
    fn dial_action_statuses() {
        for (status, kind) in [
            ("no-answer", Some(EventKind::MissedCall)),
            ("busy", Some(EventKind::MissedCall)),
            ("failed", Some(EventKind::MissedCall)),
            ("canceled", Some(EventKind::MissedCall)),
            ("completed", Some(EventKind::CallAnswered)),
            ("answered", Some(EventKind::CallAnswered)),
            ("ringing", None),
        ] {
            let params = [
                ("AccountSid", SID),
                ("CallSid", "CA1"),
                ("DialCallStatus", status),
                ("From", "+16175550123"),
                ("To", "+16175550100"),
            ];
            let (body, sig) = signed("/twilio/voice/dial?b=1", &params);
            let got = gateway().handle(
                Hook::DialAction,
                "/twilio/voice/dial?b=1",
                Some(sig.as_bytes()),
                &body,
                now(),
            );
            assert_eq!(got.unwrap().map(|e| e.kind()), kind, "{status}");
        }
    }

    #[test]
    fn refuses_forged_unknown_and_unsigned() {
        let params = [
            ("AccountSid", SID),
            ("CallSid", "CA1"),
            ("CallStatus", "busy"),
            ("From", "+16175550123"),
            ("To", "+16175550100"),
        ];
        let (body, sig) = signed("/twilio/voice/status", &params);
        let gw = gateway();
        // Signed for another path (the URL is part of what is signed).
        let err = gw.handle(
            Hook::VoiceStatus,
            "/twilio/voice/other",
            Some(sig.as_bytes()),
            &body,
            now(),
        );
        assert_eq!(
            err.unwrap_err(),
            WebhookError::Forbidden("bad X-Twilio-Signature")
        );
        // Body changed after signing.
        let tampered = String::from_utf8(body.clone())
            .unwrap()
            .replace("busy", "completed");
        let err = gw.handle(
            Hook::VoiceStatus,
            "/twilio/voice/status",
            Some(sig.as_bytes()),
            tampered.as_bytes(),
            now(),
        );
        assert_eq!(
            err.unwrap_err(),
            WebhookError::Forbidden("bad X-Twilio-Signature")
        );
        assert_eq!(
            gw.handle(
                Hook::VoiceStatus,
                "/twilio/voice/status",
                None,
                &body,
                now()
            )
            .unwrap_err(),
            WebhookError::Forbidden("missing X-Twilio-Signature")
        );
        let other = String::from_utf8(body).unwrap().replace(SID, "AC99");
        assert_eq!(
            gw.handle(
                Hook::VoiceStatus,
                "/twilio/voice/status",
                Some(sig.as_bytes()),
                other.as_bytes(),
                now()
            )
            .unwrap_err(),
            WebhookError::Forbidden("unknown Twilio account")
        );
    }

    #[test]
    fn malformed_fields_are_400_after_a_valid_signature() {
        let params = [
            ("AccountSid", SID),
            ("CallSid", "CA1"),
            ("CallStatus", "busy"),
            ("From", "+16175550123"),
            ("To", "not-a-number"),
        ];
        let (body, sig) = signed("/twilio/voice/status", &params);
        let err = gateway().handle(
            Hook::VoiceStatus,
            "/twilio/voice/status",
            Some(sig.as_bytes()),
            &body,
            now(),
        );
        assert!(matches!(err, Err(WebhookError::Malformed(m)) if m.contains("To")));
        let err = gateway().handle(
            Hook::Sms,
            "/twilio/sms",
            Some(b"x"),
            b"no account here",
            now(),
        );
        assert!(matches!(err, Err(WebhookError::Malformed(m)) if m.contains("AccountSid")));
    }

    #[test]
    fn hidden_caller_is_accepted_without_an_event() {
        let params = [
            ("AccountSid", SID),
            ("CallSid", "CA1"),
            ("CallStatus", "no-answer"),
            ("From", "anonymous"),
            ("To", "+16175550100"),
        ];
        let (body, sig) = signed("/twilio/voice/status", &params);
        assert_eq!(
            gateway().handle(
                Hook::VoiceStatus,
                "/twilio/voice/status",
                Some(sig.as_bytes()),
                &body,
                now()
            ),
            Ok(None)
        );
    }

    #[test]
    fn inbound_sms_and_status() {
        let params = [
            ("AccountSid", SID),
            ("MessageSid", "SM1"),
            ("Body", "haircut tomorrow at 2?"),
            ("NumMedia", "0"),
            ("From", "+16175550123"),
            ("To", "+16175550100"),
        ];
        let (body, sig) = signed("/twilio/sms", &params);
        let e = gateway()
            .handle(Hook::Sms, "/twilio/sms", Some(sig.as_bytes()), &body, now())
            .unwrap()
            .unwrap();
        assert_eq!(
            e.detail,
            Detail::InboundSms(InboundSms {
                message_id: "SM1".into(),
                body: "haircut tomorrow at 2?".into(),
                media_count: 0
            })
        );

        let params = [
            ("AccountSid", SID),
            ("MessageSid", "SM9"),
            ("MessageStatus", "undelivered"),
            ("ErrorCode", "30003"),
            ("From", "+16175550100"),
            ("To", "+16175550123"),
        ];
        let (body, sig) = signed("/twilio/sms/status", &params);
        let e = gateway()
            .handle(
                Hook::SmsStatus,
                "/twilio/sms/status",
                Some(sig.as_bytes()),
                &body,
                now(),
            )
            .unwrap()
            .unwrap();
        assert_eq!(e.caller_number.as_str(), "+16175550123");
        let Detail::MessageStatus(s) = e.detail else {
            panic!("not a status")
        };
        assert_eq!(
            (s.status, s.error_code.as_deref()),
            (MessageState::Undelivered, Some("30003"))
        );
    }
}
