//! The side chain's outbox: what the gateway task sends leaves from a thread of its own, in
//! the order the task sent it, and a message carrying one of this gateway's vertices leaves
//! only once the log holding that vertex is on disk.
//!
//! A vertex that left before its log record was durable could be lost to a power failure
//! while peers hold it; the gateway, restarted before its network is back, would sign that
//! sequence number again, an equivocation that costs it its credit and deposit. Each batch
//! of queued messages takes one `fdatasync` of the log, however many vertices it holds, and
//! the gateway task never waits for the disk. A log that cannot be written or synced stops
//! this gateway's vertices from leaving for the rest of the run: after a failed sync the
//! kernel may have dropped the pages, so a later sync that succeeds proves nothing.
//!
//! The queue holds at most [`QUEUE_BYTES`] of vertices. A disk that stalls (an SD card at
//! an edge) holds up every message behind a sync, and a full queue drops new vertices, as
//! the network layer drops what it cannot queue: peers ask for the vertices they lack from
//! the heads every gateway announces. Other messages (heads, requests, anchors and their
//! endorsements, which no one asks for again) are small and still queue, until the queue
//! holds twice the limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use cpc_p2p::{Network, PeerId, Topic};
use cpc_sidechain::{Message, SignedVertex};
use cpc_types::PublicKey;

use crate::side_files::LogFile;

/// What must be on disk before a message leaves.
pub(crate) enum Durable {
    /// The message carries no vertex of this gateway (or one that is final, or the log is
    /// not synced by config).
    NotNeeded,
    /// The log the gateway's vertex went to.
    Log(Arc<LogFile>),
    /// A vertex of this gateway that no log holds: it never leaves.
    Never,
}

impl Durable {
    /// What `msg` needs before it leaves a gateway keyed `me` whose vertices are appended
    /// to `log` (`None`: the log cannot be written); `failed`: a log holding its vertices
    /// could not be synced; `sync`: the `sync_log` setting.
    pub(crate) fn of(
        msg: &Message,
        me: Option<PublicKey>,
        log: Option<Arc<LogFile>>,
        failed: bool,
        sync: bool,
    ) -> Durable {
        let own = |v: &SignedVertex| me.is_some_and(|k| v.vertex.creator == k);
        let carries_own = match msg {
            Message::Vertex(v) => own(v),
            Message::Vertices(vs) => vs.iter().any(own),
            _ => false,
        };
        match log {
            _ if !carries_own => Durable::NotNeeded,
            // Not even a crash would leave it in a log.
            None => Durable::Never,
            Some(_) if failed => Durable::Never,
            Some(_) if !sync => Durable::NotNeeded,
            Some(log) => Durable::Log(log),
        }
    }
}

/// One message, or one part of a long one.
#[derive(Debug)]
pub(crate) enum Part {
    /// On the group's topic.
    Publish(Vec<u8>),
    /// To one peer.
    To(PeerId, Vec<u8>),
}

/// A message for the outbox.
pub(crate) struct Outgoing {
    pub(crate) durable: Durable,
    pub(crate) parts: Vec<Part>,
    /// Whether a full queue may drop it: vertices, which peers ask for again.
    pub(crate) droppable: bool,
}

impl Outgoing {
    fn bytes(&self) -> usize {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Publish(d) | Part::To(_, d) => d.len(),
            })
            .sum()
    }
}

/// Most bytes of vertices queued for the outbox: over a minute of a gateway's own
/// vertices at 10,000 transactions a second (about 180 bytes each, a quarter of them its
/// own in a group of four), far beyond a healthy disk's sync.
pub(crate) const QUEUE_BYTES: usize = 64 << 20;

/// Why the outbox did not take a message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The queue is full: the message is dropped.
    Full,
    /// The outbox thread is gone.
    Gone,
}

/// The gateway task's end of the outbox.
pub(crate) struct Sender {
    tx: std::sync::mpsc::Sender<Outgoing>,
    queued: Arc<AtomicUsize>,
    limit: usize,
}

