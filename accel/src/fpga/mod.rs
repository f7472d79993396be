//! The FPGA backend: the `hdl` host-link bitstream, reached through a [`Transport`].
//!
//! - [`sim::SimTransport`] runs the rust-hdl design cycle by cycle in-process (CI,
//!   developing host software without a board);
//! - [`serial::SerialTransport`] talks the UART protocol of [`cpc_hdl::protocol`] to a
//!   board (iCE40-HX8K breakout with a bitstream from `hdl/flow/`), on a configured port or
//!   the first `/dev/ttyUSB*`/`/dev/ttyACM*` that answers the version command.
//!
//! What runs where:
//!
//! - **SHA-256**: every message is padded here and hashed block by block on the device.
//! - **Merkle roots**: the tree rule of [`crate::merkle`] is walked here; every leaf and
//!   inner node hash is computed on the device.
//! - **Ed25519**: the challenge hash `k = SHA-512(R || A || M)`, the first stage of a
//!   signature-verification pipeline, runs on the device's SHA-512 core; the curve
//!   arithmetic (decoding `A` and `R`, `[8]([S]B - [k]A - R) = 0`) runs here with the same
//!   library and the same ZIP-215 rules as `ed25519-consensus`, so the verdicts equal the
//!   CPU reference's (differential tests check it). A bitstream without the SHA-512 core
//!   answers Ed25519 calls with an error, and the dispatcher falls back to the CPU.
//!
//! The link is one request at a time over a UART, so a board hashes far slower than the
//! CPU; `auto` routing never picks it unless a threshold says so. The backend exists so
//! the cores run in the node's real code paths and to measure them.

pub mod serial;
pub mod sim;
pub mod transport;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use curve25519_dalek_ng::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek_ng::scalar::Scalar;
use curve25519_dalek_ng::traits::IsIdentity;
use serde::{Deserialize, Serialize};

use crate::backend::{Accelerator, BackendInfo, BackendKind, SigItem};
use crate::{AccelError, Digest, merkle};
pub use sim::SimDesign;
pub use transport::{Device, DeviceInfo, DeviceStatus, FpgaError, Hash, Transport};

/// How the host reaches the FPGA.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FpgaTransport {
    /// No FPGA: the backend is listed as unavailable.
    #[default]
    None,
    /// The rust-hdl simulation of the bitstream.
    Sim,
    /// A board on a serial port.
    Serial,
}

/// The `[accel.fpga]` settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FpgaConfig {
    /// `none`, `sim` or `serial`.
    pub transport: FpgaTransport,
    /// Serial device, or `auto` to probe `/dev/ttyUSB*` and `/dev/ttyACM*` with the version
    /// command.
    pub device: String,
    /// Serial rate; the bitstreams of `hdl/flow/` run at 3 Mbaud.
    pub baud: u32,
    /// Milliseconds to wait for a response before the call fails (and the CPU answers).
    pub timeout_ms: u64,
    /// The simulated bitstream: `dual` (SHA-256 + SHA-512) or `sha256`.
    pub sim_design: SimDesign,
}

impl Default for FpgaConfig {
    fn default() -> Self {
        Self {
            transport: FpgaTransport::None,
            device: "auto".into(),
            baud: 3_000_000,
            timeout_ms: 200,
            sim_design: SimDesign::Dual,
        }
    }
}

impl FpgaConfig {
    /// Parses the command-line form: `none`, `sim`, `sim:sha256`, `serial`,
    /// `serial:/dev/ttyUSB1`.
    pub fn parse_flag(s: &str) -> Result<Self, AccelError> {
        let mut c = Self::default();
        let (kind, arg) = s.split_once(':').unwrap_or((s, ""));
        match (kind, arg) {
            ("none", "") => {}
            ("sim", "" | "dual") => c.transport = FpgaTransport::Sim,
            ("sim", "sha256") => {
                c.transport = FpgaTransport::Sim;
                c.sim_design = SimDesign::Sha256;
            }
            ("serial", dev) => {
                c.transport = FpgaTransport::Serial;
                if !dev.is_empty() {
                    c.device = dev.to_owned();
                }
            }
            _ => {
                return Err(AccelError::Config(format!(
                    "unknown fpga transport {s:?}: expected none, sim, sim:sha256, serial or \
                     serial:/dev/ttyUSB0"
                )));
            }
        }
        Ok(c)
    }
}

/// Signatures a bitstream without SHA-512 cannot check; see the module documentation.
const NO_SHA512: &str = "sha-512";

