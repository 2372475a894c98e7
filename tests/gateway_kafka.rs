//! The gateway against real Kafka: signed webhooks become exactly one event on the topic; forged,
//! stale, malformed and oversized ones get their 4xx and publish nothing.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use textback_gateway::AckMode;
use textback_schemas::{Detail, EventKind, MessageState};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CALLER: &str = "+16175550123";

#[tokio::test]
async fn twilio_missed_call_sent_five_times_is_one_event() {
    let topic = fresh_topic("twilio_missed").await;
    let gw = start(settings(&topic, AckMode::Durable)).await;
    let params = [
        ("CallSid", "CA100"),
        ("CallStatus", "no-answer"),
        ("From", CALLER),
        ("To", BUSINESS),
    ];
    for _ in 0..5 {
        let reply = post_twilio(gw.addr, "/twilio/voice/status", &params).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.content_type, "text/xml");
        assert!(reply.body.contains("<Response/>"), "{}", reply.body);
    }
    assert_eq!(gw.gateway.metrics().duplicates(), 4);
    gw.stop().await;
    let events = read_topic(&topic);
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(e.kind(), EventKind::MissedCall);
    assert_eq!(
        (e.caller_number.as_str(), e.business_number.as_str()),
        (CALLER, BUSINESS)
    );
    assert_eq!(e.account, TWILIO_SID);
}

#[tokio::test]
async fn twilio_dial_action_answers_twiml_that_speaks_and_hangs_up() {
    let topic = fresh_topic("twilio_dial").await;
    let gw = start(settings(&topic, AckMode::Durable)).await;
    let params = [
        ("CallSid", "CA200"),
        ("DialCallStatus", "busy"),
        ("From", CALLER),
        ("To", BUSINESS),
    ];
    let reply = post_twilio(gw.addr, "/twilio/voice/dial", &params).await;
    assert_eq!(
        (reply.status, reply.content_type.as_str()),
        (200, "text/xml")
    );
    assert!(
        reply.body.contains("<Say>Sorry we missed your call."),
        "{}",
        reply.body
    );
    assert!(
        reply.body.ends_with("<Hangup/></Response>"),
        "{}",
        reply.body
    );
    gw.stop().await;
    let events = read_topic(&topic);
    assert_eq!(
        events.iter().map(|e| e.kind()).collect::<Vec<_>>(),
        [EventKind::MissedCall]
    );
}

#[tokio::test]
async fn telnyx_hangup_timeout_sent_five_times_is_one_event() {
    let topic = fresh_topic("telnyx_missed").await;
    let gw = start(settings(&topic, AckMode::Durable)).await;
    let hook = json!({"data": {"event_type": "call.hangup", "id": "evt-1", "record_type": "event",
        "occurred_at": "2026-06-09T14:04:59Z",
        "payload": {"call_control_id": "v3:ctl", "call_session_id": "sess-77", "connection_id": "conn-9",
            "from": CALLER, "to": BUSINESS, "hangup_cause": "timeout", "hangup_source": "callee"}},
        "meta": {"attempt": 1, "delivered_to": "https://hooks.textback.test/telnyx"}});
    for _ in 0..5 {
        let reply = post_telnyx(gw.addr, &hook).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    gw.stop().await;
    let events = read_topic(&topic);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].kind(), EventKind::MissedCall);
    assert_eq!(events[0].caller_number.as_str(), CALLER);
}

