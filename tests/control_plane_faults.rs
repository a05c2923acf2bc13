//! The control plane under faults, with real `flowmesh control-plane` processes on 127.0.0.1:
//! kill -9 and restart, leader failover under a stream of writes, catch-up by log and by
//! snapshot, linearizable reads across nodes, membership changes under writes, and a
//! partitioned minority that cannot acknowledge writes.

#![allow(clippy::unwrap_used)]

#[path = "support/cluster.rs"]
mod cluster;

use std::collections::BTreeSet;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cluster::{Cluster, DeployStream, deploy_anywhere, deployed_in_order, model};
use hyper::Method;

/// One cluster at a time: the timing promises (a leader within 3 s) are about the cluster, not
/// about six clusters sharing two cores.
static SERIAL: LazyLock<tokio::sync::Mutex<()>> = LazyLock::new(|| tokio::sync::Mutex::new(()));

const UP: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_node_keeps_acknowledged_deployments_after_kill_9() {
    let _serial = SERIAL.lock().await;
    let mut cluster = Cluster::up(1, &[], UP).await;
    for n in 0..5 {
        cluster
            .client(1)
            .deploy(model(n), Some("svc"))
            .await
            .unwrap();
    }
    cluster.kill(1);
    cluster.restart(1);
    cluster.ready(1, UP).await;
    cluster.leader(UP).await;
    let processes: Vec<String> = deployed_in_order(&cluster.client(1))
        .await
        .into_iter()
        .map(|(_, p, _)| p)
        .collect();
    assert_eq!(
        processes,
        ["p00000", "p00001", "p00002", "p00003", "p00004"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_ten_times_under_writes_loses_and_repeats_nothing() {
    let _serial = SERIAL.lock().await;
    let mut cluster = Cluster::up(3, &[], UP).await;
    let stream = DeployStream::start(cluster.clients(Duration::from_secs(2)));
    for round in 0..10 {
        let leader = cluster.leader(UP).await;
        let killed_at = Instant::now();
        cluster.kill(leader);
        // A new leader serves writes within 3 s: the writer gets an acknowledgement.
        let mut elected = None;
        loop {
            if elected.is_none() {
                for id in cluster.running() {
                    if let Ok(view) = cluster
                        .client(id)
                        .with_timeout(Duration::from_millis(200))
                        .cluster()
                        .await
                        && view.leader.is_some_and(|l| l != leader)
                    {
                        elected = Some(killed_at.elapsed());
                        eprintln!(
                            "round {round}: node {id} sees leader {:?} after {:?}",
                            view.leader,
                            killed_at.elapsed()
                        );
                        break;
                    }
                }
            }
            if stream.acknowledged_since(killed_at).await {
                break;
            }
            assert!(
                killed_at.elapsed() < Duration::from_secs(3),
                "round {round}: no write acknowledged within 3 s after killing leader {leader}\n{}",
                cluster.logs()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        eprintln!(
            "round {round}: leader {leader} killed; writes served again after {:?}",
            killed_at.elapsed()
        );
        cluster.restart(leader);
        cluster.ready(leader, UP).await;
        cluster.caught_up(leader, UP).await;
    }
    let acked = stream.stop().await;
    assert!(
        acked.len() >= 10,
        "only {} writes were acknowledged",
        acked.len()
    );
    let mut lists = Vec::new();
    for id in 1..=3 {
        let list = deployed_in_order(&cluster.client(id)).await;
        let processes: BTreeSet<String> = list.iter().map(|(_, p, _)| p.clone()).collect();
        assert!(
            acked.is_subset(&processes),
            "node {id} lost acknowledged deployments: {:?}",
            acked.difference(&processes).collect::<Vec<_>>()
        );
        assert!(
            list.iter().all(|(_, _, v)| *v == 1),
            "node {id}: a deployment was applied twice: {list:?}"
        );
        lists.push(list);
    }
    assert_eq!(lists[0], lists[1], "nodes 1 and 2 disagree on the order");
    assert_eq!(lists[1], lists[2], "nodes 2 and 3 disagree on the order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_that_was_down_catches_up_by_log_and_by_snapshot() {
    let _serial = SERIAL.lock().await;
    let mut cluster = Cluster::up(3, &["--snapshot-logs", "20"], UP).await;
    let leader = cluster.leader(UP).await;
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    let others: Vec<_> = (1..=3)
        .filter(|id| *id != follower)
        .map(|id| cluster.client(id))
        .collect();

    // A few writes while it is down: it catches up from the log.
    cluster.kill(follower);
    for n in 0..5 {
        deploy_anywhere(&others, n, UP).await.unwrap();
    }
    cluster.restart(follower);
    cluster.ready(follower, UP).await;
    assert_eq!(deployed_in_order(&cluster.client(follower)).await.len(), 5);

    // Many writes while it is down: the leader compacts its log, so a snapshot must be sent.
    cluster.kill(follower);
    for n in 5..105 {
        deploy_anywhere(&others, n, UP).await.unwrap();
    }
    cluster.restart(follower);
    cluster.ready(follower, UP).await;
    let list = deployed_in_order(&cluster.client(follower)).await;
    assert_eq!(list.len(), 105, "the follower has every deployment");
    let view = cluster.client(follower).cluster().await.unwrap();
    assert!(
        view.snapshot >= 20,
        "the follower installed a snapshot (its snapshot covers index {})",
        view.snapshot
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_acknowledged_on_one_node_is_visible_to_a_linearizable_read_on_another() {
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::up(3, &[], UP).await;
    for n in 0..30u64 {
        let writer = 1 + n % 3;
        let reader = 1 + (n + 1) % 3;
        cluster
            .client(writer)
            .deploy(model(n), Some("svc"))
            .await
            .unwrap();
        let seen = deployed_in_order(&cluster.client(reader)).await;
        assert!(
            seen.iter().any(|(_, p, _)| *p == format!("p{n:05}")),
            "node {reader} did not see p{n:05} written on node {writer}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_and_removing_members_while_writing_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let mut cluster = Cluster::up(3, &[], UP).await;
    let stream = DeployStream::start(cluster.clients(Duration::from_secs(2)));
    let addr = cluster.spawn_joiner(4);
    cluster.ready(4, UP).await;
    let add = serde_json::json!({"id": 4, "addr": addr}).to_string();
    cluster
        .client(2)
        .send_raw(
            Method::POST,
            "/v1/cluster/members",
            "application/json",
            Bytes::from(add),
        )
        .await
        .unwrap();
    let before_remove = stream.count().await;
    cluster
        .client(3)
        .send_raw(
            Method::DELETE,
            "/v1/cluster/members/1",
            "application/json",
            Bytes::new(),
        )
        .await
        .unwrap();
    // Keep writing after the change, through the remaining members.
    let deadline = Instant::now() + UP;
    while stream.count().await < before_remove + 10 {
        assert!(
            Instant::now() < deadline,
            "writes stopped after the membership change"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let acked = stream.stop().await;
    cluster.kill(1);
    let view = cluster.client(4).cluster().await.unwrap();
    let voters: BTreeSet<u64> = view
        .members
        .iter()
        .filter(|m| m.voter)
        .map(|m| m.id)
        .collect();
    assert_eq!(voters, BTreeSet::from([2, 3, 4]));
    for id in [2, 3, 4] {
        let have: BTreeSet<String> = deployed_in_order(&cluster.client(id))
            .await
            .into_iter()
            .map(|(_, p, _)| p)
            .collect();
        assert!(
            acked.is_subset(&have),
            "node {id} lost {:?}",
            acked.difference(&have).collect::<Vec<_>>()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_minority_cannot_acknowledge_writes() {
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::up(3, &["--fault-injection"], UP).await;
    let old = cluster.leader(UP).await;
    let majority: Vec<u64> = (1..=3).filter(|id| *id != old).collect();
    cluster.cut(old, &majority).await;
    for id in &majority {
        cluster.cut(*id, &[old]).await;
    }
    // The old leader alone cannot commit: its write is not acknowledged.
    let alone = cluster.client(old).with_timeout(Duration::from_secs(3));
    let refused = alone.deploy(model(1), Some("svc")).await;
    assert!(
        refused.is_err(),
        "the minority acknowledged a write: {refused:?}"
    );
    // The majority elects a leader and goes on.
    let majority_clients: Vec<_> = majority.iter().map(|id| cluster.client(*id)).collect();
    deploy_anywhere(&majority_clients, 2, UP).await.unwrap();
    // Heal; the old leader's unacknowledged write never appears.
    for id in 1..=3 {
        cluster.cut(id, &[]).await;
    }
    let deadline = Instant::now() + UP;
    loop {
        let lists: Vec<Vec<String>> = {
            let mut out = Vec::new();
            for id in 1..=3u64 {
                out.push(
                    deployed_in_order(&cluster.client(id))
                        .await
                        .into_iter()
                        .map(|(_, p, _)| p)
                        .collect(),
                );
            }
            out
        };
        if lists.iter().all(|l| l == &["p00002"]) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "nodes did not converge on [p00002]: {lists:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