impl Sender {
    /// Queues `o` unless the queue would pass its limit, or twice that for a message
    /// that may not be dropped (a message larger than the limit still goes to an empty
    /// queue).
    pub(crate) fn send(&self, o: Outgoing) -> Result<(), Refused> {
        let n = o.bytes();
        let limit = if o.droppable {
            self.limit
        } else {
            2 * self.limit
        };
        let before = self.queued.fetch_add(n, Ordering::Relaxed);
        if before > 0 && before + n > limit {
            self.queued.fetch_sub(n, Ordering::Relaxed);
            return Err(Refused::Full);
        }
        self.tx.send(o).map_err(|_| {
            self.queued.fetch_sub(n, Ordering::Relaxed);
            Refused::Gone
        })
    }
}

/// A bounded queue of messages: the sender and the receiving end with the byte count it
/// gives back as it takes messages.
fn queue(limit: usize) -> (Sender, Receiver<Outgoing>, Arc<AtomicUsize>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let queued = Arc::new(AtomicUsize::new(0));
    let sender = Sender {
        tx,
        queued: queued.clone(),
        limit,
    };
    (sender, rx, queued)
}

/// Most messages carried out after one sync.
const BATCH: usize = 1024;

/// What one batch cost, for the node's metrics.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Delivered {
    /// Messages withheld: their vertex is not durable.
    pub(crate) withheld: u64,
    /// Log syncs, and the time they took.
    pub(crate) syncs: u64,
    pub(crate) sync_time: Duration,
    /// Whether this gateway's vertices no longer leave (a log failed).
    pub(crate) log_failed: bool,
}

/// Starts the outbox thread for `group`; it ends once every sender is dropped and what
/// they queued is out. `report` hears of every batch that synced or withheld something.
pub(crate) fn start(
    net: Network,
    group: [u8; 32],
    report: impl Fn(Delivered) + Send + 'static,
) -> std::io::Result<Sender> {
    let (tx, rx, queued) = queue(QUEUE_BYTES);
    std::thread::Builder::new()
        .name("cpc-side-outbox".into())
        .spawn(move || run(&rx, &queued, &net, group, &report))?;
    Ok(tx)
}

/// A batch's bytes, which count against the queue until it is out (a stalled sync holds
/// it): dropping this gives them back.
struct Taken<'a> {
    queued: &'a AtomicUsize,
    bytes: usize,
}

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        self.queued.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

/// The next batch: one message, waited for, and up to [`BATCH`] in all of what else is
/// queued. `None` once every sender is gone.
fn next_batch<'a>(
    rx: &Receiver<Outgoing>,
    queued: &'a AtomicUsize,
) -> Option<(Vec<Outgoing>, Taken<'a>)> {
    let first = rx.recv().ok()?;
    let mut batch = vec![first];
    batch.extend(rx.try_iter().take(BATCH - 1));
    let bytes = batch.iter().map(Outgoing::bytes).sum();
    Some((batch, Taken { queued, bytes }))
}

fn run(
    rx: &Receiver<Outgoing>,
    queued: &AtomicUsize,
    net: &Network,
    group: [u8; 32],
    report: &dyn Fn(Delivered),
) {
    let mut outbox = Outbox::default();
    while let Some((batch, _taken)) = next_batch(rx, queued) {
        let mut d = Delivered::default();
        let sync = |log: &LogFile| {
            let started = Instant::now();
            let r = log.sync();
            d.syncs += 1;
            d.sync_time += started.elapsed();
            r
        };
        let send = |part| match part {
            Part::Publish(data) => net.publish(Topic::Side(group), data),
            Part::To(peer, data) => net.side_send(peer, group, data),
        };
        d.withheld = outbox.deliver(batch, sync, send);
        d.log_failed = outbox.failed;
        if d.withheld > 0 || d.syncs > 0 {
            report(d);
        }
    }
}

/// The rules of the outbox, apart from its thread.
#[derive(Default)]
struct Outbox {
    /// A log failed to be written or synced: this gateway's vertices no longer leave.
    failed: bool,
}

