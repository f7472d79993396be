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
    out
}
