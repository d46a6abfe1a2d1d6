//! CPU time and memory of a process, from `/proc/<pid>/stat` and `/proc/<pid>/status`.

use std::time::Instant;

/// One reading of a process's counters.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    /// User plus system CPU time, in clock ticks.
    ticks: u64,
    /// Resident set size, KiB.
    pub(crate) rss_kib: u64,
    /// Peak resident set size, KiB.
    pub(crate) hwm_kib: u64,
    /// Threads.
    pub(crate) threads: u64,
    at: Instant,
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// Reads the counters of `pid` (`None`: this process). `None` if it is gone.
pub(crate) fn sample(pid: Option<u32>) -> Option<Sample> {
    let dir = match pid {
        Some(p) => format!("/proc/{p}"),
        None => "/proc/self".to_owned(),
    };
    let stat = std::fs::read_to_string(format!("{dir}/stat")).ok()?;
    // The command name may hold spaces: fields are counted after its closing paren.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime) of stat(5) are 11 and 12 after the name.
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let status = std::fs::read_to_string(format!("{dir}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Some(Sample {
        ticks,
        rss_kib: field("VmRSS:"),
        hwm_kib: field("VmHWM:"),
        threads: field("Threads:"),
        at: Instant::now(),
    })
}

/// The counters of several processes (a cluster's nodes) added up: CPU time and
/// memory summed, as one server. `None` if any is gone.
pub(crate) fn sample_sum(pids: &[u32]) -> Option<Sample> {
    let mut all = pids.iter().map(|p| sample(Some(*p)));
    let mut total = all.next()??;
    for s in all {
        let s = s?;
        total.ticks += s.ticks;
        total.rss_kib += s.rss_kib;
        total.hwm_kib += s.hwm_kib;
        total.threads += s.threads;
    }
    Some(total)
}

/// CPU used between two samples, in percent of one core.
pub(crate) fn cpu_percent(a: &Sample, b: &Sample) -> f64 {
    let wall = b.at.duration_since(a.at).as_secs_f64();
    if wall <= 0.0 {
        return 0.0;
    }
    (b.ticks.saturating_sub(a.ticks)) as f64 / clock_ticks_per_second() / wall * 100.0
}

/// Busy and total CPU time of the whole machine, in clock ticks (from `/proc/stat`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Machine {
    busy: u64,
    at: Instant,
}

/// Reads the machine's CPU counters.
pub(crate) fn machine() -> Option<Machine> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal: busy is all but idle and iowait.
    let busy = v.iter().take(8).sum::<u64>() - v.get(3)? - v.get(4)?;
    Some(Machine {
        busy,
        at: Instant::now(),
    })
}

/// CPU used by the whole machine between two readings, in percent of one core.
pub(crate) fn machine_cpu_percent(a: &Machine, b: &Machine) -> f64 {
    let wall = b.at.duration_since(a.at).as_secs_f64();
    if wall <= 0.0 {
        return 0.0;
    }
    b.busy.saturating_sub(a.busy) as f64 / clock_ticks_per_second() / wall * 100.0
}

/// Waits (up to `max`) until processes other than `ours` use less than `limit_percent`
/// of one core over two seconds: other work on a 2-core box skews every latency. Returns
/// the other processes' CPU at the end, in percent of one core.
pub(crate) async fn wait_quiet(ours: &[u32], limit_percent: f64, max: std::time::Duration) -> f64 {
    let deadline = Instant::now() + max;
    loop {
        let (m0, p0) = (machine(), ours_sample(ours));
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        let (m1, p1) = (machine(), ours_sample(ours));
        let other = match (m0, m1) {
            (Some(a), Some(b)) => {
                let wall = b.at.duration_since(a.at).as_secs_f64();
                let ours_pct =
                    p1.saturating_sub(p0) as f64 / clock_ticks_per_second() / wall * 100.0;
                (machine_cpu_percent(&a, &b) - ours_pct).max(0.0)
            }
            _ => 0.0,
        };
        if other <= limit_percent || Instant::now() >= deadline {
            return other;
        }
        eprintln!("waiting for a quiet machine: other processes use {other:.0}% of a core");
    }
}

fn ours_sample(ours: &[u32]) -> u64 {
    let me = sample(None).map_or(0, |s| s.ticks);
    me + ours
        .iter()
        .filter_map(|p| sample(Some(*p)))
        .map(|s| s.ticks)
        .sum::<u64>()
}
