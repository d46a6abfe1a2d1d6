//! Output: a readable table on stdout and a JSON results file for other harnesses.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::chat::{Latency, Window};

/// The machine, as far as /proc tells.
pub(crate) fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_owned());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_owned();
    // SAFETY: getrlimit with a valid pointer.
    let nofile = unsafe {
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
        r.rlim_cur
    };
    json!({
        "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "cpu_model": model,
        "mem_total_gib": mem_kib.map(|k| (k as f64 / 1024.0 / 1024.0 * 10.0).round() / 10.0),
        "kernel": kernel,
        "nofile_limit": nofile,
    })
}

/// Writes `report` (with the command line and machine added) to `out`, or to a file
/// named after the scenario in the scratch dir; returns the path.
pub(crate) fn write(scenario: &str, mut report: Value, out: Option<PathBuf>) -> PathBuf {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let path = out.unwrap_or_else(|| {
        crate::target::scratch_dir()
            .join("results")
            .join(format!("{scenario}-{now}.json"))
    });
    if let Value::Object(map) = &mut report {
        map.insert("scenario".into(), json!(scenario));
        map.insert("finished_unix".into(), json!(now));
        map.insert(
            "command".into(),
            json!(std::env::args().skip(1).collect::<Vec<_>>()),
        );
        map.insert("machine".into(), machine());
    }
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let text = serde_json::to_string_pretty(&report).unwrap_or_default();
    if let Err(e) = std::fs::write(&path, text) {
        eprintln!("cannot write {}: {e}", path.display());
    }
    path
}

/// A plain text table.
pub(crate) struct Table {
    head: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(head: &[&str]) -> Self {
        Self {
            head: head.iter().map(|s| (*s).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub(crate) fn print(&self) {
        let mut widths: Vec<usize> = self.head.iter().map(String::len).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate() {
                if i < widths.len() {
                    widths[i] = widths[i].max(c.len());
                }
            }
        }
        let line = |cells: &[String]| {
            let parts: Vec<String> = cells
                .iter()
                .enumerate()
                .map(|(i, c)| format!("{c:>w$}", w = widths.get(i).copied().unwrap_or(0)))
                .collect();
            println!("| {} |", parts.join(" | "));
        };
        line(&self.head);
        println!(
            "|{}|",
            widths
                .iter()
                .map(|w| "-".repeat(w + 2))
                .collect::<Vec<_>>()
                .join("|")
        );
        for r in &self.rows {
            line(r);
        }
    }
}

pub(crate) fn f0(x: f64) -> String {
    format!("{x:.0}")
}

pub(crate) fn f1(x: f64) -> String {
    format!("{x:.1}")
}

pub(crate) fn f2(x: f64) -> String {
    format!("{x:.2}")
}

pub(crate) fn opt1(x: Option<f64>) -> String {
    x.map_or("-".into(), f1)
}

/// `p50/p99/p99.9/max` in ms.
pub(crate) fn lat(l: &Latency) -> String {
    format!(
        "{}/{}/{}/{}",
        f2(l.p50_ms),
        f2(l.p99_ms),
        f2(l.p999_ms),
        f1(l.max_ms)
    )
}

/// A chat window as a table row.
pub(crate) fn window_row(label: &str, w: &Window) -> Vec<String> {
    let errors = if w.errors.is_empty() && w.lost == 0 {
        "0".to_owned()
    } else {
        let mut parts: Vec<String> = w.errors.iter().map(|(k, v)| format!("{k}:{v}")).collect();
        if w.lost > 0 {
            parts.push(format!("lost:{}", w.lost));
        }
        parts.join(",")
    };
    vec![
        label.to_owned(),
        f0(w.offered_per_s),
        f0(w.delivered_per_s),
        lat(&w.ack),
        lat(&w.e2e),
        format!("{}/{}", f2(w.send_lag.p50_ms), f2(w.send_lag.p99_ms)),
        errors,
        opt1(w.server_cpu_percent),
        opt1(w.server_cpu_us_per_message),
        opt1(w.server_rss_mib),
        opt1(w.store_cpu_percent),
        opt1(w.generator_cpu_percent),
        opt1(w.other_cpu_percent),
    ]
}

pub(crate) const WINDOW_HEAD: &[&str] = &[
    "system",
    "offered/s",
    "delivered/s",
    "ack ms p50/p99/p99.9/max",
    "e2e ms p50/p99/p99.9/max",
    "send lag ms p50/p99",
    "errors",
    "server CPU %",
    "server CPU µs/msg",
    "server RSS MiB",
    "store CPU %",
    "generator CPU %",
    "other CPU %",
];
