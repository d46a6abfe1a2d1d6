//! The web client in a real browser: starts the real `parley serve` binary and runs
//! `tests/browser/chat.test.mjs` (Node's test runner driving Debian's Chromium through
//! playwright-core) against it. Two people register, add each other and chat; one goes
//! offline, misses messages, comes back and sees them in order with none twice.
//!
//! What is missing is installed first by `tests/browser/install.sh` (apt's chromium,
//! `npm ci` from the lock file; idempotent), so the README's test command needs no setup.
//! Where that cannot be done (no node, not root, no registry) the test says so in one
//! line and passes. Screenshots
//! (desktop and phone sizes) land in `target/browser-screenshots/`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "common/server.rs"]
mod server;
use server::Server;

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

/// Why the browser test cannot run here, if it cannot.
fn missing(dir: &Path) -> Option<String> {
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        return Some("node is not installed".into());
    }
    if !chromium().exists() {
        return Some(format!("{} is not installed", chromium().display()));
    }
    if !dir.join("node_modules/playwright-core").exists() {
        return Some("playwright-core is not installed".into());
    }
    None
}

#[tokio::test]
async fn two_people_chat_in_chromium_and_one_catches_up_after_being_offline() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    if missing(&dir).is_some() {
        // Its own output goes to the harness's capture; only the verdict below matters.
        let _ = Command::new("sh").arg(dir.join("install.sh")).output();
    }
    if let Some(why) = missing(&dir) {
        // Straight to stderr, past the harness's capture, so the skip is seen.
        let _ = writeln!(
            std::io::stderr(),
            "browser test skipped: {why}; run tests/browser/install.sh to set it up"
        );
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), "info", &[]).await;
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target dir")
        .join("browser-screenshots");
    let out = tokio::process::Command::new("node")
        .args(["--test", "--test-reporter=spec", "chat.test.mjs"])
        .current_dir(&dir)
        .env("PARLEY_URL", server.base())
        .env("CHROMIUM", chromium())
        .env("SCREENSHOT_DIR", &shots)
        .output()
        .await
        .expect("node runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "the browser test failed:\n{report}");
    eprintln!("screenshots in {}", shots.display());
}
