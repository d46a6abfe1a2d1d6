//! Does `POST /api/auth/login` take the same time for an email that has an account
//! (wrong password) as for an email that has none? Measures both, interleaved in a
//! random order per round over one keep-alive connection, and prints median, p90, p99
//! and their ratios, plus the probability that a random "known" sample is slower than a
//! random "unknown" one (0.5 means indistinguishable).
//!
//! Against a release build, starting its own server (the `parley` binary next to this
//! example's, on a temporary data dir, with the login rate limits raised):
//!
//! ```text
//! cargo build --release --bin parley --example login_timing
//! target/release/examples/login_timing --rounds 200
//! ```
//!
//! (with `CARGO_TARGET_DIR` set, the binaries are under it). Or against a running server
//! started with raised limits (`--login-per-email-per-minute 1000000
//! --auth-per-address-per-minute 1000000`): `login_timing --server http://127.0.0.1:8080`.
//! A measurement, not a test: it never fails on the figures.

use std::error::Error;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::{Value, json};

type AnyResult<T> = Result<T, Box<dyn Error>>;

/// Login latency for known vs unknown emails.
#[derive(Parser)]
struct Args {
    /// Base URL of a running server (with raised login limits). Without it, a server is
    /// started on a temporary data dir.
    #[arg(long)]
    server: Option<String>,
    /// The `parley` binary to start (default: next to this example's directory).
    #[arg(long)]
    parley: Option<PathBuf>,
    /// Measured requests of each kind.
    #[arg(long, default_value_t = 200)]
    rounds: usize,
    /// Unmeasured requests of each kind first.
    #[arg(long, default_value_t = 20)]
    warmup: usize,
}

/// A server started by this program; killed on drop.
struct Spawned(Child);

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_server(bin: PathBuf, dir: &std::path::Path) -> AnyResult<(Spawned, String)> {
    let mut child = Command::new(&bin)
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .args(["--login-per-email-per-minute", "1000000"])
        .args(["--auth-per-address-per-minute", "1000000"])
        .arg("--data-dir")
        .arg(dir)
        .env_remove("PARLEY_JWT_SECRET")
        .env("RUST_LOG", "warn,parley=info")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let spawned = Spawned(child);
    let mut lines = BufReader::new(stdout).lines();
    let addr = loop {
        let line = lines.next().ok_or("the server exited before listening")??;
        if let Ok(v) = serde_json::from_str::<Value>(&line)
            && v["message"] == "listening"
        {
            break v["addr"].as_str().ok_or("no addr")?.to_owned();
        }
    };
    // Keep reading so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
    Ok((spawned, format!("http://{addr}")))
}

/// Sorted samples in microseconds.
struct Sample(Vec<f64>);

impl Sample {
    fn quantile(&self, q: f64) -> f64 {
        let i = ((self.0.len() as f64 - 1.0) * q).round() as usize;
        self.0[i]
    }
    fn mean(&self) -> f64 {
        self.0.iter().sum::<f64>() / self.0.len() as f64
    }
    fn line(&self, name: &str) -> String {
        format!(
            "{name:<28} n={:<4} min={:>8.2} median={:>8.2} p90={:>8.2} p99={:>8.2} mean={:>8.2} ms",
            self.0.len(),
            self.0[0] / 1000.0,
            self.quantile(0.5) / 1000.0,
            self.quantile(0.9) / 1000.0,
            self.quantile(0.99) / 1000.0,
            self.mean() / 1000.0,
        )
    }
}

/// P(a random `a` > a random `b`) + half the ties: the Mann-Whitney U statistic over
/// `|a| * |b|`. 0.5 when the two are indistinguishable by rank.
fn superiority(a: &Sample, b: &Sample) -> f64 {
    let mut wins = 0.0;
    for x in &a.0 {
        for y in &b.0 {
            wins += if x > y {
                1.0
            } else if x == y {
                0.5
            } else {
                0.0
            };
        }
    }
    wins / (a.0.len() * b.0.len()) as f64
}

async fn login(
    http: &reqwest::Client,
    base: &str,
    email: &str,
    password: &str,
) -> AnyResult<(Duration, u16)> {
    let started = Instant::now();
    let res = http
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await?;
    let status = res.status().as_u16();
    let _ = res.bytes().await?;
    Ok((started.elapsed(), status))
}

#[tokio::main]
async fn main() -> AnyResult<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let (_server, base) = match args.server.clone() {
        Some(base) => (None, base),
        None => {
            let bin = match args.parley.clone() {
                Some(b) => b,
                None => {
                    // target/<profile>/examples/login_timing → target/<profile>/parley
                    let exe = std::env::current_exe()?;
                    let profile = exe.parent().and_then(|p| p.parent()).ok_or("exe path")?;
                    profile.join("parley")
                }
            };
            let (spawned, base) = start_server(bin, dir.path())?;
            (Some(spawned), base)
        }
    };
    let http = reqwest::Client::new();

    // Emails of equal length; the known one gets an account.
    let known = "k000000000@timing.parley.test";
    let unknown = |i: usize| format!("u{i:09}@timing.parley.test");
    assert_eq!(known.len(), unknown(0).len());
    let res = http
        .post(format!("{base}/api/auth/register"))
        .json(
            &json!({"name": "Timing", "email": known, "password": "correct horse battery staple"}),
        )
        .send()
        .await?;
    if !(res.status() == 201 || res.status() == 409) {
        return Err(format!("register: {}", res.status()).into());
    }
    // Same length as each other; neither is the real password.
    let wrong = "wrong-password-0000000";

    let mut known_us = Vec::with_capacity(args.rounds);
    let mut unknown_us = Vec::with_capacity(args.rounds);
    let mut statuses = std::collections::BTreeMap::<(&str, u16), usize>::new();
    let total = args.warmup + args.rounds;
    for i in 0..total {
        let known_first = rand::random::<bool>();
        for turn in 0..2 {
            let is_known = (turn == 0) == known_first;
            let email = if is_known {
                known.to_owned()
            } else {
                unknown(i)
            };
            let (took, status) = login(&http, &base, &email, wrong).await?;
            let kind = if is_known { "known" } else { "unknown" };
            *statuses.entry((kind, status)).or_default() += 1;
            if i >= args.warmup {
                let us = took.as_secs_f64() * 1e6;
                if is_known {
                    known_us.push(us);
                } else {
                    unknown_us.push(us);
                }
            }
        }
    }
    known_us.sort_by(f64::total_cmp);
    unknown_us.sort_by(f64::total_cmp);
    let (k, u) = (Sample(known_us), Sample(unknown_us));
    println!(
        "POST /api/auth/login, {} rounds interleaved (after {} warm-up), {base}",
        args.rounds, args.warmup
    );
    println!("{}", k.line("known email, wrong password"));
    println!("{}", u.line("unknown email"));
    println!(
        "ratio known/unknown: median {:.3}, p90 {:.3}, mean {:.3}; P(known slower) {:.3}",
        k.quantile(0.5) / u.quantile(0.5),
        k.quantile(0.9) / u.quantile(0.9),
        k.mean() / u.mean(),
        superiority(&k, &u),
    );
    println!("statuses: {statuses:?}");
    Ok(())
}
