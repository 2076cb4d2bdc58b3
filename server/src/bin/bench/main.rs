//! Benchmarks of the SCIM service, run on purpose and never as part of the test suite.
//!
//! ```sh
//! cargo run --release -p server --bin bench -- scale          # in-process, 1,000 and 100,000 users
//! cargo run --release -p server --bin bench -- console --users 1000,100000,1000000  # console pages
//! cargo run --release -p server --bin bench -- token          # the per-request token check
//! scripts/bench-load sqlite                                   # HTTP load on a running server
//! cargo run --release -p server --bin bench -- load --target http://127.0.0.1:3000  # BENCH_TOKEN=...
//! scripts/bench-load sqlite 1 --phases create,noisy --users 10000  # one organisation beside a noisy one
//! ```

mod console;
mod load;
mod scale;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "bench", about = "Benchmarks of the SCIM service")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Lookup and paging latency as the organisation grows, with the query plans, and the
    /// cost of membership changes in large groups (in-process, no sockets).
    Scale {
        /// Organisation sizes to measure.
        #[arg(long, value_delimiter = ',', default_values_t = [1_000, 100_000])]
        users: Vec<usize>,
        /// Requests timed per figure.
        #[arg(long, default_value_t = 2_000)]
        samples: usize,
        /// Members of the large group.
        #[arg(long, default_value_t = 10_000)]
        group_size: usize,
    },
    /// Server-rendered console pages (logged in) as the organisation grows (in-process).
    Console {
        /// Organisation sizes to measure, each on a new database.
        #[arg(long, value_delimiter = ',', default_values_t = [1_000, 100_000])]
        users: Vec<usize>,
        #[arg(long, default_value_t = 50)]
        samples: usize,
        /// Newest requests of the activity log whose body is large (more than the 8 KiB
        /// the log keeps).
        #[arg(long, default_value_t = 1_000)]
        large_bodies: usize,
    },
    /// The per-request token check (digest, then digest and lookup), in-process.
    Token {
        #[arg(long, default_value_t = 100_000)]
        samples: usize,
    },
    /// SCIM load over HTTP against running servers: throughput and latency per operation,
    /// then a check that every acknowledged write is there.
    Load(load::Options),
}

/// A small deterministic generator, so runs are comparable.
pub struct XorShift(pub u64);

impl XorShift {
    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// Percent-encodes a query parameter value.
pub fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match Cli::parse().command {
        Command::Scale {
            users,
            samples,
            group_size,
        } => {
            scale::scale(&users, samples, group_size).await;
            std::process::ExitCode::SUCCESS
        }
        Command::Console {
            users,
            samples,
            large_bodies,
        } => {
            console::console_pages(&users, samples, large_bodies).await;
            std::process::ExitCode::SUCCESS
        }
        Command::Token { samples } => {
            scale::token_check(samples).await;
            std::process::ExitCode::SUCCESS
        }
        Command::Load(options) => match load::run(options).await {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("bench load: {e}");
                std::process::ExitCode::FAILURE
            }
        },
    }
}
