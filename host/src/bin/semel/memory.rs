//! This process's memory, from `/proc/self/status` (0 where it is not available): for
//! `semel bench`'s report and the server's metrics.

/// A `/proc/self/status` field in bytes (its value is in kB).
fn status_bytes(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Peak resident memory of this process.
pub fn peak_rss_bytes() -> u64 {
    status_bytes("VmHWM:")
}

/// Resident memory of this process now.
pub fn rss_bytes() -> u64 {
    status_bytes("VmRSS:")
}
