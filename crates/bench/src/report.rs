//! The benchmark's report: every measurement, the targets of SPEC §9 met or not, and the
//! correctness failures; printed as plain tables, or written as JSON.

use std::fmt::Write as _;

use serde::Serialize;

use crate::api_counts::PerRun;
use crate::controller::Memory;
use crate::criterion::Estimate;
use crate::failover::FailoverResult;
use crate::matching::MatchingResult;
use crate::runbook::RunbookResult;
use crate::stats::{Summary, fmt_ms};
use crate::storm::StormResult;

/// What the real section ran on.
#[derive(Clone, Debug, Serialize)]
pub struct ControlPlane {
    /// The Kubernetes release the control plane was built from
    /// (`kube_server::kubernetes_release`).
    pub kubernetes: String,
    /// What the API server's `/version` says (`gitVersion`, as scripts/build-kube.sh stamps it).
    pub server_version: String,
    pub binary: String,
    /// How requests were counted.
    pub counted_from: String,
}

/// The machine the numbers come from.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub cpu: String,
    pub kernel: String,
    /// How the CPUs were split between the harness and the controller (none: shared).
    pub placement: Option<crate::placement::Placement>,
}

impl Machine {
    pub fn detect() -> Machine {
        let placement = crate::placement::Placement::current().cloned();
        // This process's own CPUs are only the harness's half when they were split.
        let cores = match &placement {
            Some(p) => p.harness.len() + p.controller.len(),
            None => std::thread::available_parallelism()
                .map(usize::from)
                .unwrap_or(1),
        };
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".to_string());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        Machine {
            cores,
            cpu,
            kernel,
            placement,
        }
    }
}

/// Controller memory at the moments that matter.
#[derive(Clone, Debug, Default, Serialize)]
pub struct MemoryReport {
    /// Started, caches synced, nothing loaded.
    pub idle: Option<Memory>,
    /// After the failover repetitions.
    pub after_failover: Option<Memory>,
    /// With the storm's plans, alerts and runs all present (and peak so far).
    pub loaded: Option<Memory>,
    /// The same objects present, once the resident size has settled after the storm.
    pub settled: Option<Memory>,
    /// How long settling took, seconds.
    pub settle_s: f64,
    pub plans: usize,
    pub alerts: usize,
    pub runs: usize,
}

/// One target of SPEC §9.
#[derive(Clone, Debug, Serialize)]
pub struct Target {
    pub what: String,
    pub target: String,
    pub measured: String,
    /// `None` when it could not be measured, or is reported without a target here.
    pub met: Option<bool>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub mode: String,
    pub machine: Machine,
    /// The `lifeboat` binary run as the controller.
    pub controller: String,
    pub failover: Option<FailoverResult>,
    pub runbook: Option<RunbookResult>,
    pub kubectl_startup: Option<Summary>,
    /// Runbook median / lifeboat failover median.
    pub ratio: Option<f64>,
    /// The failover's minimum requests sent by a plain client, in sequence.
    pub floor: Option<crate::floor::FloorResult>,
    /// lifeboat failover median / floor median.
    pub floor_ratio: Option<f64>,
    pub storm: Option<StormResult>,
    pub memory: MemoryReport,
    pub matching: Option<MatchingResult>,
    /// kube-runtime's scheduler holding a reconcile request that is due at once.
    pub scheduler_hop: Option<crate::scheduler_hop::SchedulerHopResult>,
    pub criterion: Vec<Estimate>,
    /// The real control planes, when the run was on them (`--real`).
    pub control_plane: Option<ControlPlane>,
    pub targets: Vec<Target>,
    pub failures: Vec<String>,
    pub total_s: f64,
}

fn met(b: bool) -> Option<bool> {
    Some(b)
}

fn p99(s: &Option<Summary>) -> String {
    s.map(|s| format!("p99 {}", fmt_ms(s.p99_ms)))
        .unwrap_or_else(|| "not measured".into())
}

