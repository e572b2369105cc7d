//! Deterministic object names. Every object lifeboat creates has a name derived from what
//! caused it, so a retry, a restart or a duplicate notification finds the existing object
//! (409 AlreadyExists) instead of creating a second one.

use sha2::{Digest, Sha256};

/// Longest name a Kubernetes object (DNS subdomain label used as Job/Pod name) may safely have.
const MAX_NAME: usize = 63;

/// Lowercase DNS-1123 label from arbitrary text: invalid characters become `-`, runs of `-`
/// collapse, leading/trailing `-` are trimmed, and the result is cut to `max` characters.
pub fn sanitize(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let mut out: String = out.trim_matches('-').chars().take(max).collect();
    while out.ends_with('-') {
        out.pop();
    }
    out
}

/// First `len` hex characters of the SHA-256 of the parts, separated by NUL.
pub fn short_hash(parts: &[&str], len: usize) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    hex::encode(h.finalize()).chars().take(len).collect()
}

/// `<readable prefix>-<hash>` within [`MAX_NAME`] characters.
fn with_hash(prefix: &str, parts: &[&str]) -> String {
    let hash = short_hash(parts, 10);
    let prefix = sanitize(prefix, MAX_NAME - hash.len() - 1);
    if prefix.is_empty() {
        hash
    } else {
        format!("{prefix}-{hash}")
    }
}

/// Name of the ReceivedAlert for an Alertmanager alert: keyed on fingerprint + startsAt so
/// repeats, regroupings and HA duplicates map to the same object.
pub fn received_alert_name(alertname: &str, fingerprint: &str, starts_at: &str) -> String {
    with_hash(
        if alertname.is_empty() {
            "alert"
        } else {
            alertname
        },
        &[fingerprint, starts_at],
    )
}

/// Name of the RecoveryRun created for (alert, plan): exactly one run per pair.
pub fn run_name(plan: &str, alert: &str) -> String {
    with_hash(plan, &[plan, alert])
}

/// Name of the Job created by step `index` of a run: adopting it after a restart is a GET.
pub fn job_name(run: &str, index: usize) -> String {
    with_hash(&format!("{run}-s{index}"), &[run, &index.to_string()])
}

/// The Job of step `index` in attempt `attempt` of run `run` (`lifeboat runs retry`): the
/// first attempt's is [`job_name`]; a later attempt gets a Job of its own, so the failed
/// one stays for its logs and the new one is not mistaken for it.
pub fn job_name_in_attempt(run: &str, index: usize, attempt: u32) -> String {
    if attempt <= 1 {
        return job_name(run, index);
    }
    with_hash(
        &format!("{run}-s{index}-a{attempt}"),
        &[run, &index.to_string(), &attempt.to_string()],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_valid_dns_labels_and_stable() {
        let long = "A".repeat(200);
        for name in [
            received_alert_name("DatabaseDown!", "abc", "2024-01-01T00:00:00Z"),
            run_name(&long, "alert"),
            job_name(&long, 3),
            job_name_in_attempt(&long, 3, 7),
            received_alert_name("", "f", "s"),
        ] {
            assert!(name.len() <= MAX_NAME, "{name} too long");
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{name}"
            );
            assert!(!name.starts_with('-') && !name.ends_with('-'), "{name}");
        }
        assert_eq!(run_name("p", "a"), run_name("p", "a"));
        assert_ne!(run_name("p", "a"), run_name("p", "b"));
        assert_ne!(
            received_alert_name("x", "f", "1"),
            received_alert_name("x", "f", "2")
        );
    }

    #[test]
    fn a_retried_run_gets_new_jobs_and_the_first_attempt_keeps_its_names() {
        assert_eq!(job_name_in_attempt("r", 2, 1), job_name("r", 2));
        assert_ne!(job_name_in_attempt("r", 2, 2), job_name("r", 2));
        assert_ne!(
            job_name_in_attempt("r", 2, 2),
            job_name_in_attempt("r", 2, 3)
        );
        assert_eq!(
            job_name_in_attempt("r", 2, 2),
            job_name_in_attempt("r", 2, 2)
        );
    }
}
