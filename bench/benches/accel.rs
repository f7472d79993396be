//! Criterion benches of the accelerator operations on every available backend, next to
//! the one-at-a-time CPU baseline. `cargo bench -p cpc-bench` runs them; `cpchain bench`
//! gives the quicker operator-facing report.

use cpc_accel::{DispatchConfig, Dispatcher};
use cpc_bench::Workload;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const SIZES: [usize; 3] = [1, 64, 1024];

fn accel(c: &mut Criterion) {
    let dispatcher = match Dispatcher::new(DispatchConfig::default()) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("cannot start the accelerator layer: {e}");
            return;
        }
    };
    for op in Workload::ALL {
        let data = op.generate(*SIZES.iter().max().unwrap_or(&1));
        let mut group = c.benchmark_group(op.name());
        group.sample_size(20);
        for n in SIZES {
            group.throughput(Throughput::Elements(n as u64));
            group.bench_with_input(BenchmarkId::new("one-at-a-time", n), &n, |b, &n| {
                b.iter(|| data.run_one_at_a_time(n))
            });
            for info in dispatcher.backends().into_iter().filter(|b| b.available) {
                let Some(backend) = dispatcher.backend(info.kind) else {
                    continue;
                };
                group.bench_with_input(BenchmarkId::new(info.name.clone(), n), &n, |b, &n| {
                    b.iter(|| data.run_batch(backend.as_ref(), n))
                });
            }
        }
        group.finish();
    }
}

criterion_group!(benches, accel);
criterion_main!(benches);