impl Outbox {
    /// Sends the batch in order; before the first message that needs a log, syncs that
    /// log (once per batch). Returns how many messages it withheld: those whose vertex
    /// is not durable.
    fn deliver(
        &mut self,
        batch: Vec<Outgoing>,
        mut sync: impl FnMut(&LogFile) -> std::io::Result<()>,
        mut send: impl FnMut(Part),
    ) -> u64 {
        let mut synced: Vec<Arc<LogFile>> = Vec::new();
        let mut withheld = 0;
        for o in batch {
            let ready = match o.durable {
                Durable::NotNeeded => true,
                _ if self.failed => false,
                Durable::Log(log) if synced.iter().any(|s| Arc::ptr_eq(s, &log)) => true,
                Durable::Log(log) => match sync(&log) {
                    Ok(()) => {
                        synced.push(log);
                        true
                    }
                    Err(e) => {
                        tracing::error!(path = %log.path.display(), error = %e, "cannot sync the side-chain log: this gateway's vertices are no longer sent (after a power loss it could sign a sequence number twice); fix the disk and restart the node");
                        self.failed = true;
                        false
                    }
                },
                Durable::Never => {
                    tracing::error!(
                        "the side-chain log cannot be written or synced (see the warning before): this gateway's vertices are no longer sent (after a power loss it could sign a sequence number twice); fix the disk and restart the node"
                    );
                    self.failed = true;
                    false
                }
            };
            if ready {
                o.parts.into_iter().for_each(&mut send);
            } else {
                withheld += 1;
            }
        }
        withheld
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    fn log(dir: &std::path::Path, name: &str) -> Arc<LogFile> {
        let path = dir.join(name);
        Arc::new(LogFile {
            file: std::fs::File::create(&path).unwrap(),
            path,
        })
    }

    fn msg(durable: Durable, byte: u8) -> Outgoing {
        Outgoing {
            droppable: true,
            durable,
            parts: vec![Part::Publish(vec![byte])],
        }
    }

    #[derive(Debug, PartialEq, Eq)]
    enum Event {
        Sync(String),
        Send(u8),
    }

    /// Runs one batch, recording syncs and sends in the order they happen.
    fn deliver(outbox: &mut Outbox, batch: Vec<Outgoing>, fail: bool) -> (Vec<Event>, u64) {
        let events = RefCell::new(Vec::new());
        let held = outbox.deliver(
            batch,
            |l| {
                let name = l.path.file_name().unwrap().to_string_lossy().into_owned();
                events.borrow_mut().push(Event::Sync(name));
                if fail {
                    Err(std::io::Error::other("injected"))
                } else {
                    l.sync()
                }
            },
            |p| match p {
                Part::Publish(d) | Part::To(_, d) => events.borrow_mut().push(Event::Send(d[0])),
            },
        );
        (events.into_inner(), held)
    }

    #[test]
    fn an_own_vertex_leaves_after_its_log_is_synced_once_per_batch() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (log(dir.path(), "a.log"), log(dir.path(), "b.log"));
        let mut outbox = Outbox::default();
        let batch = vec![
            msg(Durable::NotNeeded, 1),
            msg(Durable::Log(a.clone()), 2),
            msg(Durable::Log(a), 3),
            msg(Durable::Log(b), 4),
            msg(Durable::NotNeeded, 5),
        ];
        let (events, held) = deliver(&mut outbox, batch, false);
        assert_eq!(
            events,
            vec![
                Event::Send(1),
                Event::Sync("a.log".into()),
                Event::Send(2),
                Event::Send(3),
                Event::Sync("b.log".into()),
                Event::Send(4),
                Event::Send(5)
            ]
        );
        assert_eq!(held, 0);
        // A batch without vertices of this gateway waits for no disk.
        let (events, _) = deliver(&mut outbox, vec![msg(Durable::NotNeeded, 6)], false);
        assert_eq!(events, vec![Event::Send(6)]);
    }

    #[test]
    fn a_failed_sync_withholds_own_vertices_for_good() {
        let dir = tempfile::tempdir().unwrap();
        let a = log(dir.path(), "a.log");
        let mut outbox = Outbox::default();
        let batch = vec![msg(Durable::Log(a.clone()), 1), msg(Durable::NotNeeded, 2)];
        let (events, held) = deliver(&mut outbox, batch, true);
        assert_eq!(events, vec![Event::Sync("a.log".into()), Event::Send(2)]);
        assert_eq!(held, 1);
        // A later sync could succeed with the pages gone: none is tried, nothing own leaves.
        let batch = vec![msg(Durable::Log(a), 3), msg(Durable::NotNeeded, 4)];
        let (events, held) = deliver(&mut outbox, batch, false);
        assert_eq!(events, vec![Event::Send(4)]);
        assert_eq!(held, 1);
    }

