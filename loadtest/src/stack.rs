//! The whole stack in this process — gateway (durable acks, real Kafka), worker (Kafka consumer
//! group, PostgreSQL store in a fresh schema), sender, carrier simulator — with many businesses.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use anyhow::Context;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use textback_gateway::{AckMode, Gateway, KafkaSettings, Settings, TelnyxSettings, TwilioSettings};
use textback_worker::engine::Policy;
use textback_worker::profile::{Business, Profile};
use textback_worker::queue::{KafkaConsumerSettings, Queue};
use textback_worker::sender::{self, CarrierApi};
use textback_worker::simulator::{Credentials, Simulator};
use textback_worker::store::postgres::PgStore;
use textback_worker::store::Store;
use tokio::sync::{watch, Notify};

/// The Telnyx signing seed the local stack trusts (its public key is configured in the gateway).
pub const TELNYX_SEED: [u8; 32] = [0u8; 32];

/// Business `i`: open all day every day in UTC, one service, so load never hits closed hours.
pub fn business(i: usize) -> Profile {
    let day = vec![["00:00".to_string(), "23:59".to_string()]];
    let hours: BTreeMap<String, Vec<[String; 2]>> =
        ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
            .iter()
            .map(|d| (d.to_string(), day.clone()))
            .collect();
    serde_json::from_value(serde_json::json!({
        "id": format!("b{i}"), "name": format!("Business {i}"), "phone_number": business_number(i),
        "owner_phone": format!("+1917{:07}", i), "timezone": "UTC", "address": "1 Main St", "hours": hours,
        "booking": {"slot_interval_min": 15, "min_notice_min": 60, "horizon_days": 30, "capacity": 4},
        "services": [{"id": "haircut", "name": "Haircut", "duration_min": 30, "price_cents": 3500}]
    }))
    .expect("a valid profile")
}

pub fn business_number(i: usize) -> String {
    format!("+1646{:07}", i)
}

pub struct LocalStack {
    /// The gateway's public base URL (what carriers call, and what Twilio signs).
    pub base_url: String,
    pub sim: Simulator,
    pub credentials: Credentials,
    pub businesses: usize,
    stop: watch::Sender<bool>,
    postgres: String,
    schema: String,
    services: Services,
}

/// Kafka and PostgreSQL, started by the scripts if they were not running; stopped again only then.
struct Services {
    started: Vec<&'static str>,
}

fn scripts() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts")
}

fn reachable(host_port: &str) -> bool {
    host_port
        .parse::<std::net::SocketAddr>()
        .is_ok_and(|a| std::net::TcpStream::connect(a).is_ok())
}

impl Services {
    fn ensure(brokers: &str, postgres_port: u16) -> anyhow::Result<Services> {
        let mut started = Vec::new();
        for (script, addr) in [
            ("kafka.sh", brokers.to_string()),
            ("postgres.sh", format!("127.0.0.1:{postgres_port}")),
        ] {
            if !reachable(&addr) {
                eprintln!("loadtest: nothing on {addr}; starting it with scripts/{script}");
                let ok = Command::new("bash")
                    .arg(scripts().join(script))
                    .arg("start")
                    .status()?
                    .success();
                anyhow::ensure!(ok, "scripts/{script} start failed");
                started.push(script);
            }
        }
        Ok(Services { started })
    }

    fn stop(&self) {
        for script in &self.started {
            let _ = Command::new("bash")
                .arg(scripts().join(script))
                .arg("stop")
                .status();
        }
    }
}

