//! Prometheus text exposition.

use std::fmt::Write as _;

use crate::ApiState;

fn metric(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, v) in samples {
        let _ = writeln!(out, "{name}{labels} {v}");
    }
}

fn one(v: f64) -> Vec<(String, f64)> {
    vec![(String::new(), v)]
}

/// The metrics page: counters end in `_total`, units are base units (seconds, bytes).
pub(crate) fn render(state: &ApiState) -> String {
    let mut out = String::new();
    let chain = &state.chain;
    let status = chain.status();
    let m = chain.metrics();
    metric(
        &mut out,
        "cpchain_build_info",
        "gauge",
        "Build information; the value is always 1.",
        &[(
            format!("{{version=\"{}\"}}", env!("CARGO_PKG_VERSION")),
            1.0,
        )],
    );
    metric(
        &mut out,
        "cpchain_uptime_seconds",
        "gauge",
        "Seconds since the node started.",
        &one(state.started.elapsed().as_secs_f64()),
    );
    metric(
        &mut out,
        "cpchain_chain_height",
        "gauge",
        "Height of the last committed block.",
        &one(status.height as f64),
    );
    metric(
        &mut out,
        "cpchain_blocks_total",
        "counter",
        "Blocks committed since start.",
        &one(m.blocks_total as f64),
    );
    metric(
        &mut out,
        "cpchain_txs_committed_total",
        "counter",
        "Transactions committed since start.",
        &one(m.txs_committed_total as f64),
    );
    metric(
        &mut out,
        "cpchain_txs_admitted_total",
        "counter",
        "Transactions admitted to the mempool since start.",
        &one(m.txs_admitted_total as f64),
    );
    metric(
        &mut out,
        "cpchain_txs_refused_total",
        "counter",
        "Submissions refused at admission since start.",
        &one(m.txs_refused_total as f64),
    );
    metric(
        &mut out,
        "cpchain_txs_dropped_total",
        "counter",
        "Admitted transactions dropped before commit.",
        &one(m.txs_dropped_total as f64),
    );
    metric(
        &mut out,
        "cpchain_block_commit_seconds_total",
        "counter",
        "Time spent producing and committing blocks.",
        &one(m.block_commit_ns_total as f64 / 1e9),
    );
    metric(
        &mut out,
        "cpchain_mempool_txs",
        "gauge",
        "Pending transactions.",
        &one(status.mempool_txs as f64),
    );
    metric(
        &mut out,
        "cpchain_mempool_bytes",
        "gauge",
        "Encoded size of pending transactions.",
        &one(status.mempool_bytes as f64),
    );

    let counters = chain.accel().counters();
    let labelled = |f: &dyn Fn(&cpc_accel::CounterSnapshot) -> f64| -> Vec<(String, f64)> {
        counters
            .iter()
            .map(|c| {
                (
                    format!("{{backend=\"{}\",op=\"{}\"}}", c.backend, c.op),
                    f(c),
                )
            })
            .collect()
    };
    metric(
        &mut out,
        "cpchain_accel_ops_total",
        "counter",
        "Accelerator calls completed, by backend and operation.",
        &labelled(&|c| c.ops_total as f64),
    );
    metric(
        &mut out,
        "cpchain_accel_items_total",
        "counter",
        "Messages, leaves or signatures processed.",
        &labelled(&|c| c.items_total as f64),
    );
    metric(
        &mut out,
        "cpchain_accel_errors_total",
        "counter",
        "Accelerator calls that failed.",
        &labelled(&|c| c.errors_total as f64),
    );
    metric(
        &mut out,
        "cpchain_accel_fallbacks_total",
        "counter",
        "Calls answered by the CPU instead of the routed backend.",
        &labelled(&|c| c.fallbacks_total as f64),
    );
    metric(
        &mut out,
        "cpchain_accel_busy_seconds_total",
        "counter",
        "Time spent inside each backend.",
        &labelled(&|c| c.busy_ns_total as f64 / 1e9),
    );
    if let Some(c) = state.services.consensus() {
        consensus(&mut out, &c);
    }
    if let Some(f) = &state.fhe {
        fhe(&mut out, f);
    }
    if let Some(side) = state.services.sidechain() {
        crate::side::render_metrics(&mut out, &side.metrics());
    }
    if let Some(n) = state.services.network() {
        metric(
            &mut out,
            "cpchain_peers",
            "gauge",
            "Connected peers.",
            &one(n.peers.len() as f64),
        );
        metric(
            &mut out,
            "cpchain_gossip_received_total",
            "counter",
            "Gossip messages received.",
            &one(n.received as f64),
        );
        metric(
            &mut out,
            "cpchain_gossip_rejected_total",
            "counter",
            "Messages from peers rejected as invalid.",
            &one(n.rejected as f64),
        );
    }
    out
}

