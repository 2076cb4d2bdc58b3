//! Integration tests of the HTTP API through the real router on a real SQLite database.

mod common;
mod tokens;
mod users;
