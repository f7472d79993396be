//! The byte transport to an FPGA and the protocol client that runs over it.
//!
//! The protocol is [`cpc_hdl::protocol`]: one request, one response, CRC-8 on both. The
//! client never trusts the device: a response with the wrong sync byte, a bad CRC or too
//! few bytes is an error, and after any error the client waits for the device to drop
//! what it was parsing and discards stale input, so the next request starts in step.

use std::time::Duration;

use cpc_hdl::protocol::{self as p, crc8};

/// What went wrong talking to an FPGA.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FpgaError {
    /// The device did not answer in time.
    #[error("no answer from the device within {waited_ms} ms ({got} of {want} bytes)")]
    Timeout {
        /// How long the client waited.
        waited_ms: u64,
        /// Bytes received.
        got: usize,
        /// Bytes expected.
        want: usize,
    },
    /// The response did not start with the response sync byte.
    #[error("malformed response: sync byte {0:#04x}, expected 0x5a")]
    BadSync(u8),
    /// The response's CRC did not match.
    #[error("malformed response: crc {got:#04x}, expected {want:#04x}")]
    BadCrc {
        /// The CRC received.
        got: u8,
        /// The CRC of the bytes received.
        want: u8,
    },
    /// The device rejected the request.
    #[error("the device answered status {code:#04x} ({name})")]
    Status {
        /// The status byte.
        code: u8,
        /// What it means.
        name: &'static str,
    },
    /// The device is not a CPChain bitstream or speaks another protocol version.
    #[error("not a cpchain accelerator: {0}")]
    NotOurs(String),
    /// The bitstream lacks the core an operation needs.
    #[error("the bitstream has no {0} core")]
    Unsupported(&'static str),
    /// The transport failed (device unplugged, permission denied, …).
    #[error("{0}")]
    Io(String),
}

fn status_name(code: u8) -> &'static str {
    match code {
        p::STATUS_BAD_CRC => "bad crc",
        p::STATUS_BAD_COMMAND => "unknown command",
        p::STATUS_UNSUPPORTED => "unsupported",
        _ => "unknown status",
    }
}

/// A byte pipe to a device running the host-link bitstream (or its simulation).
///
/// Implementations are used from one thread at a time (the backend holds a lock).
pub trait Transport: Send {
    /// Writes every byte.
    fn send(&mut self, bytes: &[u8]) -> Result<(), FpgaError>;
    /// Reads exactly `buf.len()` bytes, or fails with [`FpgaError::Timeout`] (reporting
    /// how many arrived) once `timeout` has passed without them.
    fn recv_exact(&mut self, buf: &mut [u8], timeout: Duration) -> Result<(), FpgaError>;
    /// Waits until the device has dropped any partial request (its frame timeout) and
    /// discards whatever it sent meanwhile.
    fn resync(&mut self) -> Result<(), FpgaError>;
    /// What `cpchain accel list` shows: the transport and where it leads.
    fn describe(&self) -> String;
}

/// What the version command reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Protocol version.
    pub protocol: u8,
    /// Feature bits ([`p::FEATURE_SHA256`], [`p::FEATURE_SHA512`]).
    pub features: u8,
    /// Core clock in MHz.
    pub clock_mhz: u8,
}

impl DeviceInfo {
    /// Whether the bitstream has the SHA-512 core.
    pub fn has_sha512(&self) -> bool {
        self.features & p::FEATURE_SHA512 != 0
    }

    /// The cores, for display.
    pub fn cores(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.features & p::FEATURE_SHA256 != 0 {
            v.push("sha256");
        }
        if self.has_sha512() {
            v.push("sha512");
        }
        v
    }
}

/// Counters the device keeps (the status command).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceStatus {
    /// A block is being hashed.
    pub busy: bool,
    /// Requests with a bad CRC.
    pub crc_errors: u8,
    /// Bytes that arrived while the device could not take them.
    pub overruns: u8,
    /// Requests dropped part-way by the frame timeout.
    pub timeouts: u8,
    /// Blocks hashed since power-up.
    pub blocks: u32,
}

/// The hash a request is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hash {
    /// SHA-256: 64-byte blocks, 32-byte digest.
    Sha256,
    /// SHA-512: 128-byte blocks, 64-byte digest.
    Sha512,
}

/// The protocol client over a transport.
pub struct Device {
    transport: Box<dyn Transport>,
    timeout: Duration,
    info: DeviceInfo,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device")
            .field("transport", &self.transport.describe())
            .field("info", &self.info)
            .finish()
    }
}