#[tokio::test]
async fn inbound_sms_and_status_callbacks_from_both_carriers() {
    let topic = fresh_topic("messages").await;
    let gw = start(settings(&topic, AckMode::Durable)).await;
    let twilio_sms = [
        ("MessageSid", "SM1"),
        ("Body", "haircut tmrw at 2?"),
        ("NumMedia", "0"),
        ("From", CALLER),
        ("To", BUSINESS),
    ];
    let twilio_status = [
        ("MessageSid", "SM2"),
        ("MessageStatus", "delivered"),
        ("From", BUSINESS),
        ("To", CALLER),
    ];
    let telnyx_sms = json!({"data": {"event_type": "message.received", "id": "evt-2",
        "payload": {"id": "msg-3", "text": "yes 2pm", "media": [], "messaging_profile_id": "mp-1",
            "from": {"phone_number": CALLER}, "to": [{"phone_number": BUSINESS, "status": "webhook_delivered"}]}}});
    let telnyx_status = json!({"data": {"event_type": "message.finalized", "id": "evt-3",
        "payload": {"id": "msg-4", "messaging_profile_id": "mp-1", "from": {"phone_number": BUSINESS},
            "to": [{"phone_number": CALLER, "status": "delivered"}], "errors": []}}});
    for _ in 0..5 {
        assert_eq!(
            post_twilio(gw.addr, "/twilio/sms", &twilio_sms)
                .await
                .status,
            200
        );
        assert_eq!(
            post_twilio(gw.addr, "/twilio/sms/status", &twilio_status)
                .await
                .status,
            200
        );
        assert_eq!(post_telnyx(gw.addr, &telnyx_sms).await.status, 200);
        assert_eq!(post_telnyx(gw.addr, &telnyx_status).await.status, 200);
    }
    gw.stop().await;
    let events = read_topic(&topic);
    assert_eq!(events.len(), 4, "{events:?}");
    let by_id = |id: &str| {
        events
            .iter()
            .find(|e| match &e.detail {
                Detail::InboundSms(m) => m.message_id == id,
                Detail::MessageStatus(m) => m.message_id == id,
                _ => false,
            })
            .unwrap_or_else(|| panic!("no event for {id}: {events:?}"))
    };
    for (id, kind) in [
        ("SM1", EventKind::InboundSms),
        ("SM2", EventKind::MessageStatus),
        ("msg-3", EventKind::InboundSms),
        ("msg-4", EventKind::MessageStatus),
    ] {
        let e = by_id(id);
        assert_eq!(
            (
                e.kind(),
                e.caller_number.as_str(),
                e.business_number.as_str()
            ),
            (kind, CALLER, BUSINESS),
            "{id}"
        );
    }
    match &by_id("SM1").detail {
        Detail::InboundSms(m) => assert_eq!(m.body, "haircut tmrw at 2?"),
        other => panic!("{other:?}"),
    }
    match &by_id("msg-4").detail {
        Detail::MessageStatus(s) => assert_eq!(s.status, MessageState::Delivered),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn bad_input_gets_its_4xx_and_publishes_nothing() {
    let topic = fresh_topic("bad_input").await;
    let mut s = settings(&topic, AckMode::Durable);
    s.header_read_timeout_ms = 300;
    let gw = start(s).await;
    let addr = gw.addr;
    let missed = [
        ("CallSid", "CA300"),
        ("CallStatus", "no-answer"),
        ("From", CALLER),
        ("To", BUSINESS),
    ];

    // Forged Twilio signature: signed with another token.
    let (mut headers, body) = twilio_request("/twilio/voice/status", &missed);
    headers[1].1 = textback_gateway::carrier::twilio::signature(
        b"not-the-token",
        &format!("{BASE_URL}/twilio/voice/status"),
        [],
    );
    let r = send(addr, "POST", "/twilio/voice/status", &headers, body.clone()).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("X-Twilio-Signature"), "{}", r.body);
    // No signature at all.
    let r = send(
        addr,
        "POST",
        "/twilio/voice/status",
        &headers[..1],
        body.clone(),
    )
    .await;
    assert_eq!(r.status, 403);
    // Unknown account.
    let other = String::from_utf8(body.clone())
        .unwrap()
        .replace(TWILIO_SID, "AC0000000000000000000000000000evil");
    let r = send(
        addr,
        "POST",
        "/twilio/voice/status",
        &headers,
        other.into_bytes(),
    )
    .await;
    assert_eq!(
        (r.status, r.body.trim()),
        (403, "forbidden: unknown Twilio account")
    );

    // Telnyx: stale timestamp (signed correctly, 10 minutes ago) and forged signature.
    let hangup = json!({"data": {"event_type": "call.hangup", "payload": {"call_session_id": "s-1",
        "from": CALLER, "to": BUSINESS, "hangup_cause": "timeout"}}});
    let (headers, body) = telnyx_request(&hangup, jiff::Timestamp::now().as_second() - 600);
    let r = send(addr, "POST", "/telnyx", &headers, body).await;
    assert_eq!(
        (r.status, r.body.trim()),
        (403, "forbidden: stale telnyx-timestamp")
    );
    let (mut headers, body) = telnyx_request(&hangup, jiff::Timestamp::now().as_second());
    let forged = ed25519_dalek::SigningKey::from_bytes(&[1u8; 32]);
    headers[1].1 =
        textback_gateway::carrier::telnyx::sign(&forged, jiff::Timestamp::now().as_second(), &body);
    let r = send(addr, "POST", "/telnyx", &headers, body).await;
    assert_eq!(r.status, 403);

    // Malformed: a correctly signed body that is not a Telnyx event, and a Twilio form without To.
    let (headers, _) = telnyx_request(&hangup, 0);
    let garbage = b"{\"data\": [1, 2".to_vec();
    let ts = jiff::Timestamp::now().as_second();
    let sig = textback_gateway::carrier::telnyx::sign(&telnyx_key(), ts, &garbage);
    let headers = vec![
        headers[0].clone(),
        ("telnyx-signature-ed25519", sig),
        ("telnyx-timestamp", ts.to_string()),
    ];
    let r = send(addr, "POST", "/telnyx", &headers, garbage).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.starts_with("malformed webhook:"), "{}", r.body);
    assert_eq!(r.body.lines().count(), 1, "one-line reason");
    let r = post_twilio(
        addr,
        "/twilio/voice/status",
        &[("CallSid", "CA1"), ("CallStatus", "busy"), ("From", CALLER)],
    )
    .await;
    assert_eq!(
        (r.status, r.body.trim()),
        (400, "malformed webhook: missing To")
    );

    // Oversized: declared and streamed without a length.
    let (headers, mut body) = twilio_request(
        "/twilio/sms",
        &[("MessageSid", "SM9"), ("From", CALLER), ("To", BUSINESS)],
    );
    body.extend(std::iter::repeat_n(b'a', 70 * 1024));
    let r = send(addr, "POST", "/twilio/sms", &headers, body.clone()).await;
    assert_eq!(r.status, 413);
    let r = chunked_post(addr, "/twilio/sms", &body).await;
    assert!(r.starts_with("HTTP/1.1 413"), "{r}");

    // Wrong method, unknown path.
    let r = send(addr, "GET", "/twilio/sms", &[], vec![]).await;
    assert_eq!(r.status, 405);
    let r = send(addr, "POST", "/twilio/nope", &[], vec![]).await;
    assert_eq!(r.status, 404);

    // A client that stalls in its headers is cut off.
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"POST /twilio/sms HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), slow.read_to_end(&mut buf)).await;
    assert!(
        read.is_ok(),
        "a stalled client was still connected after 20 s"
    );

    let metrics = send(addr, "GET", "/metrics", &[], vec![]).await.body;
    assert!(
        metrics.contains("textback_gateway_requests_total{route=\"telnyx\",code=\"403\"} 2"),
        "{metrics}"
    );
    gw.stop().await;
    assert!(
        read_topic(&topic).is_empty(),
        "bad input published something"
    );
}

