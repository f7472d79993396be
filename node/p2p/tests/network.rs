//! Two real swarms on loopback: gossip arrives and is validated, a peer that keeps
//! sending invalid messages is banned, block sync answers from the block source, and
//! side-chain groups get their own topic and direct messages.

use std::sync::Arc;
use std::time::Duration;

use cpc_p2p::{BlockSource, NetEvent, Network, P2pConfig, Topic, Verdict};
use tokio::sync::mpsc::Receiver;

struct Blocks;

impl BlockSource for Blocks {
    fn blocks_from(&self, from: u64) -> Vec<Vec<u8>> {
        (from..from + 3).map(|h| h.to_be_bytes().to_vec()).collect()
    }
}

fn port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

fn start(seed: u8, port: u16, bootnodes: Vec<String>) -> (Network, Receiver<NetEvent>) {
    let config = P2pConfig {
        listen: format!("/ip4/127.0.0.1/tcp/{port}"),
        bootnodes,
        ban_after_invalid: 3,
        ..P2pConfig::default()
    };
    Network::start(config, [seed; 32], Arc::new(Blocks)).unwrap()
}

async fn next_gossip(rx: &mut Receiver<NetEvent>) -> (cpc_p2p::MessageRef, Vec<u8>) {
    loop {
        if let NetEvent::Gossip { msg, data, .. } = rx.recv().await.unwrap() {
            return (msg, data);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_sync_and_banning_a_peer_that_sends_garbage() {
    let (pa, pb) = (port(), port());
    let (a, mut a_rx) = start(1, pa, vec![]);
    let (b, mut b_rx) = start(2, pb, vec![format!("/ip4/127.0.0.1/tcp/{pa}")]);

    // Publishing needs the peer's subscription first: retry until a message arrives.
    let got = tokio::time::timeout(Duration::from_secs(20), async {
        let mut n = 0u8;
        loop {
            b.publish(Topic::Consensus, vec![b'h', b'i', n]);
            n = n.wrapping_add(1);
            tokio::select! {
                m = next_gossip(&mut a_rx) => return m,
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
    })
    .await
    .expect("gossip arrives");
    assert_eq!(&got.1[..2], b"hi");
    a.validate(got.0, Verdict::Accept);

    // Sync: A asks, B answers from its block source.
    a.fetch(5);
    let blocks = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Some(NetEvent::Blocks { blocks, .. }) = a_rx.recv().await {
                return blocks;
            }
        }
    })
    .await
    .expect("a sync answer");
    assert_eq!(
        blocks,
        vec![
            5u64.to_be_bytes().to_vec(),
            6u64.to_be_bytes().to_vec(),
            7u64.to_be_bytes().to_vec()
        ]
    );

    // B sends garbage; A rejects each message until it bans B.
    let banned = tokio::time::timeout(Duration::from_secs(30), async {
        let mut n = 0u32;
        loop {
            b.publish(Topic::Txs, n.to_be_bytes().to_vec());
            n += 1;
            tokio::select! {
                m = next_gossip(&mut a_rx) => a.validate(m.0, Verdict::Reject),
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
            let st = a.status();
            if st.banned == 1 {
                return st;
            }
        }
    })
    .await
    .expect("the peer is banned");
    assert!(banned.rejected >= 3);
    // The ban disconnects it and keeps it out although it redials.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let st = a.status();
    assert!(st.peers.is_empty(), "{:?}", st.peers);
    drop(b_rx.try_recv());
}

/// Answers a data request with its bytes reversed, and counts who asked.
struct Echo(std::sync::Mutex<Vec<cpc_p2p::PeerId>>);

impl cpc_p2p::DataService for Echo {
    fn handle(&self, peer: &cpc_p2p::PeerId, request: bytes::Bytes) -> cpc_p2p::DataMessage {
        self.0.lock().unwrap().push(*peer);
        let mut answer = request.to_vec();
        answer.reverse();
        answer.into()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_requests_reach_the_peers_data_service() {
    let (pa, pb) = (port(), port());
    let echo = Arc::new(Echo(Default::default()));
    let config = |port: u16, bootnodes: Vec<String>| P2pConfig {
        listen: format!("/ip4/127.0.0.1/tcp/{port}"),
        bootnodes,
        ..P2pConfig::default()
    };
    let (a, _a_rx) =
        Network::start_with_data(config(pa, vec![]), [1; 32], Arc::new(Blocks), echo.clone())
            .unwrap();
    let (b, _b_rx) = Network::start(
        config(pb, vec![format!("/ip4/127.0.0.1/tcp/{pa}")]),
        [2; 32],
        Arc::new(Blocks),
    )
    .unwrap();
    let a_id = a.local_peer_id();
    tokio::time::timeout(Duration::from_secs(20), async {
        while !b.data_peers().await.contains(&a_id) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("a becomes a data peer of b");
    // A chunk-sized request goes through, sent in parts and received whole.
    let big: Vec<u8> = (0..1_000_000u32).map(|i| i as u8).collect();
    let parts = vec![
        bytes::Bytes::copy_from_slice(&big[..33]),
        bytes::Bytes::copy_from_slice(&big[33..]),
    ];
    let answer = b
        .data_request(a_id, cpc_p2p::DataMessage::from_parts(parts))
        .await
        .unwrap();
    assert_eq!(answer, big.iter().rev().copied().collect::<Vec<u8>>());
    assert_eq!(echo.0.lock().unwrap().as_slice(), &[b.local_peer_id()]);
    // A node without a data service answers empty.
    assert_eq!(
        a.data_request(b.local_peer_id(), vec![1, 2].into())
            .await
            .unwrap(),
        bytes::Bytes::new()
    );
    // An unknown peer cannot be reached.
    let stranger = cpc_p2p::PeerId::random();
    assert!(b.data_request(stranger, vec![1].into()).await.is_err());
}

async fn next_side(rx: &mut Receiver<NetEvent>) -> ([u8; 32], cpc_p2p::PeerId, bool, Vec<u8>) {
    loop {
        if let NetEvent::Side {
            group,
            from,
            msg,
            data,
        } = rx.recv().await.unwrap()
        {
            return (group, from, msg.is_some(), data);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn side_groups_have_their_own_topic_and_direct_messages() {
    let (pa, pb) = (port(), port());
    let (a, mut a_rx) = start(1, pa, vec![]);
    let (b, mut b_rx) = start(2, pb, vec![format!("/ip4/127.0.0.1/tcp/{pa}")]);
    let (group, other) = ([7u8; 32], [8u8; 32]);
    a.join_side_group(group);
    b.join_side_group(group);
    b.join_side_group(other);
    // Gossip on the group's topic arrives with its author.
    let got = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            b.publish(Topic::Side(group), b"vertex".to_vec());
            tokio::select! {
                m = next_side(&mut a_rx) => return m,
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
    })
    .await
    .expect("side gossip arrives");
    assert_eq!(got, (group, b.local_peer_id(), true, b"vertex".to_vec()));
    // A direct message reaches only its peer, without a verdict to give.
    a.side_send(b.local_peer_id(), group, b"answer".to_vec());
    let got = tokio::time::timeout(Duration::from_secs(20), next_side(&mut b_rx))
        .await
        .expect("a direct side message arrives");
    assert_eq!(got, (group, a.local_peer_id(), false, b"answer".to_vec()));
    // A is not in `other`: a direct message for it is dropped, the next one arrives.
    b.side_send(a.local_peer_id(), other, b"not yours".to_vec());
    b.side_send(a.local_peer_id(), group, b"yours".to_vec());
    let got = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            // Skip repeats of the gossip above.
            let m = next_side(&mut a_rx).await;
            if !m.2 {
                return m;
            }
        }
    })
    .await
    .expect("the second message arrives");
    assert_eq!(got, (group, b.local_peer_id(), false, b"yours".to_vec()));
}
