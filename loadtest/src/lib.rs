//! Shared by the load tools: the whole textback stack in one process on real Kafka and PostgreSQL
//! (started with the repository's scripts when they are not running), signed carrier webhooks, and
//! latency summaries.

pub mod stack;
