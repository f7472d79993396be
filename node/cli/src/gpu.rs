//! The GPU backends of the dispatcher: wgpu and CUDA, each configured by its section of
//! `[accel]`. A backend that finds no device still registers, reports itself unavailable
//! with the reason (`cpchain accel list`), and the dispatcher answers on the CPU.

use std::sync::Arc;

use anyhow::{Context, Result};
use cpc_accel::gpu::cuda::CudaBackend;
use cpc_accel::gpu::wgpu::WgpuBackend;
use cpc_accel::{Accelerator, BackendKind, DispatchConfig, Dispatcher, Op, Route};

/// Which devices [`register`] opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Open {
    /// Every device found (the `accel` and `bench` commands show and measure them all).
    Every,
    /// Only devices the configuration can send work to. A node opens no GPU it would not
    /// use: a device holds memory and driver threads, a CUDA context hundreds of MiB.
    Routed,
}

/// Why a device was not opened.
const NOT_ROUTED: &str = "not opened: no route or `auto` threshold in [accel] sends work \
                          to it (see `cpchain accel list --home HOME`)";

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
pub(crate) fn register(dispatcher: &mut Dispatcher, open: Open) -> Result<()> {
    let config = dispatcher.config().clone();
    let wanted = |kind| open == Open::Every || routed_to(&config, kind);
    let wgpu = Arc::new(if wanted(BackendKind::Wgpu) {
        WgpuBackend::new(&config.wgpu)
    } else {
        WgpuBackend::unopened(&config.wgpu, NOT_ROUTED)
    });
    let cuda = Arc::new(if wanted(BackendKind::Cuda) {
        CudaBackend::new(&config.cuda)
    } else {
        CudaBackend::unopened(&config.cuda, NOT_ROUTED)
    });
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

#[cfg(test)]
mod tests {
    use super::*;
    use cpc_accel::AutoPolicy;
    use cpc_accel::dispatch::AutoThreshold;

    fn reason(d: &Dispatcher, kind: BackendKind) -> Option<String> {
        d.backend(kind).and_then(|b| b.info().unavailable_reason)
    }

    #[test]
    fn a_node_opens_only_the_devices_its_config_uses() {
        let mut idle = Dispatcher::new(DispatchConfig::default()).unwrap();
        register(&mut idle, Open::Routed).unwrap();
        for kind in [BackendKind::Wgpu, BackendKind::Cuda] {
            assert_eq!(reason(&idle, kind).as_deref(), Some(NOT_ROUTED));
        }

        let mut config = DispatchConfig {
            ed25519: Route::Backend(BackendKind::Cuda),
            ..DispatchConfig::default()
        };
        config.auto = AutoPolicy {
            thresholds: vec![AutoThreshold {
                backend: BackendKind::Wgpu,
                op: Op::Merkle,
                min_batch: 4096,
                device: String::new(),
            }],
        };
        let mut used = Dispatcher::new(config).unwrap();
        register(&mut used, Open::Routed).unwrap();
        for kind in [BackendKind::Wgpu, BackendKind::Cuda] {
            assert_ne!(reason(&used, kind).as_deref(), Some(NOT_ROUTED), "{kind}");
        }
    }
}