/// Requests per run by (cluster, verb, resource), the minimum where it applies, the
/// server's median time per request where known (real servers), and the totals.
fn api_table(o: &mut String, api: &PerRun) {
    let timed = api.rows.iter().any(|r| r.server_ms.is_some());
    let _ = write!(
        o,
        "  {:<7} {:<8} {:<32} {:>8} {:>8}",
        "cluster", "verb", "resource", "per run", "minimum"
    );
    let _ = writeln!(o, "{}", if timed { "  server median" } else { "" });
    for r in &api.rows {
        let _ = write!(
            o,
            "  {:<7} {:<8} {:<32} {:>8.2} {:>8}",
            r.cluster,
            r.verb,
            r.resource,
            r.per_run,
            r.minimum.map_or("-".into(), |m| m.to_string()),
        );
        let server = match (timed, r.server_ms) {
            (false, _) => String::new(),
            (true, Some(ms)) => format!("{:>15}", fmt_ms(ms)),
            (true, None) => format!("{:>15}", "-"),
        };
        let _ = writeln!(o, "{server}");
    }
    let by_verb: Vec<String> = api
        .by_verb()
        .iter()
        .map(|(v, n)| format!("{v} {n:.1}"))
        .collect();
    let _ = writeln!(
        o,
        "  total {:.1} per run (minimum {}); by verb: {}",
        api.total(),
        api.minimum_total(),
        by_verb.join(", ")
    );
}

impl Report {
    /// Fills `targets` from the measurements.
    pub fn judge(&mut self) {
        let mut t = Vec::new();
        let f = self.failover.as_ref();
        let latency = |what: &str, target: &str, s: Option<Summary>, limit_ms: f64| Target {
            what: what.into(),
            target: target.into(),
            measured: p99(&s),
            met: s.map(|s| s.p99_ms <= limit_ms),
        };
        t.push(latency(
            "webhook POST → ReceivedAlert stored",
            "p99 ≤ 5 ms",
            f.and_then(|f| f.post_to_200),
            5.0,
        ));
        t.push(latency(
            "ReceivedAlert stored → first step started",
            "p99 ≤ 20 ms",
            f.and_then(|f| f.stored_to_first_step),
            20.0,
        ));
        t.push(latency(
            "failover webhook → run Completed",
            "p99 ≤ 50 ms",
            f.and_then(|f| f.webhook_to_completed),
            50.0,
        ));
        t.push(Target {
            what: "failover vs kubectl runbook (medians)".into(),
            target: "≥ 20× faster".into(),
            measured: self
                .ratio
                .map(|r| format!("{r:.1}×"))
                .unwrap_or_else(|| "not measured".into()),
            met: self.ratio.map(|r| r >= 20.0),
        });
        t.push(Target {
            what: "failover vs its floor, the minimum requests sent in sequence (medians)".into(),
            target: "≤ 1.3×".into(),
            measured: self
                .floor_ratio
                .map(|r| format!("{r:.2}×"))
                .unwrap_or_else(|| "not measured".into()),
            met: self.floor_ratio.map(|r| r <= 1.3),
        });
        if let Some(f) = f {
            let min = crate::api_counts::failover_minimum_total();
            let gets = f.api.target_gets();
            t.push(Target {
                what: "API requests per failover run".into(),
                target: format!("counted; no redundant GETs (minimum {min}, 1 GET)"),
                measured: format!("{:.1} total, {gets:.1} GET on db/proxy", f.api.total()),
                met: met(gets <= 1.0),
            });
        }
        if let Some(s) = &self.storm {
            let rate = match (s.stored_per_s, s.processed_per_s) {
                (Some(a), Some(b)) => Some(a.min(b)),
                _ => None,
            };
            t.push(Target {
                what: format!(
                    "alert storm ({} alerts, webhooks of {}): stored and processed",
                    s.alerts, s.batch
                ),
                // The target is the simulator's; a real server's etcd commits bound the
                // rate, so there it is reported against the server's own writes.
                target: if self.mode == "real" {
                    "reported, with the server's own writes/s".into()
                } else {
                    "≥ 2000 alerts/s".into()
                },
                measured: format!(
                    "stored {}/s, processed {}/s (server writes {}/s, ceiling {}/s)",
                    s.stored_per_s.map_or("-".into(), |v| format!("{v:.0}")),
                    s.processed_per_s.map_or("-".into(), |v| format!("{v:.0}")),
                    s.server_writes_per_s
                        .map_or("-".into(), |v| format!("{v:.0}")),
                    s.ceiling_per_s.map_or("-".into(), |v| format!("{v:.0}"))
                ),
                met: if self.mode == "real" {
                    None
                } else {
                    rate.map(|r| r >= 2000.0)
                },
            });
            t.push(Target {
                what: "alert storm re-send".into(),
                target: "0 runs created".into(),
                measured: format!(
                    "{} runs, {} alerts created",
                    s.resend_runs_created, s.resend_alerts_created
                ),
                met: met(s.resend_runs_created == 0 && s.resend_alerts_created == 0),
            });
        }
        if let Some(m) = &self.matching {
            t.push(Target {
                what: format!("match one alert against {} plans (index)", m.plans),
                target: "≤ 50 µs".into(),
                measured: p99(&m.index),
                met: m.index.map(|s| s.p99_ms * 1000.0 <= 50.0),
            });
        }
        let mem = &self.memory;
        if self.storm.is_some() {
            t.push(Target {
                what: format!(
                    "controller memory, {} plans + {} alerts + {} runs",
                    mem.plans, mem.alerts, mem.runs
                ),
                target: "≤ 100 MiB RSS, loaded".into(),
                measured: mem
                    .loaded
                    .map(|m| format!("RSS {:.0} MiB (peak {:.0} MiB)", m.rss_mib, m.hwm_mib))
                    .unwrap_or_else(|| "not measured".into()),
                met: mem.loaded.map(|m| m.rss_mib <= 100.0),
            });
        }
        self.targets = t;
    }

