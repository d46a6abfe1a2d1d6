//! The end-to-end load generator: real WebSocket clients against Parley and its two
//! peers (a bare tokio-tungstenite relay, a Node.js Socket.IO server), each started by
//! the harness as a child process in the same run. See BENCHMARKS.md.
//!
//! ```text
//! cargo bench --bench load -- <scenario> [options]
//! cargo bench --bench load -- help <scenario>
//! ```
//!
//! The scenarios:
//!
//! - `connect`: N authenticated idle connections: connect rate, server RSS per connection.
//! - `chat`: users in 1:1 pairs sending at a fixed total rate (open loop).
//! - `ramp`: the rate raised step by step until p99 passes a limit or errors appear.
//! - `catchup`: a user offline while K messages arrive: time from reconnect to `synced`.
//! - `login-storm`: many logins at once while chat runs: chat p99 before, during, after.
//! - `slow-consumer` (Parley only): while chat runs, a client stops reading and others
//!   send to it at full speed: chat p99 before, during and after, when the server
//!   closes it (4008), server RSS.
//! - `flood` (Parley only, its default send rate limit in force): while chat runs, a
//!   client sends far above its limit: chat p99 before, during and after, what the
//!   flooder got (acks, `rate_limited`), server RSS.
//! - `group`: one group of 10, 100 or 1,000 members, one sending at a fixed rate:
//!   delivered events per second and server CPU per delivered event, beside the relay.
//! - `socketio-cost`: Parley over Socket.IO beside the Node.js Socket.IO peer, each
//!   driven the same way: RSS per idle connection, then CPU per message under chat, on
//!   one server per system, in one run.
//! - `silent` (Parley only): many TCP connections that never send a byte, from several
//!   processes: how many the server holds, refuses (503) and closes, when, its
//!   descriptors and memory, and `/healthz` meanwhile.
//!
//! A `[[bench]]` with `harness = false`, so it is built with the release profile by
//! `cargo bench`, gets the `parley` binary of the same build (`CARGO_BIN_EXE_parley`),
//! and is compiled (but not run) by `cargo test --all-targets` and clippy. Without a
//! scenario it prints its usage and exits 0, which is what a `cargo test --benches`
//! run sees.

mod chat;
mod client;
mod group;
mod isolation;
mod procstat;
#[path = "../peers/relay.rs"]
mod relay;
mod report;
mod scenarios;
mod silent;
mod target;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::target::{StartOptions, System};

#[derive(Parser)]
#[command(
    name = "load",
    about = "Parley's load generator: real WebSocket clients, open loop, HDR histograms",
    after_help = "Run through cargo: cargo bench --bench load -- <scenario> [options]"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// N authenticated idle connections: connect rate and server RSS per connection.
    Connect(ConnectArgs),
    /// Users in 1:1 pairs sending at a fixed total rate (open loop).
    Chat(ChatArgs),
    /// Raise the rate step by step until p99 passes the limit or errors appear.
    Ramp(RampArgs),
    /// A user offline while K messages arrive: time from reconnect to `synced`.
    Catchup(CatchupArgs),
    /// Many logins at once while chat runs: chat p99 before, during and after.
    LoginStorm(StormArgs),
    /// Parley only: clients that stop reading while others send to them at full speed,
    /// during chat: chat latency before, during and after, and when the server closed
    /// them (close code 4008 expected).
    #[command(after_help = SLOW_HELP)]
    SlowConsumer(SlowArgs),
    /// Parley only, with its default send rate limit: clients sending far above the
    /// limit during chat: chat latency before, during and after, and what the flooders
    /// got back (acks, `rate_limited` errors).
    Flood(FloodArgs),
    /// One group of N members, one sending at a fixed rate: delivered events per second
    /// and server CPU per delivered event, Parley beside the relay.
    Group(group::GroupArgs),
    /// Parley over Socket.IO beside the Node.js Socket.IO peer: RSS per idle connection
    /// and server CPU per message, measured on the same server in one run.
    SocketioCost(CostArgs),
    /// Parley only: many TCP connections that never send a byte (from several processes):
    /// how many are held, refused with 503 and closed, when, the server's descriptors and
    /// memory, and `/healthz` meanwhile.
    Silent(SilentArgs),
    /// Open silent sockets in a child process (used by `silent`).
    #[command(hide = true)]
    SilentWorker {
        #[arg(long)]
        addr: SocketAddr,
        #[arg(long)]
        source_ip: Option<Ipv4Addr>,
        #[arg(long)]
        count: usize,
        #[arg(long, default_value_t = 256)]
        concurrency: usize,
        /// Seconds to wait for the server to close each socket.
        #[arg(long, default_value_t = 90)]
        wait: u64,
    },
    /// Run the bare relay peer (used by the harness as a child process).
    #[command(hide = true)]
    ServeRelay {
        #[arg(long)]
        listen: SocketAddr,
        #[arg(long)]
        read_buffer: Option<usize>,
    },
    /// Connect a slice of users in a child process (used by `connect`).
    #[command(hide = true)]
    ConnectWorker {
        #[arg(long)]
        system: System,
        #[arg(long)]
        addr: SocketAddr,
        #[arg(long)]
        source_ip: Option<Ipv4Addr>,
        #[arg(long)]
        users_file: PathBuf,
        #[arg(long, default_value_t = 100)]
        concurrency: usize,
    },
}

