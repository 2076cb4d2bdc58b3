//! Integration tests of the HTTP API through the real router on a real SQLite database.

mod abuse;
mod activity;
mod admin_accounts;
mod alerts;
mod assets;
mod cli;
mod common;
mod concurrency;
mod connections;
mod console;
mod console_pages;
mod crash;
mod dashboard;
mod deletion;
mod discovery;
mod groups;
mod health;
mod history;
mod instances;
mod integration_tabs;
mod isolation;
mod replay;
mod secrets;
mod telemetry;
mod tokens;
mod users;
