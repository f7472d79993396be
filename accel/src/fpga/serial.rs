//! The serial transport: the UART protocol to a board on `/dev/ttyUSB*` or `/dev/ttyACM*`.

use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::transport::{FpgaError, Transport};

/// How long the device needs to drop a partial request: its frame timeout is 2^16
/// cycles, 1.4 ms at 48 MHz; this leaves room for a slower clock and USB latency.
const RESYNC_WAIT: Duration = Duration::from_millis(20);

/// A board behind a serial port.
pub struct SerialTransport {
    port: Box<dyn serialport::SerialPort>,
    path: PathBuf,
    baud: u32,
}

impl SerialTransport {
    /// Opens `path` at `baud`, 8N1, no flow control.
    pub fn open(path: &Path, baud: u32) -> Result<Self, FpgaError> {
        let name = path.to_string_lossy().into_owned();
        let port = serialport::new(&name, baud)
            .data_bits(serialport::DataBits::Eight)
            .parity(serialport::Parity::None)
            .stop_bits(serialport::StopBits::One)
            .flow_control(serialport::FlowControl::None)
            .timeout(Duration::from_millis(10))
            .open()
            .map_err(|e| FpgaError::Io(format!("cannot open {name} at {baud} baud: {e}")))?;
        Ok(Self {
            port,
            path: path.to_owned(),
            baud,
        })
    }

    fn io(&self, what: &str, e: impl std::fmt::Display) -> FpgaError {
        FpgaError::Io(format!("{what} {}: {e}", self.path.display()))
    }
}

impl Transport for SerialTransport {
    fn send(&mut self, bytes: &[u8]) -> Result<(), FpgaError> {
        self.port
            .write_all(bytes)
            .and_then(|()| self.port.flush())
            .map_err(|e| self.io("cannot write to", e))
    }

    fn recv_exact(&mut self, buf: &mut [u8], timeout: Duration) -> Result<(), FpgaError> {
        let start = Instant::now();
        let mut got = 0;
        while got < buf.len() {
            let left = timeout.saturating_sub(start.elapsed());
            if left.is_zero() {
                return Err(FpgaError::Timeout {
                    waited_ms: timeout.as_millis() as u64,
                    got,
                    want: buf.len(),
                });
            }
            self.port
                .set_timeout(left)
                .map_err(|e| self.io("cannot set a timeout on", e))?;
            match self.port.read(&mut buf[got..]) {
                Ok(0) => {}
                Ok(n) => got += n,
                Err(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::Interrupted) => {}
                Err(e) => return Err(self.io("cannot read from", e)),
            }
        }
        Ok(())
    }

    fn resync(&mut self) -> Result<(), FpgaError> {
        std::thread::sleep(RESYNC_WAIT);
        self.port
            .clear(serialport::ClearBuffer::Input)
            .map_err(|e| self.io("cannot clear", e))
    }

    fn describe(&self) -> String {
        format!("serial: {} at {} baud", self.path.display(), self.baud)
    }
}

/// Serial devices a board may sit behind: `/dev/ttyUSB*` and `/dev/ttyACM*`, sorted.
pub fn candidates() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir("/dev")
        .map(|dir| {
            dir.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("ttyUSB") || n.starts_with("ttyACM"))
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}
