//! Verilog of every top level, and testbenches that check the emitted Verilog on its own.
//!
//! [`designs`] lists what `cpchain hdl emit` writes. [`uart_testbench`] turns a list of
//! request/response exchanges into a self-checking Verilog testbench that drives a UART
//! top level bit by bit, so the artefact that becomes a bitstream is simulated by an
//! independent simulator (Icarus Verilog), not only by rust-hdl's model of it.

use std::fmt::Write as _;

use rust_hdl::prelude::*;

use crate::link::{params_256, params_dual};
use crate::protocol::FRAME_TIMEOUT_CYCLES;
use crate::sha256::Sha256Core;
use crate::sha512::Sha512Core;
use crate::top::{
    BOARD_CLOCK_MHZ, BOARD_CLOCKS_PER_BIT, Hx8kTop256, Hx8kTopDual, UartTop256, UartTopDual,
};

/// One emitted design.
#[derive(Clone, Debug)]
pub struct Design {
    /// Module and file name (without `.v`).
    pub name: &'static str,
    /// What it is.
    pub description: &'static str,
    /// The Verilog source; the top module is named after the design.
    pub verilog: String,
}

fn verilog_of<B: Block>(mut uut: B, name: &str) -> String {
    uut.connect_all();
    let text = generate_verilog_unchecked(&uut);
    // rust-hdl names the top module `top`; name it after the design so several designs
    // can be read into one tool run.
    text.replacen("module top(", &format!("module {name}("), 1)
}

/// Every top level: the two cores, the UART links (what the testbench drives) and the
/// iCE40-HX8K board designs (what the flow builds).
pub fn designs() -> Vec<Design> {
    let timeout = FRAME_TIMEOUT_CYCLES;
    vec![
        Design {
            name: "cpc_sha256_core",
            description: "SHA-256 core: valid/ready word stream, 66 cycles per block",
            verilog: verilog_of(core_256(), "cpc_sha256_core"),
        },
        Design {
            name: "cpc_sha512_core",
            description: "SHA-512 core: valid/ready word stream, 82 cycles per block",
            verilog: verilog_of(core_512(), "cpc_sha512_core"),
        },
        Design {
            name: "cpc_sha256_uart",
            description: "SHA-256 host link behind a UART (16 clocks per bit)",
            verilog: verilog_of(uart_256(BOARD_CLOCKS_PER_BIT, timeout), "cpc_sha256_uart"),
        },
        Design {
            name: "cpc_dual_uart",
            description: "SHA-256 + SHA-512 host link behind a UART (16 clocks per bit)",
            verilog: verilog_of(uart_dual(BOARD_CLOCKS_PER_BIT, timeout), "cpc_dual_uart"),
        },
        Design {
            name: "cpc_sha256_hx8k",
            description: "SHA-256 accelerator for the iCE40-HX8K breakout (48 MHz PLL, 3 Mbaud)",
            verilog: verilog_of(
                board(Hx8kTop256::new(params_256(BOARD_CLOCK_MHZ, timeout))),
                "cpc_sha256_hx8k",
            ),
        },
        Design {
            name: "cpc_dual_hx8k",
            description: "SHA-256 + SHA-512 for the iCE40-HX8K breakout (needs 8,383 cells: does not fit)",
            verilog: verilog_of(
                board(Hx8kTopDual::new(params_dual(BOARD_CLOCK_MHZ, timeout))),
                "cpc_dual_hx8k",
            ),
        },
    ]
}

fn core_256() -> Sha256Core {
    let mut c = Sha256Core::default();
    c.clock.connect();
    c.in_data.connect();
    c.in_valid.connect();
    c.in_first.connect();
    c.digest_sel.connect();
    c
}

fn core_512() -> Sha512Core {
    let mut c = Sha512Core::default();
    c.clock.connect();
    c.in_data.connect();
    c.in_valid.connect();
    c.in_first.connect();
    c.digest_sel.connect();
    c
}

/// The SHA-256 UART top with `clocks_per_bit` and a frame timeout, its ports connected.
pub fn uart_256(clocks_per_bit: u16, frame_timeout: u32) -> UartTop256 {
    let mut t = UartTop256::new(params_256(BOARD_CLOCK_MHZ, frame_timeout), clocks_per_bit);
    t.clock.connect();
    t.rx.connect();
    t
}

/// The SHA-256 + SHA-512 UART top with `clocks_per_bit` and a frame timeout.
pub fn uart_dual(clocks_per_bit: u16, frame_timeout: u32) -> UartTopDual {
    let mut t = UartTopDual::new(params_dual(BOARD_CLOCK_MHZ, frame_timeout), clocks_per_bit);
    t.clock.connect();
    t.rx.connect();
    t
}

trait BoardPorts {
    fn connect_ports(&mut self);
}

impl BoardPorts for Hx8kTop256 {
    fn connect_ports(&mut self) {
        self.clock.connect();
        self.rx.connect();
    }
}

impl BoardPorts for Hx8kTopDual {
    fn connect_ports(&mut self) {
        self.clock.connect();
        self.rx.connect();
    }
}

fn board<T: BoardPorts>(mut t: T) -> T {
    t.connect_ports();
    t
}

