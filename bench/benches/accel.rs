//! Criterion benches of the accelerator operations on every available backend (the CPU,
//! and the wgpu and CUDA devices when present), next to the one-at-a-time CPU baseline. `cargo bench -p cpc-bench` runs them; `cpchain bench`
//! gives the quicker operator-facing report.

use std::hint::black_box;
use std::sync::Arc;

use cpc_accel::gpu::cuda::{CudaBackend, CudaConfig};
use cpc_accel::gpu::wgpu::{WgpuBackend, WgpuConfig};
use cpc_accel::{DispatchConfig, Dispatcher};
use cpc_bench::Workload;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const SIZES: [usize; 3] = [1, 64, 1024];

fn accel(c: &mut Criterion) {
    let mut dispatcher = Dispatcher::new(DispatchConfig::default()).expect("cpu backend starts");
    dispatcher
        .register(Arc::new(WgpuBackend::new(&WgpuConfig::default())))
        .expect("the wgpu backend registers");
    dispatcher
        .register(Arc::new(CudaBackend::new(&CudaConfig::default())))
        .expect("the CUDA backend registers");
    for op in Workload::ALL {
        let data = op.generate(SIZES[SIZES.len() - 1]);
        let mut group = c.benchmark_group(op.name());
        group.sample_size(20);
        for n in SIZES {
            let batch = data.batch(n).expect("enough inputs generated");
            group.throughput(Throughput::Elements(n as u64));
            group.bench_with_input(BenchmarkId::new("one-at-a-time", n), &batch, |b, batch| {
                b.iter(|| black_box(batch.run_one_at_a_time()))
            });
            for info in dispatcher.backends().into_iter().filter(|b| b.available) {
                let Some(backend) = dispatcher.backend(info.kind) else {
                    continue;
                };
                let max = info.max_batch.unwrap_or(usize::MAX);
                // A backend that fails or answers wrongly would be benchmarked as a fast
                // error path.
                if let Err(e) = batch.check(backend.as_ref(), max, dispatcher.cpu()) {
                    eprintln!("skipping {} {op} {n}: {e}", info.name);
                    continue;
                }
                group.bench_with_input(
                    BenchmarkId::new(info.name.clone(), n),
                    &batch,
                    |b, batch| b.iter(|| black_box(batch.run(backend.as_ref(), max))),
                );
            }
        }
        group.finish();
    }
}

criterion_group!(benches, accel);
criterion_main!(benches);
