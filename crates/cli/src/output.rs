//! Formatting for people: tables, ages, durations, run details and small diffs.

use std::fmt::Write as _;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use lifeboat_api::{ApprovalDecision, RecoveryRun, RunPhase, StepPhase, StepStatus};

/// Left-aligned columns separated by three spaces, like `kubectl get`.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut l = String::new();
        for (i, cell) in cells.enumerate() {
            let width = widths.get(i).copied().unwrap_or(0);
            let _ = write!(l, "{cell:<width$}   ");
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&mut headers.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

/// Age like kubectl (`42s`, `5m`, `3h`, `2d`).
pub fn age(t: &Time) -> String {
    let secs = jiff::Timestamp::now().as_second() - t.0.as_second();
    let secs = secs.max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 2 * 3600 => format!("{}m", s / 60),
        s if s < 2 * 86400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

/// A duration for people: `850ms`, `2.4s`, `3m05s`.
pub fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        let s = d.as_secs();
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

/// The span between two API timestamps. They travel with second precision, so a span
/// shorter than a second reads `<1s` rather than a made-up number of milliseconds.
pub fn span(from: Option<&Time>, to: Option<&Time>) -> Option<String> {
    let (from, to) = (from?, to?);
    let d = to.0.duration_since(from.0);
    let d = Duration::try_from(d).unwrap_or_default();
    if d < Duration::from_secs(1) {
        return Some("<1s".into());
    }
    Some(duration(d))
}

/// UTC wall clock with milliseconds (`10:22:09.123`).
pub fn clock(t: jiff::Timestamp) -> String {
    t.strftime("%H:%M:%S%.3f").to_string()
}

pub fn time(t: Option<&Time>) -> String {
    t.map(|t| t.0.to_string()).unwrap_or_else(|| "-".into())
}

pub fn run_phase(run: &RecoveryRun) -> RunPhase {
    run.status.as_ref().map(|s| s.phase).unwrap_or_default()
}

pub fn step_phase(p: StepPhase) -> &'static str {
    match p {
        StepPhase::Pending => "Pending",
        StepPhase::Running => "Running",
        StepPhase::Succeeded => "Succeeded",
        StepPhase::Failed => "Failed",
        StepPhase::Skipped => "Skipped",
        StepPhase::Cancelled => "Cancelled",
    }
}

/// `k/n` steps finished.
pub fn progress(run: &RecoveryRun) -> String {
    if let Some(p) = run.status.as_ref().and_then(|s| s.progress.clone()) {
        return p;
    }
    let done = run
        .status
        .as_ref()
        .map(|s| {
            s.steps
                .iter()
                .filter(|st| st.phase == StepPhase::Succeeded)
                .count()
        })
        .unwrap_or(0);
    format!("{done}/{}", run.spec.steps.len())
}

/// The status of step `index`, if the controller has recorded one.
pub fn step_status(run: &RecoveryRun, index: usize) -> Option<&StepStatus> {
    let status = run.status.as_ref()?;
    status.steps.iter().find(|s| s.index as usize == index)
}

/// The name a person sees for step `index`.
pub fn step_title(run: &RecoveryRun, index: usize) -> String {
    step_status(run, index)
        .and_then(|s| s.title.clone())
        .or_else(|| run.spec.steps.get(index).map(|s| s.display_name()))
        .unwrap_or_else(|| format!("step {}", index + 1))
}

/// Compact JSON on one line, for rendered patches and values.
pub fn json(v: &serde_json::Value) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| v.to_string())
}

/// Everything about a run, for `lifeboat runs show`.
pub fn run_details(run: &RecoveryRun) -> String {
    let mut o = String::new();
    let name = run.metadata.name.as_deref().unwrap_or("?");
    let ns = run.metadata.namespace.as_deref().unwrap_or("?");
    let status = run.status.clone().unwrap_or_default();
    let _ = writeln!(o, "Run:        {name}  (namespace {ns})");
    let _ = writeln!(
        o,
        "Plan:       {}",
        run.spec
            .plan_name
            .as_deref()
            .unwrap_or("- (created by hand)")
    );
    let labels: Vec<String> = run
        .spec
        .alert_spec
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let _ = writeln!(
        o,
        "Alert:      {}  {{{}}}",
        run.spec.alert_spec.name,
        labels.join(", ")
    );
    if run.spec.is_dry_run() {
        let _ = writeln!(
            o,
            "Dry run:    yes (writes sent with dryRun=All, not applied)"
        );
    }
    if let Some(sa) = &run.spec.service_account_name {
        let _ = writeln!(o, "Acts as:    serviceaccount {sa}");
    }
    let _ = writeln!(
        o,
        "Phase:      {}  ({} steps done)",
        status.phase.as_str(),
        progress(run)
    );
    let _ = writeln!(
        o,
        "Started:    {}   Finished: {}{}",
        time(status.started_at.as_ref()),
        time(status.finished_at.as_ref()),
        span(status.started_at.as_ref(), status.finished_at.as_ref())
            .map(|d| format!("   ({d})"))
            .unwrap_or_default()
    );
    if let Some(m) = &status.message {
        let _ = writeln!(o, "Message:    {m}");
    }
    if status.attempt() > 1 {
        let _ = writeln!(o, "Attempt:    {}", status.attempt());
    }
    for a in &status.previous_attempts {
        let _ = writeln!(
            o,
            "  attempt {}: {} at {}: {}",
            a.attempt,
            a.phase.as_str(),
            time(a.finished_at.as_ref()),
            a.message.as_deref().unwrap_or("-")
        );
    }
    let _ = writeln!(o, "\nSteps:");
    let statuses = run
        .status
        .as_ref()
        .map(|s| s.steps.as_slice())
        .unwrap_or_default();
    write_steps(&mut o, &run.spec.steps, statuses);
    if !run.spec.finally.is_empty() {
        let _ = writeln!(o, "\nFinally:");
        let statuses = run
            .status
            .as_ref()
            .map(|s| s.finally.as_slice())
            .unwrap_or_default();
        write_steps(&mut o, &run.spec.finally, statuses);
    }
    if !status.notifications.is_empty() {
        let _ = writeln!(o, "\nNotifications:");
        for n in &status.notifications {
            let _ = writeln!(
                o,
                "  {} (#{}): {}  at {}",
                n.event.as_str(),
                n.index + 1,
                n.message,
                time(n.time.as_ref())
            );
        }
    }
    if !status.values.is_empty() {
        let _ = writeln!(o, "\nValues:");
        for (k, v) in &status.values {
            let _ = writeln!(o, "  {k} = {}", json(v));
        }
    }
    if !status.conditions.is_empty() {
        let _ = writeln!(o, "\nConditions:");
        for c in &status.conditions {
            let c = serde_json::to_value(c).unwrap_or_default();
            let field = |k: &str| c.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
            let _ = writeln!(
                o,
                "  {}={}  reason={}  since {}  {}",
                field("type"),
                field("status"),
                field("reason"),
                field("lastTransitionTime"),
                field("message")
            );
        }
    }
    o
}