/// One request and the response it must produce, plus idle cycles to wait afterwards
/// (after an error the link ignores the line until it has been idle a frame timeout).
#[derive(Clone, Debug)]
pub struct Exchange {
    /// What the exchange checks, printed on failure.
    pub label: String,
    /// The request bytes.
    pub request: Vec<u8>,
    /// The expected response bytes.
    pub response: Vec<u8>,
    /// Idle clock cycles after the response.
    pub idle_after: u32,
}

/// A self-checking testbench for the UART top level `module` at `clocks_per_bit`: it sends
/// each request over `rx` bit by bit, decodes `tx` in a parallel process and compares.
/// It prints `PASS <n>` or `FAIL …` and finishes.
pub fn uart_testbench(module: &str, clocks_per_bit: u16, exchanges: &[Exchange]) -> String {
    let req: Vec<u8> = exchanges.iter().flat_map(|e| e.request.clone()).collect();
    let resp: Vec<u8> = exchanges.iter().flat_map(|e| e.response.clone()).collect();
    let mut tb = String::new();
    let cpb = clocks_per_bit;
    let _ = write!(
        tb,
        r#"`timescale 1ns/1ps
// Generated by cpc-hdl: {n} exchanges with {module} over its UART.
module tb;
  localparam CPB = {cpb};
  reg clock = 0;
  always #5 clock = ~clock;
  reg rx = 1;
  wire tx;
  {module} dut(.clock(clock), .rx(rx), .tx(tx));

  reg [7:0] req [0:{rq}];
  reg [7:0] exp [0:{rs}];
  reg [7:0] got [0:{rs}];
  integer got_n = 0;

  // Receiver: decodes every byte on tx into got[].
  integer ri;
  reg [7:0] rbyte;
  initial begin
    forever begin
      // A start bit is a high-to-low edge; X at power-up is neither.
      wait (tx === 1'b1);
      wait (tx === 1'b0);
      repeat (CPB / 2) @(posedge clock);
      for (ri = 0; ri < 8; ri = ri + 1) begin
        repeat (CPB) @(posedge clock);
        rbyte[ri] = tx;
      end
      repeat (CPB) @(posedge clock);
      if (tx !== 1'b1) begin
        $display("FAIL framing error on tx at byte %0d", got_n);
        $finish;
      end
      got[got_n] = rbyte;
      got_n = got_n + 1;
    end
  end

  task send_byte(input [7:0] b);
    integer i;
    begin
      rx = 0;
      repeat (CPB) @(posedge clock);
      for (i = 0; i < 8; i = i + 1) begin
        rx = b[i];
        repeat (CPB) @(posedge clock);
      end
      rx = 1;
      repeat (CPB) @(posedge clock);
    end
  endtask

  integer qi = 0;
  integer ei = 0;
  integer k;
  integer waited;
  task exchange(input integer nreq, input integer nresp, input integer idle, input [8*64-1:0] label);
    begin
      for (k = 0; k < nreq; k = k + 1) begin
        send_byte(req[qi]);
        qi = qi + 1;
      end
      waited = 0;
      while (got_n < ei + nresp && waited < 200000) begin
        @(posedge clock);
        waited = waited + 1;
      end
      if (got_n < ei + nresp) begin
        $display("FAIL %0s: %0d of %0d response bytes", label, got_n - ei, nresp);
        $finish;
      end
      for (k = ei; k < ei + nresp; k = k + 1) begin
        if (got[k] !== exp[k]) begin
          $display("FAIL %0s: response byte %0d is %h, expected %h", label, k - ei, got[k], exp[k]);
          $finish;
        end
      end
      ei = ei + nresp;
      repeat (idle + 4 * CPB) @(posedge clock);
      if (got_n != ei) begin
        $display("FAIL %0s: %0d unexpected bytes after the response", label, got_n - ei);
        $finish;
      end
    end
  endtask

  initial begin
"#,
        n = exchanges.len(),
        rq = req.len().max(1) - 1,
        rs = resp.len().max(1) - 1,
    );
    for (i, b) in req.iter().enumerate() {
        let _ = writeln!(tb, "    req[{i}] = 8'h{b:02x};");
    }
    for (i, b) in resp.iter().enumerate() {
        let _ = writeln!(tb, "    exp[{i}] = 8'h{b:02x};");
    }
    tb.push_str("    repeat (16) @(posedge clock);\n");
    for e in exchanges {
        let label: String = e
            .label
            .chars()
            .filter(|c| c.is_ascii_graphic() || *c == ' ')
            .filter(|c| *c != '"' && *c != '\\')
            .take(64)
            .collect();
        let _ = writeln!(
            tb,
            "    exchange({}, {}, {}, \"{}\");",
            e.request.len(),
            e.response.len(),
            e.idle_after,
            label
        );
    }
    let _ = write!(
        tb,
        r#"    $display("PASS %0d", {n});
    $finish;
  end
endmodule
"#,
        n = exchanges.len()
    );
    tb
}

/// The FIPS 180-4 example messages.
pub fn fips_messages() -> Vec<Vec<u8>> {
    vec![
        b"abc".to_vec(),
        b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".to_vec(),
        b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu".to_vec(),
    ]
}

/// A deterministic pseudo-random message (xorshift), so testbenches need no RNG crate.
pub fn pattern_message(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// The requests that hash `msg` (one load-and-start per block, then a digest read) and
/// their expected responses, computed with the `sha2` crate.
pub fn hash_exchanges(msg: &[u8], sha512: bool, label: &str) -> Vec<Exchange> {
    use crate::protocol as p;
    use sha2::Digest as _;
    let (padded, block, sel, digest) = if sha512 {
        (
            p::sha512_pad(msg),
            128,
            p::FLAG_SHA512,
            sha2::Sha512::digest(msg).to_vec(),
        )
    } else {
        (
            p::sha256_pad(msg),
            64,
            0,
            sha2::Sha256::digest(msg).to_vec(),
        )
    };
    let mut out = Vec::new();
    for (i, chunk) in padded.chunks(block).enumerate() {
        let first = if i == 0 { p::FLAG_FIRST } else { 0 };
        let mut payload = vec![first | p::FLAG_START | sel];
        payload.extend_from_slice(chunk);
        out.push(Exchange {
            label: format!("{label} block {i}"),
            request: p::request(p::CMD_LOAD, &payload),
            response: p::response(p::STATUS_OK, &[]),
            idle_after: 0,
        });
    }
    out.push(Exchange {
        label: format!("{label} digest"),
        request: p::request(p::CMD_DIGEST, &[sel]),
        response: p::response(p::STATUS_OK, &digest),
        idle_after: 0,
    });
    out
}

/// The conformance exchanges every host link must pass: version, SHA-256 (and SHA-512 on
/// a dual design) of the FIPS examples and of every length class (0, 55, 56, 63, 64, 65,
/// multi-block), a request with a bad CRC, an unknown command, SHA-512 on a SHA-256-only
/// design, and the status counters that follow from all that.
pub fn standard_exchanges(dual: bool, clock_mhz: u8, frame_timeout: u32) -> Vec<Exchange> {
    use crate::protocol as p;
    let features = if dual {
        p::FEATURE_SHA256 | p::FEATURE_SHA512
    } else {
        p::FEATURE_SHA256
    };
    let drain = frame_timeout + 64;
    let mut out = vec![Exchange {
        label: "version".into(),
        request: p::request(p::CMD_VERSION, &[]),
        response: p::response(
            p::STATUS_OK,
            &[
                b'C',
                b'P',
                b'C',
                b'F',
                p::PROTOCOL_VERSION,
                features,
                clock_mhz,
            ],
        ),
        idle_after: 0,
    }];
    let mut blocks = 0u32;
    let mut msgs = fips_messages();
    msgs.push(Vec::new());
    for (i, len) in [55usize, 56, 63, 64, 65, 130].into_iter().enumerate() {
        msgs.push(pattern_message(len, i as u64 + 1));
    }
    for (i, m) in msgs.iter().enumerate() {
        blocks += (p::sha256_pad(m).len() / 64) as u32;
        out.extend(hash_exchanges(
            m,
            false,
            &format!("sha256 #{i} ({} bytes)", m.len()),
        ));
    }
    if dual {
        let mut m512 = fips_messages();
        m512.push(Vec::new());
        for (i, len) in [111usize, 112, 128, 300].into_iter().enumerate() {
            m512.push(pattern_message(len, i as u64 + 100));
        }
        for (i, m) in m512.iter().enumerate() {
            blocks += (p::sha512_pad(m).len() / 128) as u32;
            out.extend(hash_exchanges(
                m,
                true,
                &format!("sha512 #{i} ({} bytes)", m.len()),
            ));
        }
        // SHA-256 again after SHA-512, so the status below reads a valid SHA-256 digest.
        blocks += 1;
        out.extend(hash_exchanges(b"abc", false, "sha256 after sha512"));
    } else {
        out.push(Exchange {
            label: "sha512 unsupported".into(),
            request: p::request(p::CMD_DIGEST, &[p::FLAG_SHA512]),
            response: p::response(p::STATUS_UNSUPPORTED, &[]),
            idle_after: 0,
        });
    }
    let mut bad = p::request(p::CMD_VERSION, &[]);
    let last = bad.len() - 1;
    bad[last] ^= 0x55;
    out.push(Exchange {
        label: "bad crc".into(),
        request: bad,
        response: p::response(p::STATUS_BAD_CRC, &[]),
        idle_after: drain,
    });
    out.push(Exchange {
        label: "unknown command".into(),
        request: vec![p::SYNC_REQUEST, b'Z'],
        response: p::response(p::STATUS_BAD_COMMAND, &[]),
        idle_after: drain,
    });
    let b = blocks.to_be_bytes();
    out.push(Exchange {
        label: "status".into(),
        request: p::request(p::CMD_STATUS, &[]),
        // digest valid, 1 crc error, no overruns, no timeouts, blocks hashed
        response: p::response(p::STATUS_OK, &[0x02, 1, 0, 0, b[0], b[1], b[2], b[3]]),
        idle_after: 0,
    });
    out
}