/// Options every scenario takes.
#[derive(Args, Clone)]
pub(crate) struct Common {
    /// Systems to measure, in order (default: every system the scenario applies to).
    #[arg(long, value_delimiter = ',')]
    systems: Vec<System>,
    /// Message body length in bytes (the same for every system).
    #[arg(long, default_value_t = 100)]
    body_bytes: usize,
    /// Where to write the JSON results (default: a file in the target dir's scratch).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Before measuring each system, wait until other processes use less than this
    /// much CPU (percent of one core) over 2 s ...
    #[arg(long, default_value_t = 20.0)]
    quiet_limit: f64,
    /// ... but no longer than this many seconds (0: do not wait).
    #[arg(long, default_value_t = 600)]
    quiet_wait: u64,
    #[command(flatten)]
    start: StartOptions,
}

impl Common {
    fn systems_or(&self, default: &[System]) -> Vec<System> {
        if self.systems.is_empty() {
            default.to_vec()
        } else {
            self.systems.clone()
        }
    }
}

#[derive(Args, Clone)]
pub(crate) struct ConnectArgs {
    #[command(flatten)]
    common: Common,
    /// Idle connections to open (each as its own user).
    #[arg(long, default_value_t = 15_000)]
    connections: usize,
    /// Handshakes in flight at once.
    #[arg(long, default_value_t = 200)]
    concurrency: usize,
    /// Seconds to hold the connections idle before reading the server's RSS.
    #[arg(long, default_value_t = 10)]
    hold: u64,
    /// Connections per generator process; more go to child processes, each from its
    /// own source address (127.0.0.2, 127.0.0.3, ...).
    #[arg(long, default_value_t = 15_000)]
    per_process: usize,
    /// Sessions per user (2: half as many users, two connections each), to tell the
    /// cost of a session from the cost of a user's actor.
    #[arg(long, default_value_t = 1)]
    sessions_per_user: usize,
}

#[derive(Args, Clone)]
pub(crate) struct SilentArgs {
    #[command(flatten)]
    common: Common,
    /// Silent sockets to open, in all.
    #[arg(long, default_value_t = 20_000)]
    sockets: usize,
    /// Sockets per worker process (each from its own source address, 127.0.0.2, ...).
    #[arg(long, default_value_t = 5_000)]
    per_process: usize,
    /// Connects in flight at once, per worker.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Seconds a worker waits for the server to close a socket before giving up on it.
    #[arg(long, default_value_t = 90)]
    wait: u64,
    /// Also print every sample (every half second).
    #[arg(long)]
    timeline: bool,
}

#[derive(Args, Clone)]
pub(crate) struct ChatArgs {
    #[command(flatten)]
    common: Common,
    /// Users (connections), in 1:1 pairs.
    #[arg(long, default_value_t = 1000)]
    users: usize,
    /// Total messages per second over all users.
    #[arg(long, default_value_t = 10_000.0)]
    rate: f64,
    /// Seconds of warm-up, excluded from the results.
    #[arg(long, default_value_t = 5)]
    warmup: u64,
    /// Seconds measured.
    #[arg(long, default_value_t = 20)]
    duration: u64,
    /// Seconds to wait for outstanding acks and deliveries after the last send.
    #[arg(long, default_value_t = 10)]
    drain: u64,
    /// Also print every second.
    #[arg(long)]
    timeline: bool,
}