    /// The report as plain-text tables.
    pub fn render(&self) -> String {
        let mut o = String::new();
        let m = &self.machine;
        let _ = writeln!(
            o,
            "lifeboat-bench ({} mode) on {} core(s), {}, Linux {}; {:.0} s\ncontroller: {}",
            self.mode, m.cores, m.cpu, m.kernel, self.total_s, self.controller
        );
        let _ = match &m.placement {
            Some(p) => writeln!(
                o,
                "CPUs: harness and simulated clusters {:?}; controller, kubectl runbook and floor client {:?}",
                p.harness, p.controller
            ),
            None => writeln!(o, "CPUs: shared by every process"),
        };
        match &self.control_plane {
            Some(cp) => {
                let _ = writeln!(
                    o,
                    "on three real control planes (Kubernetes {}: etcd, kube-apiserver, \
                     kube-controller-manager; {}, /version {}); requests counted from {}\n",
                    cp.kubernetes, cp.binary, cp.server_version, cp.counted_from
                );
            }
            None => {
                let _ = writeln!(o, "on simulated clusters\n");
            }
        }
        let _ = writeln!(o, "Latency (client-side watch timing)");
        let mut rows: Vec<(String, Option<Summary>)> = Vec::new();
        if let Some(f) = &self.failover {
            rows.push(("webhook POST → 200 (alert stored)".into(), f.post_to_200));
            rows.push(("webhook POST → ReceivedAlert seen".into(), f.post_to_stored));
            rows.push(("ReceivedAlert → RecoveryRun seen".into(), f.stored_to_run));
            rows.push((
                "ReceivedAlert → first step started".into(),
                f.stored_to_first_step,
            ));
            rows.push((
                "failover: webhook → run Completed".into(),
                f.webhook_to_completed,
            ));
        }
        if let Some(fl) = &self.floor {
            rows.push((
                format!("floor: the {} minimum requests", fl.requests_per_run),
                fl.wall,
            ));
        }
        if let Some(r) = &self.runbook {
            rows.push(("failover: kubectl runbook (bash)".into(), r.wall));
        }
        rows.push(("kubectl start-up alone".into(), self.kubectl_startup));
        if let Some(mt) = &self.matching {
            rows.push((format!("match vs {} plans (index)", mt.plans), mt.index));
            rows.push((format!("match vs {} plans (linear)", mt.plans), mt.linear));
        }
        if let Some(h) = &self.scheduler_hop {
            rows.push(("kube-runtime scheduler hop (due now)".into(), h.hop));
        }
        let _ = writeln!(
            o,
            "  {:<40} {:>5} {:>10} {:>10} {:>10} {:>10}",
            "what", "n", "median", "p90", "p99", "max"
        );
        for (what, s) in rows {
            match s {
                Some(s) => {
                    let _ = writeln!(
                        o,
                        "  {:<40} {:>5} {:>10} {:>10} {:>10} {:>10}",
                        what,
                        s.n,
                        fmt_ms(s.median_ms),
                        fmt_ms(s.p90_ms),
                        fmt_ms(s.p99_ms),
                        fmt_ms(s.max_ms)
                    );
                }
                None => {
                    let _ = writeln!(o, "  {what:<40} not measured");
                }
            }
        }
        if let Some(r) = self.ratio {
            let _ = writeln!(
                o,
                "  kubectl runbook / lifeboat failover (medians): {r:.1}×"
            );
        }
        if let Some(r) = self.floor_ratio {
            let _ = writeln!(o, "  lifeboat failover / floor (medians): {r:.2}×");
        }
        if let Some(r) = &self.runbook
            && let Some(why) = &r.skipped
        {
            let _ = writeln!(o, "  runbook not measured: {why}");
        }

        if let Some(f) = &self.failover {
            let _ = writeln!(
                o,
                "\nAPI requests per failover run through lifeboat (mean over {} runs; watches excluded)",
                f.api.runs
            );
            api_table(&mut o, &f.api);
        }
        if let Some(r) = &self.runbook
            && r.api.runs > 0
        {
            if self.control_plane.is_some() {
                let _ = writeln!(
                    o,
                    "\nAPI requests per failover run as the kubectl runbook (mean over {} runs)",
                    r.api.runs
                );
                api_table(&mut o, &r.api);
            } else {
                let rows: Vec<String> = r
                    .api
                    .rows
                    .iter()
                    .map(|x| format!("{} {} {} {:.1}", x.cluster, x.verb, x.resource, x.per_run))
                    .collect();
                let _ = writeln!(
                    o,
                    "  kubectl runbook, per run: {:.1} resource requests ({}); discovery requests are not counted by the simulator",
                    r.api.total(),
                    rows.join(", ")
                );
            }
        }
        if self.control_plane.is_some()
            && let (Some(f), Some(r)) = (&self.failover, &self.runbook)
        {
            let _ = writeln!(
                o,
                "  per failover run: lifeboat {:.1} (minimum {}), kubectl runbook {:.1} (minimum {}: \
                 the four operations)",
                f.api.total(),
                f.api.minimum_total(),
                r.api.total(),
                r.api.minimum_total()
            );
        }

        if let Some(s) = &self.storm {
            let fmt = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.2} s"));
            let rate = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.0}/s"));
            let _ = writeln!(
                o,
                "\nAlert storm: {} plans, {} alerts in webhooks of {} ({} in flight)",
                s.plans,
                s.alerts,
                s.batch,
                crate::storm::SEND_CONCURRENCY
            );
            let _ = writeln!(
                o,
                "  the server's own writes         {:>10}  ({} ConfigMaps created, {} in flight, just before)",
                rate(s.server_writes_per_s),
                crate::storm::WRITES,
                crate::storm::WRITE_CONCURRENCY
            );
            let _ = writeln!(
                o,
                "  plans loaded and validated      {}",
                fmt(s.plans_validated_s)
            );
            let _ = writeln!(
                o,
                "  alerts stored (all 200s)        {:>10}  {}",
                fmt(s.stored_s),
                rate(s.stored_per_s)
            );
            let _ = writeln!(
                o,
                "  alerts processed                {:>10}  {}",
                fmt(s.processed_s),
                rate(s.processed_per_s)
            );
            let _ = writeln!(
                o,
                "  runs finished                   {:>10}  {}",
                fmt(s.runs_finished_s),
                rate(s.runs_per_s)
            );
            let _ = writeln!(
                o,
                "  re-send answered                {:>10}  {}; created {} alerts, {} runs",
                fmt(s.resend_s),
                rate(s.resend_per_s),
                s.resend_alerts_created,
                s.resend_runs_created
            );
            let _ = writeln!(
                o,
                "  present: {} alerts, {} runs ({} Completed)",
                s.alerts_present, s.runs_present, s.runs_completed
            );
            if let Some(api) = &s.requests {
                let rows: Vec<String> = api
                    .rows
                    .iter()
                    .map(|x| format!("{} {} {} {:.2}", x.cluster, x.verb, x.resource, x.per_run))
                    .collect();
                let _ = writeln!(
                    o,
                    "  lifeboat's requests per alert   {:>10.2}  ({:.2} writes: {})",
                    api.total(),
                    api.writes(),
                    rows.join(", ")
                );
            }
            if !s.events.is_empty() {
                let outcomes: Vec<String> = s
                    .events
                    .iter()
                    .map(|(outcome, n)| format!("{outcome} {n}"))
                    .collect();
                let _ = writeln!(
                    o,
                    "  the controller's Events         {}  (a full queue drops Events; the runs' status records every step)",
                    outcomes.join(", ")
                );
            }
            if let (Some(ceiling), Some(w), Some(api)) =
                (s.ceiling_per_s, s.server_writes_per_s, &s.requests)
            {
                let _ = writeln!(
                    o,
                    "  ceiling                         {:>10}  the server's own writes ({w:.0}/s) ÷ {:.2} writes per alert: \
                     the most this server takes were the controller free",
                    rate(Some(ceiling)),
                    api.writes()
                );
            }
            if let Some(c) = &s.cpu {
                let per_alert = |secs: f64| secs * 1000.0 / s.alerts.max(1) as f64;
                let servers = if c.servers_include_harness {
                    "simulated clusters (with the harness, same process)"
                } else {
                    "control planes"
                };
                let _ = writeln!(
                    o,
                    "  CPU, first POST → 1 s quiet     {:>8.2} s wall on {} core(s): controller {:.2} s ({:.2} ms per alert), \
                     {servers} {:.2} s ({:.2} ms per alert)",
                    c.wall_s,
                    self.machine.cores,
                    c.controller_s,
                    per_alert(c.controller_s),
                    c.servers_s,
                    per_alert(c.servers_s)
                );
            }
        }

        let mem = &self.memory;
        let fmt_mem = |m: Option<Memory>| {
            m.map_or("not measured".into(), |m| {
                format!("RSS {:.1} MiB, peak {:.1} MiB", m.rss_mib, m.hwm_mib)
            })
        };
        let _ = writeln!(o, "\nController memory (/proc/<pid>/status VmRSS, VmHWM)");
        let _ = writeln!(o, "  idle (caches synced)      {}", fmt_mem(mem.idle));
        let _ = writeln!(
            o,
            "  after the failovers       {}",
            fmt_mem(mem.after_failover)
        );
        if self.storm.is_some() {
            let _ = writeln!(
                o,
                "  {} plans/alerts/runs   {}",
                mem.plans,
                fmt_mem(mem.loaded)
            );
            let _ = writeln!(
                o,
                "  … settled ({:.1} s later) {}",
                mem.settle_s,
                fmt_mem(mem.settled)
            );
        }

        if self.control_plane.is_some() {
            // The real section measures no engine microbenchmarks.
        } else if !self.criterion.is_empty() {
            let _ = writeln!(o, "\nEngine microbenchmarks (criterion, target/criterion)");
            for e in &self.criterion {
                let _ = writeln!(
                    o,
                    "  {:<50} median {}",
                    e.id,
                    fmt_ms(e.median_ns / 1_000_000.0)
                );
            }
        } else {
            let _ = writeln!(
                o,
                "\nEngine microbenchmarks: no criterion results found (run `cargo bench -p lifeboat-engine` first)"
            );
        }

        let _ = writeln!(o, "\nTargets (SPEC §9)");
        for t in &self.targets {
            let verdict = match t.met {
                Some(true) => "met",
                Some(false) => "NOT met",
                // Not measured (the measured column says so), or reported without a target.
                None => "not judged",
            };
            let _ = writeln!(
                o,
                "  {:<58} {:<30} {:<40} {}",
                t.what, t.target, t.measured, verdict
            );
        }
        let _ = writeln!(o);
        if self.failures.is_empty() {
            let _ = writeln!(o, "Correctness checks: all passed");
        } else {
            let _ = writeln!(o, "Correctness checks FAILED ({}):", self.failures.len());
            for f in &self.failures {
                let _ = writeln!(o, "  - {f}");
            }
        }
        o
    }
}
