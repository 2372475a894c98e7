//! The `textback` binary as an operator runs it: a bad config exits 64 with a message naming the
//! problem, and SIGTERM stops the gateway cleanly (exit 0) after it has served.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

fn textback() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_textback"));
    // Only what each test sets: the environment of the test run itself must not leak into the config.
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("TEXTBACK_")) {
        cmd.env_remove(name);
    }
    cmd.stdin(Stdio::null());
    cmd
}

#[test]
fn bad_config_exits_64_with_a_clear_message() {
    let out = textback()
        .arg("gateway")
        .env("TEXTBACK_GATEWAY_ACK_MODE", "sometimes")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("configuration error") && stderr.contains("sometimes"),
        "{stderr}"
    );

    let out = textback()
        .arg("gateway")
        .env(
            "TEXTBACK_TWILIO_AUTH_TOKENS",
            "{ AC1 = \"very-secret-token\" }",
        )
        .env("TEXTBACK_GATEWAY_PUBLIC_BASE_URL", "hooks.example.com/")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("public_base_url"), "{stderr}");
    assert!(
        !stderr.contains("very-secret-token"),
        "a secret was printed: {stderr}"
    );
}

#[tokio::test]
async fn sigterm_finishes_and_exits_zero() {
    let topic = fresh_topic("binary").await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = textback()
        .arg("gateway")
        .env("TEXTBACK_GATEWAY_LISTEN", format!("127.0.0.1:{port}"))
        .env("TEXTBACK_GATEWAY_PUBLIC_BASE_URL", BASE_URL)
        .env("TEXTBACK_KAFKA_BROKERS", brokers())
        .env("TEXTBACK_KAFKA_TOPIC", &topic)
        .env(
            "TEXTBACK_TWILIO_AUTH_TOKENS",
            format!("{{ {TWILIO_SID} = \"{TWILIO_TOKEN}\" }}"),
        )
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut up = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "gateway did not start listening");
    let params = [
        ("CallSid", "CA-bin-1"),
        ("CallStatus", "busy"),
        ("From", "+16175550142"),
        ("To", BUSINESS),
    ];
    assert_eq!(
        post_twilio(addr, "/twilio/voice/status", &params)
            .await
            .status,
        200
    );

    let killed = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(killed.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}: {stderr}", out.status);
    assert!(stderr.contains("gateway stopped"), "{stderr}");
    assert!(
        !stderr.contains("+16175550142"),
        "a full phone number was logged: {stderr}"
    );
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still accepting after SIGTERM"
    );
    assert_eq!(read_topic(&topic).len(), 1);
}

#[test]
fn demo_books_a_conversation_with_nothing_installed() {
    // No Kafka, no PostgreSQL: the embedded default.
    let out = textback().arg("demo").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("textback -> caller: Hi, this is Fade & Co Barbershop"),
        "{stdout}"
    );
    assert!(
        stdout.contains("textback -> caller: You're booked: Haircut"),
        "{stdout}"
    );
    assert!(
        stdout.contains("textback -> owner: textback: New booking: Haircut"),
        "{stdout}"
    );
    assert!(
        stdout.contains("appointments in the store: haircut at"),
        "{stdout}"
    );
}

#[tokio::test]
async fn business_import_inserts_updates_and_refuses_bad_files() {
    let (store, schema) = common::stack::fresh_store().await;
    let url = format!(
        "{}?options=-c%20search_path%3D{schema}%2Cpublic",
        common::stack::pg_url()
    );
    let import = |file: &str| {
        textback()
            .args(["business", "import", file])
            .env("TEXTBACK_WORKER_POSTGRES_URL", &url)
            .output()
            .unwrap()
    };
    let corpus = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus/businesses.json");
    let out = import(corpus);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "imported 1 businesses"
    );
    let count = |sql: &'static str| {
        let store = store.clone();
        async move {
            store
                .pool()
                .get()
                .await
                .unwrap()
                .query_one(sql, &[])
                .await
                .unwrap()
                .get::<_, i64>(0)
        }
    };
    // The stack's own business plus the groomer; importing again updates in place.
    assert_eq!(count("SELECT count(*) FROM businesses").await, 2);
    assert!(import(corpus).status.success());
    assert_eq!(count("SELECT count(*) FROM businesses").await, 2);
    // A profile with a bad timezone: refused, nothing written.
    let bad = std::env::temp_dir().join(format!("bad-{}.json", uuid::Uuid::new_v4().simple()));
    std::fs::write(
        &bad,
        std::fs::read_to_string(corpus)
            .unwrap()
            .replace("happypaws", "other")
            .replace("America/Los_Angeles", "Mars/Olympus"),
    )
    .unwrap();
    let out = import(bad.to_str().unwrap());
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown timezone"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(count("SELECT count(*) FROM businesses").await, 2);
    let _ = std::fs::remove_file(bad);
}
