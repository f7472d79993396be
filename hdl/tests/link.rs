//! The host link in rust-hdl simulation: the conformance exchanges at the byte ports of
//! both engines, and a few over the UART, bit by bit.

use cpc_hdl::emit::{Exchange, hash_exchanges, standard_exchanges, uart_256, uart_dual};
use cpc_hdl::link::{Engine256, EngineDual, params_256, params_dual};
use cpc_hdl::protocol as p;
use cpc_hdl::sim::{ByteEngine, Clocked, LinkSim, Stepper};
use rust_hdl::prelude::*;

const TIMEOUT: u32 = 256;

fn run_exchanges<E: ByteEngine>(sim: &mut LinkSim<E>, exchanges: &[Exchange]) {
    for e in exchanges {
        sim.write(&e.request);
        sim.run_until(e.response.len(), 50_000).unwrap();
        let got = sim.read(usize::MAX);
        assert_eq!(hex(&got), hex(&e.response), "{}: response differs", e.label);
        if e.idle_after > 0 {
            sim.run_until(usize::MAX, u64::from(e.idle_after)).unwrap();
            assert_eq!(sim.available(), 0, "{}: bytes after the response", e.label);
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn sha256_engine_passes_the_conformance_exchanges() {
    let mut sim = LinkSim::new(Engine256::new(params_256(48, TIMEOUT))).unwrap();
    run_exchanges(&mut sim, &standard_exchanges(false, 48, TIMEOUT));
}

#[test]
fn dual_engine_passes_the_conformance_exchanges() {
    let mut sim = LinkSim::new(EngineDual::new(params_dual(48, TIMEOUT))).unwrap();
    run_exchanges(&mut sim, &standard_exchanges(true, 48, TIMEOUT));
}

#[test]
fn a_request_cut_short_is_dropped_after_the_frame_timeout() {
    let mut sim = LinkSim::new(Engine256::new(params_256(48, TIMEOUT))).unwrap();
    let full = p::request(p::CMD_VERSION, &[]);
    sim.write(&full[..2]);
    sim.run_until(1, u64::from(TIMEOUT) * 2).unwrap();
    assert_eq!(sim.available(), 0, "no answer to half a request");
    // The link is back in step: a whole request is answered.
    run_exchanges(&mut sim, &standard_exchanges(false, 48, TIMEOUT)[..1]);
    // And it counted the timeout.
    sim.write(&p::request(p::CMD_STATUS, &[]));
    sim.run_until(11, 10_000).unwrap();
    let status = sim.read(usize::MAX);
    assert_eq!(status[1], p::STATUS_OK);
    assert_eq!(status[5], 1, "one frame timeout counted: {}", hex(&status));
}

#[test]
fn garbage_between_frames_is_ignored() {
    let mut sim = LinkSim::new(Engine256::new(params_256(48, TIMEOUT))).unwrap();
    sim.write(&[0x00, 0xff, 0x13, 0x5a]);
    sim.run_until(1, 100).unwrap();
    assert_eq!(sim.available(), 0);
    run_exchanges(&mut sim, &hash_exchanges(b"abc", false, "abc"));
}

/// Drives a UART top level bit by bit: `clocks_per_bit` clocks per bit, 8N1.
fn uart_exchange<T: Clocked>(
    s: &mut Stepper<T>,
    rx: impl Fn(&mut T) -> &mut Signal<In, Bit>,
    tx: impl Fn(&T) -> bool,
    cpb: u64,
    request: &[u8],
    want: usize,
) -> Vec<u8> {
    let mut line = Vec::new();
    for &b in request {
        line.push(false);
        for i in 0..8 {
            line.push(b >> i & 1 == 1);
        }
        line.push(true);
    }
    let mut out = Vec::new();
    let (mut prev, mut bit_at, mut bits, mut cur) = (true, 0u64, 0u32, 0u16);
    let mut t = 0u64;
    let limit = (line.len() as u64 + want as u64 * 10 + 200) * cpb + 2_000;
    while t < limit && out.len() < want {
        let level = line.get((t / cpb) as usize).copied().unwrap_or(true);
        rx(&mut s.uut).next = level;
        s.cycle().unwrap();
        t += 1;
        let now = tx(&s.uut);
        if bits == 0 && prev && !now {
            // Start bit: sample each bit in its middle.
            bit_at = t + cpb / 2;
            bits = 10;
            cur = 0;
        } else if bits > 0 && t == bit_at {
            let idx = 10 - bits;
            if (1..=8).contains(&idx) && now {
                cur |= 1 << (idx - 1);
            }
            if idx == 9 {
                assert!(now, "stop bit missing");
                out.push(cur as u8);
            }
            bits -= 1;
            bit_at += cpb;
        }
        prev = now;
    }
    out
}

#[test]
fn uart_top_answers_over_the_serial_line() {
    let cpb = 4u16;
    let mut s = Stepper::new(uart_dual(cpb, TIMEOUT)).unwrap();
    let mut exchanges = standard_exchanges(true, 48, TIMEOUT)[..1].to_vec();
    exchanges.extend(hash_exchanges(b"abc", false, "abc"));
    exchanges.extend(hash_exchanges(b"abc", true, "abc"));
    for e in &exchanges {
        let got = uart_exchange(
            &mut s,
            |t| &mut t.rx,
            |t| t.tx.val(),
            u64::from(cpb),
            &e.request,
            e.response.len(),
        );
        assert_eq!(hex(&got), hex(&e.response), "{}", e.label);
    }
    let mut s = Stepper::new(uart_256(cpb, TIMEOUT)).unwrap();
    for e in &standard_exchanges(false, 48, TIMEOUT)[..1] {
        let got = uart_exchange(
            &mut s,
            |t| &mut t.rx,
            |t| t.tx.val(),
            u64::from(cpb),
            &e.request,
            e.response.len(),
        );
        assert_eq!(hex(&got), hex(&e.response), "{}", e.label);
    }
}