#[derive(Args, Clone)]
pub(crate) struct RampArgs {
    #[command(flatten)]
    common: Common,
    /// Users (connections), in 1:1 pairs.
    #[arg(long, default_value_t = 1000)]
    users: usize,
    /// Rate of the first step, messages per second.
    #[arg(long, default_value_t = 2000.0)]
    start_rate: f64,
    /// Each step's rate is the previous one's times this.
    #[arg(long, default_value_t = 1.25)]
    factor: f64,
    /// Seconds per step.
    #[arg(long, default_value_t = 6)]
    step_secs: u64,
    /// Seconds at the start of each step excluded from its results.
    #[arg(long, default_value_t = 2)]
    step_warmup: u64,
    /// Most steps.
    #[arg(long, default_value_t = 20)]
    max_steps: usize,
    /// A step fails when the p99 of ack or end-to-end latency exceeds this.
    #[arg(long, default_value_t = 50.0)]
    p99_limit_ms: f64,
    /// Seconds to wait for outstanding acks and deliveries after the last send.
    #[arg(long, default_value_t = 10)]
    drain: u64,
}

#[derive(Args, Clone)]
pub(crate) struct CostArgs {
    /// The chat measured for the CPU figure, after the idle connections are closed.
    #[command(flatten)]
    chat: ChatArgs,
    /// Idle connections opened for the memory figure (each as its own user).
    #[arg(long, default_value_t = 5000)]
    connections: usize,
    /// Handshakes in flight at once.
    #[arg(long, default_value_t = 200)]
    concurrency: usize,
    /// Seconds to hold the connections idle before reading the server's RSS.
    #[arg(long, default_value_t = 10)]
    hold: u64,
}

#[derive(Args, Clone)]
pub(crate) struct CatchupArgs {
    #[command(flatten)]
    common: Common,
    /// Messages sent to the offline user.
    #[arg(long, default_value_t = 10_000)]
    messages: usize,
    /// Runs, each with a fresh pair of users.
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Sends in flight while filling the offline user's history.
    #[arg(long, default_value_t = 200)]
    window: usize,
}

#[derive(Args, Clone)]
pub(crate) struct StormArgs {
    #[command(flatten)]
    common: Common,
    /// Chat users (connections), in 1:1 pairs.
    #[arg(long, default_value_t = 1000)]
    users: usize,
    /// Chat messages per second over all users.
    #[arg(long, default_value_t = 10_000.0)]
    rate: f64,
    /// Logins in the storm (each of its own account, with the seeded password).
    #[arg(long, default_value_t = 1000)]
    logins: usize,
    /// Logins in flight at once (all of them by default).
    #[arg(long, default_value_t = 1000)]
    login_concurrency: usize,
    /// Seconds of warm-up, excluded.
    #[arg(long, default_value_t = 5)]
    warmup: u64,
    /// Seconds of chat measured before the storm.
    #[arg(long, default_value_t = 10)]
    before: u64,
    /// Seconds of chat measured after the storm.
    #[arg(long, default_value_t = 5)]
    after: u64,
    /// Seconds to wait for outstanding acks and deliveries after the last send.
    #[arg(long, default_value_t = 10)]
    drain: u64,
    /// Also print the chat's figures for every second (numbered from the storm).
    #[arg(long)]
    timeline: bool,
}

/// The windows of a disturbance scenario, in seconds of the chat's schedule.
#[derive(Args, Clone)]
pub(crate) struct Phases {
    /// Seconds of warm-up, excluded.
    #[arg(long, default_value_t = 5)]
    warmup: u64,
    /// Seconds of chat measured before the disturbance.
    #[arg(long, default_value_t = 10)]
    before: u64,
    /// Seconds the disturbance lasts (measured).
    #[arg(long, default_value_t = 15)]
    during: u64,
    /// Seconds of chat measured after the disturbance.
    #[arg(long, default_value_t = 5)]
    after: u64,
    /// Seconds to wait for outstanding acks and deliveries after the last send.
    #[arg(long, default_value_t = 10)]
    drain: u64,
    /// Also print the pairs' figures for every second.
    #[arg(long)]
    timeline: bool,
}

const SLOW_HELP: &str = "\
Parley's real session queue applies (the harness's load value, 65536, is left out;
--parley-arg=--session-queue=N sets another); the send rate limit stays out of the way.