    #[test]
    fn only_this_gateways_vertices_wait_for_the_log_and_none_leaves_without_one() {
        let dir = tempfile::tempdir().unwrap();
        let a = log(dir.path(), "a.log");
        let keys: Vec<cpc_types::SecretKey> = (1..=2u8)
            .map(|i| cpc_types::SecretKey::from_bytes([i; 32]))
            .collect();
        let vertex = |k: &cpc_types::SecretKey| {
            cpc_sidechain::Vertex {
                group_id: cpc_sidechain::Group::id_of("district-7"),
                creator: k.public(),
                sequence: 1,
                timestamp_ms: 1,
                parents: Vec::new(),
                txs: Vec::new(),
            }
            .sign(k)
        };
        let (mine, theirs) = (vertex(&keys[0]), vertex(&keys[1]));
        let me = Some(keys[0].public());
        let of = |msg: &Message, me, log: Option<&Arc<LogFile>>, failed, sync| match Durable::of(
            msg,
            me,
            log.cloned(),
            failed,
            sync,
        ) {
            Durable::NotNeeded => "not needed",
            Durable::Log(_) => "log",
            Durable::Never => "never",
        };
        let own = Message::Vertex(mine.clone());
        let list = Message::Vertices(vec![theirs.clone(), mine]);
        let other = Message::Vertex(theirs.clone());
        assert_eq!(of(&own, me, Some(&a), false, true), "log");
        assert_eq!(of(&list, me, Some(&a), false, true), "log");
        assert_eq!(of(&other, me, Some(&a), false, true), "not needed");
        assert_eq!(of(&other, me, None, true, true), "not needed");
        assert_eq!(of(&own, None, None, false, true), "not needed");
        let heads = Message::Heads(vec![theirs.id]);
        assert_eq!(of(&heads, me, None, false, true), "not needed");
        // A log that failed, or none: withheld, whatever the setting.
        assert_eq!(of(&own, me, Some(&a), true, true), "never");
        assert_eq!(of(&own, me, None, false, true), "never");
        assert_eq!(of(&own, me, None, false, false), "never");
        // Not synced by config.
        assert_eq!(of(&own, me, Some(&a), false, false), "not needed");
    }

    #[test]
    fn a_full_queue_drops_new_messages_until_a_batch_is_out() {
        let (tx, rx, queued) = queue(100);
        let sized = |n: usize| Outgoing {
            durable: Durable::NotNeeded,
            parts: vec![Part::Publish(vec![0; n])],
            droppable: true,
        };
        let essential = |n: usize| Outgoing {
            droppable: false,
            ..sized(n)
        };
        assert_eq!(tx.send(sized(60)), Ok(()));
        assert_eq!(tx.send(sized(60)), Err(Refused::Full));
        assert_eq!(tx.send(sized(40)), Ok(()));
        assert_eq!(tx.send(sized(1)), Err(Refused::Full));
        // What no one asks for again still queues, up to twice the limit.
        assert_eq!(tx.send(essential(90)), Ok(()));
        assert_eq!(tx.send(essential(20)), Err(Refused::Full));
        // Taken but not yet out (its log syncing): still counted.
        let (batch, taken) = next_batch(&rx, &queued).unwrap();
        assert_eq!(batch.len(), 3);
        assert_eq!(tx.send(sized(1)), Err(Refused::Full));
        drop(taken);
        assert_eq!(queued.load(Ordering::Relaxed), 0);
        // One message above the limit still goes to an empty queue, and only then.
        assert_eq!(tx.send(sized(500)), Ok(()));
        assert_eq!(tx.send(sized(1)), Err(Refused::Full));
        drop(next_batch(&rx, &queued));
        assert_eq!(tx.send(sized(1)), Ok(()));
        drop(rx);
        assert_eq!(tx.send(sized(1)), Err(Refused::Gone));
    }

    #[test]
    fn a_vertex_no_log_holds_never_leaves() {
        let mut outbox = Outbox::default();
        let batch = vec![msg(Durable::Never, 1), msg(Durable::NotNeeded, 2)];
        let (events, held) = deliver(&mut outbox, batch, false);
        assert_eq!(events, vec![Event::Send(2)]);
        assert_eq!(held, 1);
    }
}