/// A body sent with chunked encoding, so the server cannot know its size up front.
async fn chunked_post(addr: std::net::SocketAddr, path: &str, body: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!("POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    for chunk in body.chunks(8192) {
        let sent = async {
            stream
                .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .await?;
            stream.write_all(chunk).await?;
            stream.write_all(b"\r\n").await
        };
        if sent.await.is_err() {
            break; // the server may answer and close before the whole body is sent
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let topic = fresh_topic("health").await;
    let gw = start(settings(&topic, AckMode::Fast)).await;
    assert_eq!(
        send(gw.addr, "GET", "/healthz", &[], vec![]).await.status,
        200
    );
    // Readiness follows the Kafka probe, which runs every 200 ms here.
    let mut ready = 0;
    for _ in 0..100 {
        ready = send(gw.addr, "GET", "/readyz", &[], vec![]).await.status;
        if ready == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ready, 200);
    let r = post_twilio(
        gw.addr,
        "/twilio/voice/status",
        &[
            ("CallSid", "CA9"),
            ("CallStatus", "busy"),
            ("From", CALLER),
            ("To", BUSINESS),
        ],
    )
    .await;
    assert_eq!(r.status, 200);
    let m = send(gw.addr, "GET", "/metrics", &[], vec![]).await;
    assert!(m.content_type.starts_with("text/plain; version=0.0.4"));
    for needle in [
        "textback_gateway_ack_seconds_bucket{route=\"twilio_voice_status\",le=\"0.001\"}",
        "textback_gateway_events_published_total{kind=\"missed_call\"} 1",
        "textback_gateway_kafka_up 1",
        "textback_gateway_duplicates_dropped_total 0",
    ] {
        assert!(m.body.contains(needle), "missing {needle}:\n{}", m.body);
    }
    gw.stop().await;
    // Fast mode: flushed on shutdown, so the event is on the topic.
    assert_eq!(read_topic(&topic).len(), 1);
}
