//! `lifeboat demo` runs the FerretDB failover end to end and tells the story.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `lifeboat demo ARGS…` to the end (at most 120 s); returns its stdout and both
/// streams for failure messages. Fails unless it exits 0.
fn demo(args: &[&str]) -> (String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .arg("demo")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start lifeboat demo");
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll lifeboat demo") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("lifeboat demo did not finish within 120s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let all = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(status.success(), "lifeboat demo failed ({status})\n{all}");
    (stdout, all)
}

#[test]
fn demo_completes_the_failover_and_shows_it() {
    let (stdout, all) = demo(&[]);

    assert!(stdout.contains("run Completed"), "the run completes\n{all}");
    for (i, title) in [
        "Demote cluster1 to standby",
        "Promote cluster2 to primary",
        "Wait for cluster2 to serve as primary",
        "Read the new primary's address",
        "Point HAProxy at the new primary",
    ]
    .iter()
    .enumerate()
    {
        let succeeded = stdout
            .lines()
            .any(|l| l.contains(&format!("step {}/5 Succeeded", i + 1)) && l.contains(title));
        assert!(
            succeeded,
            "step {} `{title}` is shown succeeding\n{all}",
            i + 1
        );
    }
    assert!(
        stdout.contains("db operator: cluster2 promoted"),
        "the simulated Percona operator reacts to the promotion\n{all}"
    );
    let new_backend = "+       server primary cluster2-pgbouncer.ferretdb.svc:5432 check";
    let old_backend = "-       server primary cluster1-pgbouncer.ferretdb.svc:5432 check";
    assert!(
        stdout.contains(new_backend) && stdout.contains(old_backend),
        "the haproxy.cfg diff replaces the old primary with the new one\n{all}"
    );
    assert!(
        stdout.contains("alert sent -> run finished (total)"),
        "the timings are shown\n{all}"
    );
}

#[test]
fn demo_with_approval_pauses_then_approves_and_fails_over() {
    let (stdout, all) = demo(&["--with-approval"]);
    let order: Vec<usize> = [
        "run WaitingForApproval",
        "the run waits for a person",
        "approved step 1 of RecoveryRun",
        "step 1/6 Succeeded  On-call engineer approves the failover: approved by",
        "step 6/6 Succeeded  Point HAProxy at the new primary",
        "run Completed",
    ]
    .iter()
    .map(|line| {
        stdout
            .find(line)
            .unwrap_or_else(|| panic!("the demo shows `{line}`\n{all}"))
    })
    .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "the pause is shown, then the approval, then the failover\n{all}"
    );
}