A slow consumer reads nothing until --stall seconds after the disturbance starts. Once
its queue overflows, the server kicks it: it sends a Close (4008) and waits up to 10 s
(CLOSE_GRACE in src/ws/session.rs) for the write to go through. The Close is behind the
unread backlog, so a client still not reading by then sees the connection end without
it (1006). With --stall below that grace (the default, 5 s) the client reads the
backlog and then the 4008 Close. --stall 0 is a control run: the same load to a client
that reads.";

#[derive(Args, Clone)]
pub(crate) struct SlowArgs {
    #[command(flatten)]
    common: Common,
    /// Chat users (connections), in 1:1 pairs.
    #[arg(long, default_value_t = 1000)]
    users: usize,
    /// Chat messages per second over all users.
    #[arg(long, default_value_t = 5000.0)]
    rate: f64,
    /// Slow consumers: extra users whose sockets are not read.
    #[arg(long, default_value_t = 1)]
    slow: usize,
    /// Users sending to each slow consumer (each from its own connection).
    #[arg(long, default_value_t = 4)]
    senders_per_slow: usize,
    /// Messages per second of each of those senders (open loop, acks not awaited).
    #[arg(long, default_value_t = 2000.0)]
    sender_rate: f64,
    /// Seconds after the disturbance starts before a slow consumer reads again (to the
    /// end of its connection, for the close code). Below the kick's time plus the
    /// server's 10 s close grace, so that the 4008 Close gets through; 0: a control run,
    /// the same load to a client that reads.
    #[arg(long, default_value_t = 5.0)]
    stall: f64,
    #[command(flatten)]
    phases: Phases,
}

#[derive(Args, Clone)]
pub(crate) struct FloodArgs {
    #[command(flatten)]
    common: Common,
    /// Chat users (connections), in 1:1 pairs. Each must stay under the send rate limit:
    /// a higher `--rate` is lowered to 90 % of it (and said so).
    #[arg(long, default_value_t = 1000)]
    users: usize,
    /// Chat messages per second over all users.
    #[arg(long, default_value_t = 5000.0)]
    rate: f64,
    /// Flooders: extra users, each sending to a partner of its own (who only reads).
    #[arg(long, default_value_t = 1)]
    flooders: usize,
    /// Messages per second of each flooder (open loop, acks not awaited).
    #[arg(long, default_value_t = 20_000.0)]
    flood_rate: f64,
    #[command(flatten)]
    phases: Phases,
}

fn main() {
    // `cargo bench` passes `--bench`; a `cargo test` run passes test-harness flags.
    let args: Vec<String> = std::env::args()
        .filter(|a| a != "--bench" && a != "--nocapture" && a != "--test")
        .collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) if args.len() > 1 && !args[1].starts_with("--") => e.exit(),
        // Run by `cargo test` with flags meant for a test harness: nothing to do.
        Err(_) => Cli { command: None },
    };
    let Some(command) = cli.command else {
        let _ = Cli::command().print_help();
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async move {
        match command {
            Command::Connect(a) => scenarios::connect(a).await,
            Command::Chat(a) => scenarios::chat(a).await,
            Command::Ramp(a) => scenarios::ramp(a).await,
            Command::Catchup(a) => scenarios::catchup(a).await,
            Command::LoginStorm(a) => scenarios::login_storm(a).await,
            Command::SlowConsumer(a) => isolation::slow_consumer(a).await,
            Command::Flood(a) => isolation::flood(a).await,
            Command::SocketioCost(a) => scenarios::socketio_cost(a).await,
            Command::Group(a) => group::group(a).await,
            Command::Silent(a) => silent::silent(a).await,
            Command::SilentWorker {
                addr,
                source_ip,
                count,
                concurrency,
                wait,
            } => {
                silent::worker(
                    addr,
                    source_ip,
                    count,
                    concurrency,
                    std::time::Duration::from_secs(wait),
                )
                .await
            }
            Command::ServeRelay {
                listen,
                read_buffer,
            } => {
                if let Err(e) = relay::serve(listen, read_buffer).await {
                    eprintln!("relay: {e}");
                    std::process::exit(1);
                }
            }
            Command::ConnectWorker {
                system,
                addr,
                source_ip,
                users_file,
                concurrency,
            } => scenarios::connect_worker(system, addr, source_ip, users_file, concurrency).await,
        }
    });
}
