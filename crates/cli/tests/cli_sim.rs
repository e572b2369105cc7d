//! `lifeboat sim`: serves the named clusters, writes their kubeconfigs, stops on Ctrl-C.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Stdio;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::Command;

async fn client_from(path: &std::path::Path) -> kube::Client {
    let kubeconfig = Kubeconfig::read_from(path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_serves_each_named_cluster_until_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .args(["sim", "east", "west", "--dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let paths = [
        dir.path().join("east.kubeconfig"),
        dir.path().join("west.kubeconfig"),
    ];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !paths.iter().all(|p| p.exists()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "lifeboat sim did not write both kubeconfigs within 30s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Each kubeconfig reaches its own cluster: a namespace made in one is absent in the other.
    let east = client_from(&paths[0]).await;
    let west = client_from(&paths[1]).await;
    let mut ns = Namespace::default();
    ns.metadata.name = Some("only-in-east".into());
    Api::<Namespace>::all(east.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let names = |list: kube::core::ObjectList<Namespace>| -> Vec<String> {
        list.items
            .into_iter()
            .filter_map(|n| n.metadata.name)
            .collect()
    };
    let east_ns = names(
        Api::<Namespace>::all(east)
            .list(&ListParams::default())
            .await
            .unwrap(),
    );
    let west_ns = names(
        Api::<Namespace>::all(west)
            .list(&ListParams::default())
            .await
            .unwrap(),
    );
    assert!(east_ns.contains(&"only-in-east".to_string()), "{east_ns:?}");
    assert!(
        !west_ns.contains(&"only-in-east".to_string()),
        "{west_ns:?}"
    );

    let pid = Pid::from_raw(child.id().unwrap() as i32);
    kill(pid, Signal::SIGINT).unwrap();
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("lifeboat sim stops within 30s of Ctrl-C")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "Ctrl-C is a clean stop, got {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    for p in &paths {
        assert!(
            stdout.contains(&p.display().to_string()),
            "the kubeconfig paths are printed: {stdout}"
        );
    }
}