/// The FPGA backend; see the module documentation.
pub struct FpgaBackend {
    device: Option<Mutex<Device>>,
    transport: String,
    info: Option<DeviceInfo>,
    unavailable: Option<String>,
}

impl std::fmt::Debug for FpgaBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FpgaBackend")
            .field("transport", &self.transport)
            .field("info", &self.info)
            .field("unavailable", &self.unavailable)
            .finish()
    }
}

impl FpgaBackend {
    /// The backend `config` describes. It is always returned: when the device cannot be
    /// reached it is unavailable, and [`BackendInfo::unavailable_reason`] says why.
    pub fn from_config(config: &FpgaConfig) -> Self {
        let timeout = Duration::from_millis(config.timeout_ms.max(1));
        match config.transport {
            FpgaTransport::None => Self::unavailable(
                "none",
                "no fpga transport configured: set [accel.fpga] transport = \"serial\" (a \
                 board) or \"sim\" (the rust-hdl simulation), or pass --fpga",
            ),
            FpgaTransport::Sim => match sim::SimTransport::new(config.sim_design) {
                Ok(t) => Self::open(Box::new(t), timeout),
                Err(e) => Self::unavailable("sim", &e.to_string()),
            },
            FpgaTransport::Serial if config.device == "auto" => {
                Self::discover(&serial::candidates(), config.baud, timeout)
            }
            FpgaTransport::Serial => {
                let path = PathBuf::from(&config.device);
                match serial::SerialTransport::open(&path, config.baud) {
                    Ok(t) => Self::open(Box::new(t), timeout),
                    Err(e) => {
                        Self::unavailable(&format!("serial: {}", path.display()), &e.to_string())
                    }
                }
            }
        }
    }

    /// A backend on an already open transport: identified by the version command.
    pub fn open(transport: Box<dyn Transport>, timeout: Duration) -> Self {
        let describe = transport.describe();
        match Device::open(transport, timeout) {
            Ok(device) => Self {
                info: Some(device.info()),
                device: Some(Mutex::new(device)),
                transport: describe,
                unavailable: None,
            },
            Err(e) => Self::unavailable(&describe, &format!("the device did not identify: {e}")),
        }
    }

    /// The first of `paths` that answers the version command as a CPChain accelerator.
    pub fn discover(paths: &[PathBuf], baud: u32, timeout: Duration) -> Self {
        let mut tried = Vec::new();
        for path in paths {
            match probe(path, baud, timeout) {
                Ok(device) => {
                    return Self {
                        transport: device.describe(),
                        info: Some(device.info()),
                        device: Some(Mutex::new(device)),
                        unavailable: None,
                    };
                }
                Err(e) => tried.push(format!("{}: {e}", path.display())),
            }
        }
        let reason = if tried.is_empty() {
            "no /dev/ttyUSB* or /dev/ttyACM* device; connect the board or set \
             [accel.fpga] device"
                .to_owned()
        } else {
            format!(
                "no board answered the version command ({})",
                tried.join("; ")
            )
        };
        Self::unavailable("serial: auto", &reason)
    }

    fn unavailable(transport: &str, reason: &str) -> Self {
        Self {
            device: None,
            transport: transport.to_owned(),
            info: None,
            unavailable: Some(reason.to_owned()),
        }
    }

    /// What the device reported, when it is reachable.
    pub fn device_info(&self) -> Option<DeviceInfo> {
        self.info
    }

    /// The device's counters.
    pub fn device_status(&self) -> Result<DeviceStatus, AccelError> {
        self.with_device(|d| d.status())
    }

    fn with_device<T>(
        &self,
        f: impl FnOnce(&mut Device) -> Result<T, FpgaError>,
    ) -> Result<T, AccelError> {
        let Some(device) = &self.device else {
            return Err(AccelError::Unavailable {
                kind: BackendKind::Fpga,
                reason: self.unavailable.clone().unwrap_or_default(),
            });
        };
        // A panic while holding the lock leaves the device mid-exchange; the next call's
        // errors resynchronise it, so the poisoned lock is safe to reuse.
        let mut guard = device.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard).map_err(|e| AccelError::Device {
            kind: BackendKind::Fpga,
            message: e.to_string(),
        })
    }

    fn sha256_many(d: &mut Device, msgs: &[&[u8]]) -> Result<Vec<Digest>, FpgaError> {
        msgs.iter().map(|m| sha256_on(d, m)).collect()
    }
}

fn sha256_on(d: &mut Device, msg: &[u8]) -> Result<Digest, FpgaError> {
    let v = d.hash(Hash::Sha256, msg)?;
    v.try_into()
        .map_err(|v: Vec<u8>| FpgaError::Io(format!("{} digest bytes, expected 32", v.len())))
}