impl LocalStack {
    pub async fn start(
        brokers: &str,
        postgres: &str,
        businesses: usize,
        partitions: i32,
    ) -> anyhow::Result<LocalStack> {
        let pg_port = postgres
            .rsplit_once(':')
            .and_then(|(_, rest)| rest.split('/').next()?.parse().ok())
            .unwrap_or(5432);
        let services = Services::ensure(brokers, pg_port)?;
        let schema = format!("load_{}", uuid::Uuid::new_v4().simple());
        let store = PgStore::new(postgres, Some(&schema), 24).context("postgres")?;
        store.migrate(Some(&schema)).await.context("migrate")?;
        for i in 0..businesses {
            store
                .upsert_business(
                    &Business::from_profile(business(i)).map_err(|e| anyhow::anyhow!(e))?,
                )
                .await?;
        }
        let topic = format!("textback.load.{}", uuid::Uuid::new_v4().simple());
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .create()?;
        for r in admin
            .create_topics(
                &[NewTopic::new(
                    &topic,
                    partitions,
                    TopicReplication::Fixed(1),
                )],
                &AdminOptions::new(),
            )
            .await?
        {
            r.map_err(|(t, e)| anyhow::anyhow!("creating {t}: {e}"))?;
        }
        let credentials = Credentials::default();
        let sim = Simulator::start("127.0.0.1:0".parse()?, credentials.clone()).await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let base_url = format!("http://127.0.0.1:{}", addr.port());
        let telnyx_key = ed25519_dalek::SigningKey::from_bytes(&TELNYX_SEED);
        use base64::Engine;
        let settings = Settings {
            listen: addr,
            public_base_url: base_url.clone(),
            ack_mode: AckMode::Durable,
            kafka: KafkaSettings {
                brokers: brokers.to_string(),
                topic: topic.clone(),
                ..KafkaSettings::default()
            },
            twilio: TwilioSettings {
                auth_tokens: BTreeMap::from([(
                    credentials.twilio_account_sid.clone(),
                    credentials.twilio_auth_token.clone(),
                )]),
            },
            telnyx: TelnyxSettings {
                public_key: base64::engine::general_purpose::STANDARD
                    .encode(telnyx_key.verifying_key().to_bytes()),
                ..TelnyxSettings::default()
            },
            ..Settings::default()
        };
        let gateway = Gateway::new(settings).map_err(|e| anyhow::anyhow!(e))?;
        let (stop, rx) = watch::channel(false);
        let stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        tokio::spawn(gateway.serve(listener, stopped(rx.clone())));
        let queue = Queue::kafka(&KafkaConsumerSettings {
            brokers: brokers.to_string(),
            topic,
            group: format!("load-{}", uuid::Uuid::new_v4().simple()),
            extra: Default::default(),
        })?;
        let wake = Arc::new(Notify::new());
        let api = Arc::new(CarrierApi::new(sim.sender_settings()));
        tokio::spawn(sender::run(
            store.clone(),
            api,
            wake.clone(),
            Arc::new(sender::Quiet),
            stopped(rx.clone()),
        ));
        tokio::spawn(textback_worker::run::consume(
            store,
            queue,
            Policy::default(),
            partitions as usize,
            wake,
            Arc::new(textback_worker::run::Silent),
            stopped(rx),
        ));
        Ok(LocalStack {
            base_url,
            sim,
            credentials,
            businesses,
            stop,
            postgres: postgres.to_string(),
            schema,
            services,
        })
    }

    /// Waits (at most `limit`) until no text has reached the simulator for a second.
    pub async fn drain(&self, limit: std::time::Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        let mut last = self.sim.received().len();
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            let now = self.sim.received().len();
            if now == last {
                return;
            }
            last = now;
        }
    }

    /// Stops everything, drops the schema, and stops the services this stack started.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        if let Ok(admin) = PgStore::new(&self.postgres, None, 1) {
            if let Ok(client) = admin.pool().get().await {
                let _ = client
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema))
                    .await;
            }
        }
        self.services.stop();
    }
}

/// The baseline: a hyper server with the gateway's connection settings that reads each body and
/// answers 200, doing nothing else.
pub async fn bare_server(
    listener: tokio::net::TcpListener,
    stop: impl std::future::Future<Output = ()>,
) {
    use http_body_util::{BodyExt, Full};
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper_util::rt::{TokioIo, TokioTimer};
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).keep_alive(true);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let conn = http.serve_connection(TokioIo::new(stream), service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                    // Read the body as the gateway does, so both do the same I/O.
                    let _ = req.into_body().collect().await;
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(bytes::Bytes::from_static(b"ok"))))
                }));
                tokio::spawn(conn);
            }
            () = &mut stop => return,
        }
    }
}
