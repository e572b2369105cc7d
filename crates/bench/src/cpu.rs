//! CPU time of processes, from `/proc/<pid>/stat`: how the two cores split between the
//! controller and the API servers during the storm.

use std::time::Duration;

/// Clock ticks per second of `/proc/<pid>/stat`'s times: the kernel's `USER_HZ`, fixed at
/// 100 in the ABI of every architecture lifeboat is built for (it is not the kernel's
/// internal `HZ`).
const USER_HZ: u64 = 100;

/// User + system CPU time of every thread of `pid` so far; `None` if it has exited.
pub fn of_process(pid: u32) -> Option<Duration> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// [`of_process`] for this process.
pub fn of_self() -> Option<Duration> {
    parse_stat(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

/// `utime` + `stime` (fields 14 and 15) of a `/proc/<pid>/stat` line. The command name
/// (field 2) is in parentheses and may hold spaces and parentheses itself, so the fields
/// are counted from the last `)`.
pub fn parse_stat(text: &str) -> Option<Duration> {
    let after_name = &text[text.rfind(')')? + 1..];
    // After the name come field 3 (state) onwards: utime is field 14, stime field 15.
    let mut fields = after_name.split_whitespace().skip(14 - 3);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 1000 / USER_HZ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_user_and_system_ticks_after_a_name_with_spaces_and_parentheses() {
        let line = "4242 (tokio (rt) worker) S 1 4242 4242 0 -1 4194560 2093 0 0 0 \
                    250 75 0 0 20 0 4 0 123 0 0";
        assert_eq!(parse_stat(line), Some(Duration::from_millis(3250)));
    }

    #[test]
    fn a_truncated_line_is_not_read_as_zero() {
        assert_eq!(parse_stat("4242 (lifeboat) S 1 4242"), None);
        assert_eq!(parse_stat("no name here"), None);
    }

    #[test]
    fn this_process_counts_the_cpu_it_burns() {
        let before = of_self().expect("/proc/self/stat is readable on Linux");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut x = 0u64;
        loop {
            x = x.wrapping_add(std::hint::black_box(1));
            if x.is_multiple_of(1_000_000) {
                let now = of_self().expect("/proc/self/stat is readable on Linux");
                if now > before {
                    return;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "CPU time stuck at {now:?}"
                );
            }
        }
    }
}