fn probe(path: &Path, baud: u32, timeout: Duration) -> Result<Device, FpgaError> {
    let t = serial::SerialTransport::open(path, baud)?;
    Device::open(Box::new(t), timeout)
}

/// ZIP-215 verification given the challenge hash `SHA-512(R || A || M)`: the same steps,
/// library and encodings rules as `ed25519_consensus::VerificationKey::verify`.
pub fn verify_with_challenge(item: &SigItem<'_>, challenge: &[u8; 64]) -> bool {
    let mut r_bytes = [0u8; 32];
    let mut s_bytes = [0u8; 32];
    r_bytes.copy_from_slice(&item.signature[..32]);
    s_bytes.copy_from_slice(&item.signature[32..]);
    let Some(a) = CompressedEdwardsY(item.public_key).decompress() else {
        return false;
    };
    let Some(s) = Scalar::from_canonical_bytes(s_bytes) else {
        return false;
    };
    let Some(r) = CompressedEdwardsY(r_bytes).decompress() else {
        return false;
    };
    let k = Scalar::from_bytes_mod_order_wide(challenge);
    let r_prime = EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &-a, &s);
    (r - r_prime).mul_by_cofactor().is_identity()
}

/// The bytes the challenge hash covers: `R || A || M`.
pub fn challenge_input(item: &SigItem<'_>) -> Vec<u8> {
    let mut v = Vec::with_capacity(64 + item.message.len());
    v.extend_from_slice(&item.signature[..32]);
    v.extend_from_slice(&item.public_key);
    v.extend_from_slice(item.message);
    v
}

impl Accelerator for FpgaBackend {
    fn info(&self) -> BackendInfo {
        let mut features = vec![format!("transport={}", self.transport)];
        if let Some(i) = self.info {
            features.extend(i.cores().into_iter().map(str::to_owned));
            features.push(format!("{} MHz", i.clock_mhz));
            if i.has_sha512() {
                features.push("ed25519-challenge-on-fpga".into());
            }
        }
        BackendInfo {
            name: "fpga".into(),
            kind: BackendKind::Fpga,
            available: self.device.is_some(),
            device: match self.info {
                Some(i) => format!(
                    "cpchain host link v{} ({}) via {}",
                    i.protocol,
                    i.cores().join("+"),
                    self.transport
                ),
                None => format!("no device ({})", self.transport),
            },
            features,
            max_batch: Some(1024),
            parallelism: 1,
            unavailable_reason: self.unavailable.clone(),
        }
    }

    fn is_available(&self) -> bool {
        self.device.is_some()
    }

    fn sha256_batch(&self, msgs: &[&[u8]]) -> Result<Vec<Digest>, AccelError> {
        self.with_device(|d| Self::sha256_many(d, msgs))
    }

    fn merkle_root(&self, leaves: &[Digest]) -> Result<Digest, AccelError> {
        self.with_device(|d| {
            if leaves.is_empty() {
                return sha256_on(d, &[]);
            }
            let mut buf = [0u8; 65];
            let mut level = Vec::with_capacity(leaves.len());
            for leaf in leaves {
                buf[0] = merkle::LEAF_PREFIX;
                buf[1..33].copy_from_slice(leaf);
                level.push(sha256_on(d, &buf[..33])?);
            }
            while level.len() > 1 {
                let mut next = Vec::with_capacity(level.len().div_ceil(2));
                for pair in level.chunks_exact(2) {
                    buf[0] = merkle::NODE_PREFIX;
                    buf[1..33].copy_from_slice(&pair[0]);
                    buf[33..65].copy_from_slice(&pair[1]);
                    next.push(sha256_on(d, &buf)?);
                }
                // An odd last node moves up unchanged.
                next.extend(level.chunks_exact(2).remainder());
                level = next;
            }
            Ok(level[0])
        })
    }

    fn ed25519_verify_batch(&self, items: &[SigItem<'_>]) -> Result<Vec<bool>, AccelError> {
        self.with_device(|d| {
            if !d.info().has_sha512() {
                return Err(FpgaError::Unsupported(NO_SHA512));
            }
            items
                .iter()
                .map(|item| {
                    let k = d.hash(Hash::Sha512, &challenge_input(item))?;
                    let k: [u8; 64] = k.try_into().map_err(|v: Vec<u8>| {
                        FpgaError::Io(format!("{} digest bytes, expected 64", v.len()))
                    })?;
                    Ok(verify_with_challenge(item, &k))
                })
                .collect()
        })
    }
}
