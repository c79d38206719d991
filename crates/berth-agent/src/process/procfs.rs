//! Just enough of `/proc` for the process driver: liveness with a start-time guard against
//! pid reuse, process-group membership, CPU time and resident memory.

use std::fs;

/// Clock ticks per second of the times in `/proc/PID/stat`. Linux fixes `USER_HZ` at 100 for
/// the `/proc` interface on every architecture berth runs on.
const TICKS_PER_SEC: u64 = 100;

/// The fields of `/proc/PID/stat` the driver uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcStat {
    /// One-letter state (`R`, `S`, `Z`, ...).
    pub state: char,
    /// Process group id.
    pub pgrp: i32,
    /// utime + stime + cutime + cstime, in clock ticks.
    pub cpu_ticks: u64,
    /// Start time since boot, in clock ticks (identifies the process together with its pid).
    pub start_ticks: u64,
}

impl ProcStat {
    /// Running or sleeping, i.e. not a zombie or dead.
    pub(crate) fn is_live(&self) -> bool {
        !matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Parses the content of `/proc/PID/stat`.
pub(crate) fn parse_stat(content: &str) -> Option<ProcStat> {
    // The command name is in parentheses and may itself contain spaces and parentheses.
    let rest = &content[content.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Field numbers (1-based) from proc(5): 3 state, 5 pgrp, 14-17 times, 22 starttime.
    let field = |n: usize| fields.get(n - 3).copied();
    let num = |n: usize| field(n).and_then(|f| f.parse::<u64>().ok());
    Some(ProcStat {
        state: field(3)?.chars().next()?,
        pgrp: field(5)?.parse().ok()?,
        cpu_ticks: num(14)? + num(15)? + num(16)? + num(17)?,
        start_ticks: num(22)?,
    })
}

/// Reads `/proc/PID/stat`; `None` when the process does not exist.
pub(crate) fn stat(pid: i32) -> Option<ProcStat> {
    let content = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&content)
}

/// Whether `pid` is still the process that started at `start_ticks` and has not exited.
pub(crate) fn is_alive(pid: i32, start_ticks: u64) -> bool {
    pid > 0 && stat(pid).is_some_and(|s| s.start_ticks == start_ticks && s.is_live())
}

/// Resident memory of `pid` in bytes (`VmRSS`), 0 when unknown.
fn rss_bytes(pid: i32) -> u64 {
    let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) else {
        return 0;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// CPU time (ns, including reaped children) and resident memory (bytes) summed over every
/// live process of the process group `pgid`.
pub(crate) fn group_usage(pgid: i32) -> (u64, u64) {
    let Ok(entries) = fs::read_dir("/proc") else {
        return (0, 0);
    };
    let mut ticks = 0u64;
    let mut rss = 0u64;
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Some(s) = stat(pid) else { continue };
        if s.pgrp == pgid && s.is_live() {
            ticks += s.cpu_ticks;
            rss += rss_bytes(pid);
        }
    }
    (ticks * (1_000_000_000 / TICKS_PER_SEC), rss)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_command_names() {
        let line = "4242 (my (odd) cmd) S 1 4242 4242 0 -1 4194560 100 0 0 0 7 3 2 1 20 0 1 0 \
                    123456 1000000 200 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.state, 'S');
        assert_eq!(s.pgrp, 4242);
        assert_eq!(s.cpu_ticks, 13);
        assert_eq!(s.start_ticks, 123_456);
        assert!(s.is_live());
    }

    #[test]
    fn own_process_is_alive_and_guarded_by_start_time() {
        let me = i32::try_from(std::process::id()).unwrap();
        let s = stat(me).unwrap();
        assert!(is_alive(me, s.start_ticks));
        assert!(!is_alive(me, s.start_ticks + 1));
        assert!(!is_alive(0, 0));
    }
}