fn consensus(out: &mut String, c: &cpc_chain::ConsensusStatus) {
    let m = &c.metrics;
    metric(
        out,
        "cpchain_consensus_view",
        "gauge",
        "Current consensus view (round).",
        &one(c.view as f64),
    );
    metric(
        out,
        "cpchain_consensus_term",
        "gauge",
        "Current election term.",
        &one(c.term as f64),
    );
    metric(
        out,
        "cpchain_consensus_epoch",
        "gauge",
        "Current committee epoch (one per committee).",
        &one(c.epoch as f64),
    );
    metric(
        out,
        "cpchain_consensus_committee_size",
        "gauge",
        "Members of the committee in office.",
        &one(c.committee.len() as f64),
    );
    metric(
        out,
        "cpchain_consensus_committee_changes_total",
        "counter",
        "Committees that took office since this node started.",
        &one(m.committee_changes as f64),
    );
    metric(
        out,
        "cpchain_consensus_tickets",
        "gauge",
        "Election tickets for the next term recorded on chain.",
        &one(c.tickets as f64),
    );
    metric(
        out,
        "cpchain_consensus_view_changes_total",
        "counter",
        "Views that ended in a nullification (timeout).",
        &one(m.view_changes as f64),
    );
    metric(
        out,
        "cpchain_consensus_missed_proposals_total",
        "counter",
        "Nullified views that this node led.",
        &one(m.missed_proposals as f64),
    );
    metric(
        out,
        "cpchain_consensus_evidence_total",
        "counter",
        "Conflicting messages seen from committee members.",
        &one(m.evidence as f64),
    );
    metric(
        out,
        "cpchain_consensus_synced_blocks_total",
        "counter",
        "Blocks committed from peers' sync answers.",
        &one(m.synced as f64),
    );
    let name = "cpchain_commit_latency_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Time from a block's timestamp to its commit on this node."
    );
    let _ = writeln!(out, "# TYPE {name} histogram");
    let mut cumulative = 0;
    for (i, le) in cpc_chain::LATENCY_BUCKETS_MS.iter().enumerate() {
        cumulative += m.commit_latency_counts.get(i).copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "{name}_bucket{{le=\"{}\"}} {cumulative}",
            *le as f64 / 1000.0
        );
    }
    let total: u64 = m.commit_latency_counts.iter().sum();
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {total}");
    let _ = writeln!(
        out,
        "{name}_sum {}",
        m.commit_latency_sum_ms as f64 / 1000.0
    );
    let _ = writeln!(out, "{name}_count {total}");
}

fn fhe(out: &mut String, f: &crate::fhe::FheService) {
    let s = f.stats();
    let info = f.matcher().info();
    let outcome = |done: u64, failed: u64| {
        vec![
            ("{outcome=\"done\"}".to_owned(), done as f64),
            ("{outcome=\"failed\"}".to_owned(), failed as f64),
        ]
    };
    metric(
        out,
        "cpchain_fhe_jobs_total",
        "counter",
        "Homomorphic jobs finished, by outcome.",
        &outcome(s.done, s.failed),
    );
    metric(
        out,
        "cpchain_fhe_jobs_submitted_total",
        "counter",
        "Homomorphic jobs accepted into the queue.",
        &one(s.submitted as f64),
    );
    metric(
        out,
        "cpchain_fhe_jobs_rejected_total",
        "counter",
        "Homomorphic job submissions refused because the queue was full.",
        &one(s.rejected_full as f64),
    );
    metric(
        out,
        "cpchain_fhe_queue_jobs",
        "gauge",
        "Homomorphic jobs waiting.",
        &one(s.queued as f64),
    );
    metric(
        out,
        "cpchain_fhe_busy_seconds_total",
        "counter",
        "Time spent running homomorphic jobs.",
        &one(s.busy_ms as f64 / 1000.0),
    );
    metric(
        out,
        "cpchain_fhe_key_cache_bytes",
        "gauge",
        "Memory of the loaded server keys.",
        &one(info.key_cache_bytes as f64),
    );
    metric(
        out,
        "cpchain_fhe_keys",
        "gauge",
        "Loaded server keys.",
        &one(info.keys.len() as f64),
    );
}
