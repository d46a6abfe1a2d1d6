//! Two Parley nodes in a cluster for `chat`: one nats-server (scripts/nats-node), one
//! keyspace on the CQL node of `--scylla-uri`, node 1 on 127.0.0.1 and node 2 on
//! 127.0.0.2 (same port). The users are seeded once; both nodes share the token secret.
//! `chat` reports the CPU and memory of both nodes together (the nats-server's CPU is
//! in "other").

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::{System, Target, err, parley_flags, scratch_dir, seed_parley, spawn, store_flags};

fn nats_node() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/nats-node")
}

/// Stops the nats-server started in `dir`.
pub(super) fn stop_nats(dir: &Path) {
    let _ = Command::new(nats_node()).arg("stop").arg(dir).status();
}

async fn wait_listening(addr: SocketAddr) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        if Instant::now() > deadline {
            return Err(format!("no listener on {addr} after 60 s"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

pub(super) async fn start(
    system: System,
    opts: &super::StartOptions,
    port: u16,
    users: usize,
) -> Result<Target, String> {
    let scratch = scratch_dir();
    std::fs::create_dir_all(&scratch).map_err(err)?;
    let dir = tempfile::Builder::new()
        .prefix(&format!("{system}-"))
        .tempdir_in(&scratch)
        .map_err(err)?;
    let nats_dir = dir.path().join("nats");
    let out = Command::new(nats_node())
        .arg("start")
        .arg(&nats_dir)
        // Below the node ports: 18400 takes 14400.
        .env("NATS_PORT", port.saturating_sub(4000).to_string())
        .output()
        .map_err(err)?;
    if !out.status.success() {
        return Err(format!(
            "scripts/nats-node start: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let nats = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let store = store_flags(system, opts)?;
    let mut dirs = Vec::new();
    for n in 1..=2 {
        let d = dir.path().join(format!("node{n}"));
        std::fs::create_dir(&d).map_err(err)?;
        dirs.push(d);
    }
    let accounts = seed_parley(&opts.parley_bin, &dirs[0], users, &store)?;
    // One secret: a token minted for node 1 opens a session on node 2.
    std::fs::copy(dirs[0].join("jwt-secret"), dirs[1].join("jwt-secret")).map_err(err)?;
    let mut nodes = Vec::new();
    let mut children = Vec::new();
    let mut logs = Vec::new();
    for (n, d) in dirs.iter().enumerate() {
        let addr: SocketAddr = ([127, 0, 0, n as u8 + 1], port).into();
        let log = d.join("server.log");
        let mut cmd = Command::new(&opts.parley_bin);
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(d)
            .arg(format!("--listen={addr}"))
            .args(&store)
            .arg(format!("--cluster-nats={nats}"))
            .arg(format!("--node-id=node{}", n + 1))
            .args(parley_flags(opts))
            .env(
                "RUST_LOG",
                std::env::var("PARLEY_LOAD_RUST_LOG").unwrap_or("warn".into()),
            );
        children.push(spawn(cmd, std::fs::File::create(&log).map_err(err)?)?);
        nodes.push(addr);
        logs.push(log);
    }
    let node1 = children.remove(0);
    let mut target = Target {
        system,
        addr: nodes[0],
        pid: Some(node1.id()),
        store_pid: opts.scylla_pid,
        users: accounts,
        child: Some(node1),
        _dir: Some(dir),
        log: Some(logs[0].clone()),
        nodes: nodes.clone(),
        others: children,
        nats_dir: Some(nats_dir),
    };
    for addr in nodes {
        if let Err(e) = wait_listening(addr).await {
            let log = target.log_tail();
            target.stop();
            return Err(format!("{system} did not start: {e}\n{log}"));
        }
    }
    Ok(target)
}
