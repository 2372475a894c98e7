//! `textback demo`: the whole product in one process on the embedded default — the gateway, the
//! worker with the in-memory store and in-process queue, the sender and a carrier simulator — with
//! nothing installed. A sample caller's missed call goes in as a signed Twilio webhook over HTTP,
//! and a short conversation ends in a booking; every text is printed as the simulator receives it.
//! `--interactive`: you are the caller.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use textback_gateway::carrier::twilio;
use textback_gateway::{Gateway, Settings, TwilioSettings};
use textback_worker::engine::Policy;
use textback_worker::profile::load_file;
use textback_worker::queue::Queue;
use textback_worker::sender::{self, CarrierApi, Quiet, SenderSettings};
use textback_worker::simulator::{Credentials, Simulator};
use textback_worker::store::memory::MemoryStore;
use textback_worker::store::Store;
use tokio::sync::{watch, Notify};

use super::Failure;

const BUSINESSES: &str = include_str!("demo-businesses.json");
const CALLER: &str = "+16175550123";
const SCRIPT: [&str; 2] = ["Hi! Can I get a haircut tomorrow at 2?", "thanks!"];

#[derive(clap::Args)]
pub struct Args {
    /// Be the caller: type texts, see the replies (an empty line or end of input stops).
    #[arg(long)]
    interactive: bool,
}

struct Demo {
    gateway: SocketAddr,
    base_url: String,
    sim: Simulator,
    creds: Credentials,
    shown: usize,
    sequence: u32,
}

pub fn run(args: Args) -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    runtime.block_on(async move {
        let business = load_file(BUSINESSES).map_err(|e| anyhow::anyhow!(e))?.remove(0);
        let store = MemoryStore::new();
        store.upsert_business(&business).await.context("store")?;
        let creds = Credentials::default();
        let sim = Simulator::start("127.0.0.1:0".parse().expect("address"), creds.clone()).await.context("simulator")?;

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("gateway listener")?;
        let addr = listener.local_addr().context("gateway address")?;
        let base_url = format!("http://{addr}");
        let settings = Settings {
            listen: addr,
            public_base_url: base_url.clone(),
            twilio: TwilioSettings {
                auth_tokens: BTreeMap::from([(creds.twilio_account_sid.clone(), creds.twilio_auth_token.clone())]),
            },
            ..Settings::default()
        };
        let (tx, queue) = Queue::in_process(1024, 4);
        let gateway = Gateway::in_process(settings, tx).map_err(|e| anyhow::anyhow!(e))?;
        let (stop_tx, stop_rx) = watch::channel(false);
        let stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let serving = tokio::spawn(gateway.serve(listener, stopped(stop_rx.clone())));
        let wake = Arc::new(Notify::new());
        let sender_settings = SenderSettings { per_number_rate: 10.0, ..sim.sender_settings() };
        let api = Arc::new(CarrierApi::new(sender_settings));
        tokio::spawn(sender::run(store.clone(), api, wake.clone(), Arc::new(Quiet), stopped(stop_rx.clone())));
        tokio::spawn(textback_worker::run::consume(
            store.clone(),
            queue,
            Policy::default(),
            4,
            wake,
            Arc::new(textback_worker::run::Silent),
            stopped(stop_rx),
        ));

        println!("textback demo: gateway on {base_url}, worker on the in-memory store, carrier simulator on {}", sim.url());
        println!("business: {} ({}), caller: {CALLER}\n", business.name, business.phone);
        let mut demo = Demo { gateway: addr, base_url, sim, creds, shown: 0, sequence: 0 };
        println!("  [call] {CALLER} calls {} ... no answer", business.phone);
        demo.webhook("/twilio/voice/status", &[("CallSid", "CAdemo0001"), ("CallStatus", "no-answer")]).await?;
        demo.show(1).await;
        if args.interactive {
            println!("\nYou are the caller. Type a text and press Enter (empty line to stop).");
            let mut lines = std::io::stdin().lock().lines();
            while let Some(Ok(line)) = lines.next() {
                if line.trim().is_empty() {
                    break;
                }
                demo.text(&line).await?;
            }
        } else {
            for line in SCRIPT {
                demo.text(line).await?;
            }
        }
        let tables = store.snapshot().await;
        let booked: Vec<String> = tables
            .appointments
            .iter()
            .filter(|a| a.cancelled_at.is_none())
            .map(|a| {
                let local = a.appointment.start.to_zoned(business.tz.clone());
                format!("{} at {}", a.appointment.service_id, local.strftime("%A %Y-%m-%d %H:%M %Z"))
            })
            .collect();
        println!("\nappointments in the store: {}", if booked.is_empty() { "none".into() } else { booked.join(", ") });
        let _ = stop_tx.send(true);
        let _ = serving.await;
        if !args.interactive && booked.len() != 1 {
            bail!("the demo conversation did not end in exactly one booking");
        }
        Ok(())
    })
    .map_err(Failure::Runtime)
}

impl Demo {
    async fn text(&mut self, body: &str) -> anyhow::Result<()> {
        println!("  {CALLER} -> textback: {body}");
        self.sequence += 1;
        let sid = format!("SMdemo{:04}", self.sequence);
        self.webhook(
            "/twilio/sms",
            &[("MessageSid", &sid), ("Body", body), ("NumMedia", "0")],
        )
        .await?;
        self.show(1).await;
        Ok(())
    }

    /// Prints texts as the simulator receives them: at least `at_least` new ones, then any that
    /// follow shortly (owner alerts).
    async fn show(&mut self, at_least: usize) {
        let want = self.shown + at_least;
        self.sim
            .wait_until(Duration::from_secs(10), |r| r.len() >= want)
            .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let received = self.sim.received();
        for r in &received[self.shown..] {
            let who = if r.to == CALLER {
                "textback -> caller"
            } else {
                "textback -> owner"
            };
            println!("  {who}: {}", r.body);
        }
        self.shown = received.len();
    }

    /// Posts a webhook signed as Twilio signs it.
    async fn webhook(&self, path: &str, params: &[(&str, &str)]) -> anyhow::Result<()> {
        let mut all: Vec<(&str, &str)> = vec![
            ("AccountSid", self.creds.twilio_account_sid.as_str()),
            ("From", CALLER),
            ("To", "+16175550100"),
        ];
        all.extend_from_slice(params);
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&all)
            .finish();
        let signature = twilio::signature(
            self.creds.twilio_auth_token.as_bytes(),
            &format!("{}{path}", self.base_url),
            all.iter().copied(),
        );
        let stream = tokio::net::TcpStream::connect(self.gateway).await?;
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        let req = hyper::Request::post(path)
            .header("host", "127.0.0.1")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-twilio-signature", signature)
            .body(Full::new(Bytes::from(body)))?;
        let resp = send.send_request(req).await?;
        let status = resp.status();
        let _ = resp.into_body().collect().await;
        if !status.is_success() {
            bail!("gateway answered {status}");
        }
        Ok(())
    }
}
