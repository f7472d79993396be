//! The FPGA backend against the CPU reference, on the rust-hdl simulation of the
//! bitstream, through the dispatcher, with protocol faults, and over a real serial port
//! (a pseudo-terminal with the simulated design behind it).

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cpc_accel::fpga::sim::{SimDesign, SimTransport};
use cpc_accel::fpga::{FpgaBackend, FpgaConfig, FpgaError, FpgaTransport, Transport};
use cpc_accel::{
    Accelerator, BackendKind, DispatchConfig, Dispatcher, Op, SigItem, cpu, merkle, vectors,
};
use rand::{Rng, SeedableRng};

const TIMEOUT: Duration = Duration::from_millis(500);

fn sim(design: SimDesign) -> FpgaBackend {
    FpgaBackend::open(Box::new(SimTransport::new(design).unwrap()), TIMEOUT)
}

fn messages() -> Vec<Vec<u8>> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let mut v: Vec<Vec<u8>> = vectors::sha256_vectors()
        .into_iter()
        .filter(|v| v.message.len() < 1000)
        .map(|v| v.message)
        .collect();
    for len in [0usize, 1, 55, 56, 63, 64, 65, 127, 128, 300] {
        v.push((0..len).map(|_| rng.r#gen()).collect());
    }
    v
}

#[test]
fn sim_backend_identifies_and_reports_its_transport() {
    let b = sim(SimDesign::Dual);
    let info = b.info();
    assert!(info.available, "{info:?}");
    assert_eq!(info.kind, BackendKind::Fpga);
    assert!(info.device.contains("sha256+sha512"), "{}", info.device);
    assert!(info.features.iter().any(|f| f.starts_with("transport=sim")));
    let status = b.device_status().unwrap();
    assert!(!status.busy);
}

#[test]
fn sim_sha256_and_merkle_equal_the_cpu() {
    let b = sim(SimDesign::Sha256);
    let msgs = messages();
    let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
    let got = b.sha256_batch(&refs).unwrap();
    let want: Vec<_> = refs.iter().map(|m| cpu::sha256_one(m)).collect();
    assert_eq!(got, want);
    for v in vectors::merkle_vectors() {
        assert_eq!(
            b.merkle_root(&v.leaf_values()).unwrap(),
            v.root,
            "{} leaves",
            v.leaves
        );
    }
    let leaves: Vec<_> = (0..37u32)
        .map(|i| cpu::sha256_one(&i.to_le_bytes()))
        .collect();
    assert_eq!(
        b.merkle_root(&leaves).unwrap(),
        merkle::reference_root(&leaves)
    );
}

#[test]
fn sim_ed25519_verdicts_equal_the_cpu_on_every_known_answer() {
    let b = sim(SimDesign::Dual);
    let ed = vectors::ed25519_vectors();
    let items: Vec<SigItem<'_>> = ed.iter().map(|v| v.item()).collect();
    let got = b.ed25519_verify_batch(&items).unwrap();
    for (v, ok) in ed.iter().zip(&got) {
        assert_eq!(*ok, v.valid, "{}", v.name);
        assert_eq!(*ok, cpu::ed25519_verify_one(&v.item()), "{}", v.name);
    }
}

#[test]
fn challenge_verification_equals_the_reference_on_random_and_tampered_items() {
    // The host half of the FPGA Ed25519 path with the challenge hashed by sha2: the same
    // verdict as ed25519-consensus for valid, tampered and random signatures.
    use sha2::Digest;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    for i in 0..200 {
        let sk = ed25519_consensus::SigningKey::new(&mut rng);
        let msg: Vec<u8> = (0..i % 97).map(|_| rng.r#gen()).collect();
        let mut sig: [u8; 64] = sk.sign(&msg).into();
        let pk: [u8; 32] = sk.verification_key().into();
        match i % 4 {
            1 => sig[rng.gen_range(0..64)] ^= 1 << rng.gen_range(0..8),
            2 => sig = rng.r#gen::<[[u8; 32]; 2]>().concat().try_into().unwrap(),
            _ => {}
        }
        let item = SigItem {
            public_key: pk,
            signature: sig,
            message: &msg,
        };
        let k: [u8; 64] = sha2::Sha512::digest(cpc_accel::fpga::challenge_input(&item)).into();
        assert_eq!(
            cpc_accel::fpga::verify_with_challenge(&item, &k),
            cpu::ed25519_verify_one(&item),
            "item {i}"
        );
    }
}

#[test]
fn a_bitstream_without_sha512_makes_the_dispatcher_verify_on_the_cpu() {
    let mut d = Dispatcher::new(DispatchConfig::only(BackendKind::Fpga)).unwrap();
    d.register(Arc::new(sim(SimDesign::Sha256))).unwrap();
    let ed = vectors::ed25519_vectors();
    let items: Vec<SigItem<'_>> = ed.iter().take(8).map(|v| v.item()).collect();
    let got = d.ed25519_verify_batch(&items);
    let want: Vec<bool> = ed.iter().take(8).map(|v| v.valid).collect();
    assert_eq!(got, want);
    let c = d
        .counters()
        .into_iter()
        .find(|c| c.backend == BackendKind::Fpga && c.op == Op::Ed25519)
        .unwrap();
    assert_eq!((c.errors_total, c.fallbacks_total), (1, 1));
    // SHA-256 still runs on the device.
    assert_eq!(d.sha256_batch(&[b"abc"]), vec![cpu::sha256_one(b"abc")]);
}

/// A transport that damages the traffic on chosen calls.
struct Faulty {
    inner: SimTransport,
    sends: usize,
    /// Drop the last byte of this request (the device waits, the host times out).
    truncate_send: Option<usize>,
    /// Flip a bit in the response to this request.
    corrupt_reply: Option<usize>,
}

impl Transport for Faulty {
    fn send(&mut self, bytes: &[u8]) -> Result<(), FpgaError> {
        self.sends += 1;
        if self.truncate_send == Some(self.sends) {
            return self.inner.send(&bytes[..bytes.len() - 1]);
        }
        self.inner.send(bytes)
    }
    fn recv_exact(&mut self, buf: &mut [u8], timeout: Duration) -> Result<(), FpgaError> {
        self.inner.recv_exact(buf, timeout)?;
        if self.corrupt_reply == Some(self.sends) && buf.len() > 1 {
            buf[buf.len() - 1] ^= 0x10;
        }
        Ok(())
    }
    fn resync(&mut self) -> Result<(), FpgaError> {
        self.inner.resync()
    }
    fn describe(&self) -> String {
        "faulty sim".into()
    }
}

fn faulty(truncate_send: Option<usize>, corrupt_reply: Option<usize>) -> Dispatcher {
    let t = Faulty {
        inner: SimTransport::new(SimDesign::Sha256).unwrap(),
        sends: 0,
        truncate_send,
        corrupt_reply,
    };
    let b = FpgaBackend::open(Box::new(t), TIMEOUT);
    assert!(b.is_available());
    let mut d = Dispatcher::new(DispatchConfig::only(BackendKind::Fpga)).unwrap();
    d.register(Arc::new(b)).unwrap();
    d
}

fn fpga_counter(d: &Dispatcher, op: Op) -> (u64, u64, u64) {
    let c = d
        .counters()
        .into_iter()
        .find(|c| c.backend == BackendKind::Fpga && c.op == op)
        .unwrap();
    (c.ops_total, c.errors_total, c.fallbacks_total)
}

#[test]
fn a_truncated_request_times_out_and_the_cpu_answers() {
    // Send 1 is the version command of open(); send 2 is the first block of "abc".
    let d = faulty(Some(2), None);
    assert_eq!(d.sha256_batch(&[b"abc"]), vec![cpu::sha256_one(b"abc")]);
    assert_eq!(fpga_counter(&d, Op::Sha256), (0, 1, 1));
    // The link is back in step: the next call runs on the device.
    assert_eq!(d.sha256_batch(&[b"xyz"]), vec![cpu::sha256_one(b"xyz")]);
    assert_eq!(fpga_counter(&d, Op::Sha256), (1, 1, 1));
}

#[test]
fn a_corrupted_response_is_rejected_and_the_cpu_answers() {
    // Send 3 is the digest request of "abc": its last byte (the crc) is damaged.
    let d = faulty(None, Some(3));
    assert_eq!(d.sha256_batch(&[b"abc"]), vec![cpu::sha256_one(b"abc")]);
    assert_eq!(fpga_counter(&d, Op::Sha256), (0, 1, 1));
    assert_eq!(d.sha256_batch(&[b"abc"]), vec![cpu::sha256_one(b"abc")]);
    assert_eq!(fpga_counter(&d, Op::Sha256), (1, 1, 1));
}

#[test]
fn device_errors_are_clear() {
    let t = SimTransport::new(SimDesign::Sha256).unwrap();
    let mut dev = cpc_accel::fpga::Device::open(Box::new(t), TIMEOUT).unwrap();
    // A malformed request: a load with the wrong length for its flags gets a bad crc.
    let e = dev.call(b'L', &[0x04, 1, 2, 3], 0).unwrap_err();
    assert!(
        matches!(
            e,
            FpgaError::Status { code: 3, .. } | FpgaError::Timeout { .. }
        ),
        "{e}"
    );
    let e = dev.call(b'Z', &[], 0).unwrap_err();
    assert_eq!(
        e.to_string(),
        "the device answered status 0x02 (unknown command)"
    );
    let e = dev.hash(cpc_accel::fpga::Hash::Sha512, b"abc").unwrap_err();
    assert_eq!(e.to_string(), "the bitstream has no sha-512 core");
    // After all that the device still hashes.
    assert_eq!(
        dev.hash(cpc_accel::fpga::Hash::Sha256, b"abc").unwrap(),
        cpu::sha256_one(b"abc").to_vec()
    );
}

#[test]
fn an_unconfigured_fpga_is_listed_with_the_reason() {
    let b = FpgaBackend::from_config(&FpgaConfig::default());
    let info = b.info();
    assert!(!info.available);
    assert!(info.unavailable_reason.unwrap().contains("transport"));
    assert_eq!(
        FpgaConfig::parse_flag("serial:/dev/ttyUSB3").unwrap(),
        FpgaConfig {
            transport: FpgaTransport::Serial,
            device: "/dev/ttyUSB3".into(),
            ..FpgaConfig::default()
        }
    );
    assert!(FpgaConfig::parse_flag("pcie").is_err());
}

/// Runs the simulated design behind the master side of a pseudo-terminal until `stop`.
fn serve_pty(mut master: serialport::TTYPort, design: SimDesign, stop: &AtomicBool) {
    use cpc_hdl::link::{EngineDual, params_dual};
    use cpc_hdl::sim::LinkSim;
    assert_eq!(design, SimDesign::Dual);
    let mut sim = LinkSim::new(EngineDual::new(params_dual(
        48,
        cpc_accel::fpga::sim::SIM_FRAME_TIMEOUT,
    )))
    .unwrap();
    serialport::SerialPort::set_timeout(&mut master, Duration::from_millis(1)).unwrap();
    let mut buf = [0u8; 512];
    while !stop.load(Ordering::Relaxed) {
        match master.read(&mut buf) {
            Ok(n) => sim.write(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => std::thread::sleep(Duration::from_millis(1)),
        }
        sim.run_until(usize::MAX, 256).unwrap();
        let out = sim.read(usize::MAX);
        if !out.is_empty() {
            master.write_all(&out).unwrap();
            master.flush().unwrap();
        }
    }
}

#[test]
fn serial_transport_finds_and_uses_a_board_behind_a_pseudo_terminal() {
    let (master, slave) = serialport::TTYPort::pair().unwrap();
    let path = std::path::PathBuf::from(serialport::SerialPort::name(&slave).unwrap());
    // A second terminal with nothing behind it: discovery must skip it.
    let (_silent_master, silent_slave) = serialport::TTYPort::pair().unwrap();
    let silent = std::path::PathBuf::from(serialport::SerialPort::name(&silent_slave).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let device = {
        let stop = stop.clone();
        std::thread::spawn(move || serve_pty(master, SimDesign::Dual, &stop))
    };

    let b = FpgaBackend::discover(&[silent, path.clone()], 3_000_000, Duration::from_secs(2));
    let info = b.info();
    assert!(info.available, "{info:?}");
    assert!(
        info.device.contains(&path.display().to_string()),
        "{}",
        info.device
    );
    let msgs = messages();
    let refs: Vec<&[u8]> = msgs.iter().take(6).map(Vec::as_slice).collect();
    let want: Vec<_> = refs.iter().map(|m| cpu::sha256_one(m)).collect();
    // Straight to the backend first, so a device error shows itself.
    assert_eq!(b.sha256_batch(&refs).unwrap(), want);
    let mut d = Dispatcher::new(DispatchConfig::only(BackendKind::Fpga)).unwrap();
    d.register(Arc::new(b)).unwrap();
    assert_eq!(d.sha256_batch(&refs), want);
    let leaves: Vec<_> = (0..5u32)
        .map(|i| cpu::sha256_one(&i.to_le_bytes()))
        .collect();
    assert_eq!(d.merkle_root(&leaves), merkle::reference_root(&leaves));
    let ed = vectors::ed25519_vectors();
    let items: Vec<SigItem<'_>> = ed.iter().take(7).map(|v| v.item()).collect();
    assert_eq!(
        d.ed25519_verify_batch(&items),
        ed.iter().take(7).map(|v| v.valid).collect::<Vec<_>>()
    );
    for op in [Op::Sha256, Op::Merkle, Op::Ed25519] {
        assert_eq!(fpga_counter(&d, op).1, 0, "{op} had device errors");
    }
    stop.store(true, Ordering::Relaxed);
    device.join().unwrap();
    drop(slave);
}
