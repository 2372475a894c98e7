//! Holds the Rust event types against `json/event.v1.json`: every kind serialises to a document the
//! schema accepts and deserialises back unchanged, and documents that break the contract are refused
//! by both the schema and the types.

use jiff::Timestamp;
use serde_json::{json, Value};
use textback_schemas::{
    Call, Carrier, Detail, Event, EventKind, InboundSms, MessageState, MessageStatus, PhoneNumber,
    EVENT_JSON_SCHEMA,
};

fn validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(EVENT_JSON_SCHEMA).expect("schema file is JSON");
    jsonschema::draft202012::new(&schema).expect("schema file is a valid JSON Schema")
}

fn sample(detail: Detail) -> Event {
    let kind = detail.kind();
    Event {
        id: Event::derive_id(Carrier::Twilio, kind, "CA0123456789abcdef", "no-answer"),
        carrier: Carrier::Twilio,
        account: "AC00000000000000000000000000000001".into(),
        business_number: PhoneNumber::parse("+16175550100").unwrap(),
        caller_number: PhoneNumber::parse("+16175550123").unwrap(),
        occurred_at: "2026-06-09T14:05:00Z".parse::<Timestamp>().unwrap(),
        received_at: "2026-06-09T14:05:00.123456Z".parse::<Timestamp>().unwrap(),
        detail,
    }
}

fn samples() -> Vec<Event> {
    let call = Call {
        call_id: "CA0123".into(),
        call_status: "no-answer".into(),
        duration_secs: 0,
    };
    vec![
        sample(Detail::MissedCall(call.clone())),
        sample(Detail::CallAnswered(Call {
            call_status: "completed".into(),
            duration_secs: 42,
            ..call
        })),
        sample(Detail::InboundSms(InboundSms {
            message_id: "SM01".into(),
            body: "Can I get a haircut tomorrow at 2? ✂️".into(),
            media_count: 1,
        })),
        sample(Detail::MessageStatus(MessageStatus {
            message_id: "SM02".into(),
            status: MessageState::Delivered,
            carrier_status: "delivered".into(),
            error_code: None,
        })),
        sample(Detail::MessageStatus(MessageStatus {
            message_id: "SM03".into(),
            status: MessageState::Failed,
            carrier_status: "failed".into(),
            error_code: Some("21610".into()),
        })),
    ]
}

#[test]
fn every_kind_serialises_to_a_valid_document_and_back() {
    let v = validator();
    let mut kinds = Vec::new();
    for event in samples() {
        let doc = serde_json::to_value(&event).unwrap();
        let errors: Vec<String> = v.iter_errors(&doc).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{doc}: {errors:?}");
        assert_eq!(doc["kind"], event.kind().as_str());
        let back: Event = serde_json::from_value(doc).unwrap();
        assert_eq!(back, event);
        kinds.push(event.kind());
    }
    for kind in EventKind::ALL {
        assert!(kinds.contains(&kind), "no sample of {kind:?}");
    }
}

type Breakage = Box<dyn Fn(&mut Value)>;

#[test]
fn broken_documents_are_refused_by_schema_and_types() {
    let v = validator();
    let good = serde_json::to_value(&samples()[0]).unwrap();
    let breakages: Vec<(&str, Breakage)> = vec![
        ("unknown kind", Box::new(|d| d["kind"] = json!("voicemail"))),
        (
            "missing call_id",
            Box::new(|d| {
                d.as_object_mut().unwrap().remove("call_id");
            }),
        ),
        (
            "non-E.164 caller",
            Box::new(|d| d["caller_number"] = json!("6175550123")),
        ),
        (
            "missing id",
            Box::new(|d| {
                d.as_object_mut().unwrap().remove("id");
            }),
        ),
        (
            "negative duration",
            Box::new(|d| d["duration_secs"] = json!(-1)),
        ),
        (
            "unknown carrier",
            Box::new(|d| d["carrier"] = json!("bandwidth")),
        ),
    ];
    for (what, breakage) in breakages {
        let mut doc = good.clone();
        breakage(&mut doc);
        assert!(!v.is_valid(&doc), "schema accepted a document with {what}");
        assert!(
            serde_json::from_value::<Event>(doc).is_err(),
            "types accepted a document with {what}"
        );
    }
}

#[test]
fn schema_refuses_fields_the_types_do_not_have() {
    let mut doc = serde_json::to_value(&samples()[2]).unwrap();
    doc["surprise"] = json!(1);
    assert!(!validator().is_valid(&doc));
}
