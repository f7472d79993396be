//! The GPU backends of the dispatcher: wgpu and CUDA, each configured by its section of
//! `[accel]`. A backend that finds no device still registers, reports itself unavailable
//! with the reason (`cpchain accel list`), and the dispatcher answers on the CPU.

use std::sync::Arc;

use anyhow::{Context, Result};
use cpc_accel::gpu::cuda::CudaBackend;
use cpc_accel::gpu::wgpu::WgpuBackend;
use cpc_accel::{Accelerator, BackendKind, DispatchConfig, Dispatcher, Op, Route};

/// Whether the configuration can send work to `kind`: a route names it, or `auto` has a
/// threshold for it.
fn routed_to(config: &DispatchConfig, kind: BackendKind) -> bool {
    Op::ALL
        .iter()
        .any(|&op| config.route(op) == Route::Backend(kind))
        || config.auto.thresholds.iter().any(|t| t.backend == kind)
}

/// Registers the wgpu and CUDA backends. Kernels of a backend that work is routed to are
/// compiled in the background now, so the first batch does not wait for the compiler.
pub(crate) fn register(dispatcher: &mut Dispatcher) -> Result<()> {
    let config = dispatcher.config().clone();
    let wgpu = Arc::new(WgpuBackend::new(&config.wgpu));
    let cuda = Arc::new(CudaBackend::new(&config.cuda));
    if wgpu.is_available() && routed_to(&config, BackendKind::Wgpu) {
        let w = wgpu.clone();
        std::thread::spawn(move || {
            if let Err(e) = w.warm_up() {
                tracing::warn!(error = %e, "wgpu kernels do not compile; the cpu takes over");
            }
        });
    }
    if cuda.is_available() && routed_to(&config, BackendKind::Cuda) {
        let c = cuda.clone();
        std::thread::spawn(move || {
            if let Err(e) = c.warm_up() {
                tracing::warn!(error = %e, "CUDA kernels do not compile; the cpu takes over");
            }
        });
    }
    dispatcher
        .register(wgpu)
        .context("cannot register the wgpu backend")?;
    dispatcher
        .register(cuda)
        .context("cannot register the CUDA backend")?;
    Ok(())
}