/// A line diff of two texts: `-` removed, `+` added, ` ` kept (longest common subsequence;
/// meant for the small objects the demo shows).
pub fn diff(before: &str, after: &str) -> String {
    let a: Vec<&str> = before.lines().collect();
    let b: Vec<&str> = after.lines().collect();
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut out = String::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            let _ = writeln!(out, "  {}", a[i]);
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            let _ = writeln!(out, "- {}", a[i]);
            i += 1;
        } else {
            let _ = writeln!(out, "+ {}", b[j]);
            j += 1;
        }
    }
    out
}

/// One block per step: phase, cluster, attempts, timing, message, what it rendered, its
/// evidence and decisions.
fn write_steps(o: &mut String, steps: &[lifeboat_api::Step], statuses: &[StepStatus]) {
    for (i, step) in steps.iter().enumerate() {
        let st = statuses.iter().find(|s| s.index as usize == i);
        let phase = st.map(|s| step_phase(s.phase)).unwrap_or("Pending");
        let _ = writeln!(
            o,
            "  {}. {}  [{}]  {}",
            i + 1,
            st.and_then(|s| s.title.clone())
                .unwrap_or_else(|| step.display_name()),
            step.type_,
            phase
        );
        let cluster = st
            .and_then(|s| s.cluster.clone())
            .or_else(|| step.cluster.clone())
            .unwrap_or_else(|| "(local)".into());
        let _ = writeln!(o, "       cluster:   {cluster}");
        if let Some(st) = st {
            let _ = writeln!(o, "       attempts:  {}", st.attempts);
            if st.started_at.is_some() {
                let _ = writeln!(
                    o,
                    "       started:   {}   finished: {}{}",
                    time(st.started_at.as_ref()),
                    time(st.finished_at.as_ref()),
                    span(st.started_at.as_ref(), st.finished_at.as_ref())
                        .map(|d| format!("   ({d})"))
                        .unwrap_or_default()
                );
            }
            if let Some(m) = &st.message {
                let _ = writeln!(o, "       message:   {m}");
            }
            if let Some(r) = &st.rendered {
                let _ = writeln!(o, "       rendered:  {}", json(r));
            }
            if let Some(j) = &st.job_name {
                let _ = writeln!(o, "       job:       {j}");
            }
            for (n, e) in st.evidence.iter().enumerate() {
                let label = if n == 0 { "evidence:" } else { "" };
                let mark = if e.passed { "holds" } else { "FAILS" };
                let _ = writeln!(
                    o,
                    "       {label:<10} {mark}  {}  (observed: {})",
                    e.assertion, e.observed
                );
            }
            for (n, a) in st.approvals.iter().enumerate() {
                let label = if n == 0 { "decisions:" } else { "" };
                let verb = match a.decision {
                    ApprovalDecision::Approve => "approved",
                    ApprovalDecision::Reject => "rejected",
                };
                let _ = writeln!(
                    o,
                    "       {label:<10} {verb} by {} at {}{}",
                    a.approver,
                    time(a.time.as_ref()),
                    a.reason
                        .as_deref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                );
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn diff_marks_changed_lines() {
        let d = diff("a\nb\nc\n", "a\nx\nc\n");
        assert_eq!(d, "  a\n- b\n+ x\n  c\n");
    }

    #[test]
    fn table_aligns_columns() {
        let t = table(
            &["NAME", "PHASE"],
            &[vec!["long-name".into(), "Completed".into()]],
        );
        assert_eq!(t, "NAME        PHASE\nlong-name   Completed\n");
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(Duration::from_millis(12)), "12ms");
        assert_eq!(duration(Duration::from_millis(2400)), "2.4s");
        assert_eq!(duration(Duration::from_secs(185)), "3m05s");
    }
}
