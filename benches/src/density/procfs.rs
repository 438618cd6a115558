//! Resident memory and CPU time of processes, and the machine's load, from /proc.

use std::time::Duration;

/// What /proc says of one process at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    pub rss_bytes: u64,
    /// User plus system CPU time so far.
    pub cpu: Duration,
}

/// `utime + stime` of a `/proc/<pid>/stat` line, in clock ticks. The command name (field 2) may
/// hold spaces and parentheses: fields are counted after its last `)`.
pub fn cpu_ticks(stat: &str) -> Result<u64, String> {
    let after = stat
        .rfind(')')
        .map(|i| &stat[i + 1..])
        .ok_or("no ')' after the command name")?;
    // After ')': state is field 3, utime field 14, stime field 15.
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |n: usize| -> Result<u64, String> {
        fields
            .get(n - 3)
            .ok_or_else(|| format!("field {n} is missing"))?
            .parse()
            .map_err(|_| format!("field {n} is not a number"))
    };
    Ok(field(14)? + field(15)?)
}

/// `VmRSS` of a `/proc/<pid>/status` text, in bytes.
pub fn rss_bytes(status: &str) -> Result<u64, String> {
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .ok_or("no VmRSS line")?;
    let kib: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .map_err(|_| format!("VmRSS is not a number: {line}"))?;
    Ok(kib * 1024)
}

/// The clock ticks per second the kernel counts CPU time in (`getconf CLK_TCK`).
pub fn ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|t: &u64| *t > 0)
        .unwrap_or(100)
}

/// A process's usage now.
pub fn usage(pid: u32, ticks_per_second: u64) -> Result<Usage, String> {
    let read = |file: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/{file}"))
            .map_err(|e| format!("/proc/{pid}/{file}: {e}"))
    };
    let ticks = cpu_ticks(&read("stat")?).map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
    let rss = rss_bytes(&read("status")?).map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    Ok(Usage {
        rss_bytes: rss,
        cpu: Duration::from_secs_f64(ticks as f64 / ticks_per_second as f64),
    })
}

/// The 1-minute load average.
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_counted_after_a_command_name_with_spaces_and_parentheses() {
        let stat = "4242 (keda (x) y) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 12 0";
        assert_eq!(cpu_ticks(stat).unwrap(), 325);
        assert!(cpu_ticks("4242 keda S 1").is_err());
        assert!(cpu_ticks("1 (k) S 1").unwrap_err().contains("field 14"));
    }

    #[test]
    fn rss_is_read_in_kib_and_given_in_bytes() {
        let status = "Name:\tkeda\nVmPeak:\t  999 kB\nVmRSS:\t   91234 kB\n";
        assert_eq!(rss_bytes(status).unwrap(), 91234 * 1024);
        assert!(rss_bytes("Name: x\n").is_err());
    }
}