impl Device {
    /// Identifies the device with the version command; fails unless it is a CPChain
    /// accelerator speaking this protocol version.
    pub fn open(mut transport: Box<dyn Transport>, timeout: Duration) -> Result<Self, FpgaError> {
        transport.resync()?;
        let payload = call(
            transport.as_mut(),
            timeout,
            p::CMD_VERSION,
            &[],
            p::VERSION_LEN,
        )?;
        if payload[..4] != p::MAGIC {
            return Err(FpgaError::NotOurs(format!(
                "version magic {:02x?}",
                &payload[..4]
            )));
        }
        if payload[4] != p::PROTOCOL_VERSION {
            return Err(FpgaError::NotOurs(format!(
                "protocol version {} (this cpchain speaks {})",
                payload[4],
                p::PROTOCOL_VERSION
            )));
        }
        let info = DeviceInfo {
            protocol: payload[4],
            features: payload[5],
            clock_mhz: payload[6],
        };
        Ok(Self {
            transport,
            timeout,
            info,
        })
    }

    /// What the device reported when it was opened.
    pub fn info(&self) -> DeviceInfo {
        self.info
    }

    /// The transport's description.
    pub fn describe(&self) -> String {
        self.transport.describe()
    }

    /// Sends one raw request and returns the payload of an OK response.
    pub fn call(&mut self, cmd: u8, payload: &[u8], resp_len: usize) -> Result<Vec<u8>, FpgaError> {
        call(
            self.transport.as_mut(),
            self.timeout,
            cmd,
            payload,
            resp_len,
        )
    }

    /// The device's counters.
    pub fn status(&mut self) -> Result<DeviceStatus, FpgaError> {
        let s = self.call(p::CMD_STATUS, &[], p::STATUS_LEN)?;
        Ok(DeviceStatus {
            busy: s[0] & 1 != 0,
            crc_errors: s[1],
            overruns: s[2],
            timeouts: s[3],
            blocks: u32::from_be_bytes([s[4], s[5], s[6], s[7]]),
        })
    }

    /// The digest of `msg`, hashed block by block on the device (padding is done here).
    pub fn hash(&mut self, hash: Hash, msg: &[u8]) -> Result<Vec<u8>, FpgaError> {
        let (padded, block, sel, digest_len) = match hash {
            Hash::Sha256 => (p::sha256_pad(msg), 64, 0, 32),
            Hash::Sha512 => {
                if !self.info.has_sha512() {
                    return Err(FpgaError::Unsupported("sha-512"));
                }
                (p::sha512_pad(msg), 128, p::FLAG_SHA512, 64)
            }
        };
        let mut payload = Vec::with_capacity(block + 1);
        for (i, chunk) in padded.chunks(block).enumerate() {
            let first = if i == 0 { p::FLAG_FIRST } else { 0 };
            payload.clear();
            payload.push(first | p::FLAG_START | sel);
            payload.extend_from_slice(chunk);
            self.call(p::CMD_LOAD, &payload, 0)?;
        }
        self.call(p::CMD_DIGEST, &[sel], digest_len)
    }
}

/// One exchange; on any failure the transport is resynchronised before the error returns.
fn call(
    t: &mut dyn Transport,
    timeout: Duration,
    cmd: u8,
    payload: &[u8],
    resp_len: usize,
) -> Result<Vec<u8>, FpgaError> {
    let result = exchange(t, timeout, cmd, payload, resp_len);
    if let Err(e) = &result
        && !matches!(e, FpgaError::Io(_))
    {
        // Best effort: if this fails too, the next call fails and says why.
        let _ = t.resync();
    }
    result
}

fn exchange(
    t: &mut dyn Transport,
    timeout: Duration,
    cmd: u8,
    payload: &[u8],
    resp_len: usize,
) -> Result<Vec<u8>, FpgaError> {
    t.send(&p::request(cmd, payload))?;
    let mut head = [0u8; 2];
    t.recv_exact(&mut head, timeout)?;
    if head[0] != p::SYNC_RESPONSE {
        return Err(FpgaError::BadSync(head[0]));
    }
    if head[1] != p::STATUS_OK {
        let mut crc = [0u8; 1];
        t.recv_exact(&mut crc, timeout)?;
        return Err(FpgaError::Status {
            code: head[1],
            name: status_name(head[1]),
        });
    }
    let mut rest = vec![0u8; resp_len + 1];
    t.recv_exact(&mut rest, timeout)?;
    let mut body = Vec::with_capacity(resp_len + 1);
    body.push(head[1]);
    body.extend_from_slice(&rest[..resp_len]);
    let want = crc8(&body);
    if rest[resp_len] != want {
        return Err(FpgaError::BadCrc {
            got: rest[resp_len],
            want,
        });
    }
    body.remove(0);
    Ok(body)
}
