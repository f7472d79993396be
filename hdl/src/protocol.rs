//! The host-link protocol, shared by the hardware ([`crate::link`]) and host software.
//!
//! The link is a byte stream (a UART at 8N1 on a board). The host sends one request and
//! waits for its response; the device never speaks unasked.
//!
//! ```text
//! request:  0xA5  cmd  payload…  crc
//! response: 0x5A  status  payload…  crc
//! ```
//!
//! `crc` is CRC-8 (polynomial `x^8 + x^2 + x + 1`, initial value 0, no reflection) over
//! every byte after the sync byte. Payload lengths follow from the command:
//!
//! | cmd | name | request payload | response payload (status OK) |
//! |---|---|---|---|
//! | `V` | version | — | `"CPCF"`, protocol version, feature bits, clock MHz |
//! | `L` | load block | flags, 64 bytes (128 with [`FLAG_SHA512`]) | — |
//! | `S` | start | flags | — |
//! | `D` | read digest | flags | 32 bytes (64 with [`FLAG_SHA512`]) |
//! | `?` | status | — | state bits, error counters, blocks hashed (u32, big-endian) |
//!
//! Flags: [`FLAG_FIRST`] (the block starts a new message), [`FLAG_START`] (load: start
//! hashing once loaded, saving the start round trip), [`FLAG_SHA512`] (use the SHA-512
//! core; a device without one answers [`STATUS_UNSUPPORTED`]).
//!
//! A request whose CRC is wrong is answered [`STATUS_BAD_CRC`]; an unknown command
//! [`STATUS_BAD_COMMAND`] (with a CRC over the status only). A request cut short is
//! dropped after [`FRAME_TIMEOUT_CYCLES`] idle cycles, so the next sync byte starts
//! afresh. Bytes outside a frame are ignored until a sync byte.
//!
//! Padding (FIPS 180-4 §5.1) is done by the host: the cores hash whole blocks.

/// First byte of a request.
pub const SYNC_REQUEST: u8 = 0xA5;
/// First byte of a response.
pub const SYNC_RESPONSE: u8 = 0x5A;

/// Command: identify the device.
pub const CMD_VERSION: u8 = b'V';
/// Command: load a block into the block buffer.
pub const CMD_LOAD: u8 = b'L';
/// Command: hash the loaded block.
pub const CMD_START: u8 = b'S';
/// Command: read the digest (waits for a running block).
pub const CMD_DIGEST: u8 = b'D';
/// Command: read status and counters.
pub const CMD_STATUS: u8 = b'?';

/// Flag: the block starts a new message.
pub const FLAG_FIRST: u8 = 0x01;
/// Flag (load only): start hashing once the block is loaded.
pub const FLAG_START: u8 = 0x02;
/// Flag: SHA-512 instead of SHA-256.
pub const FLAG_SHA512: u8 = 0x04;

/// Status: done.
pub const STATUS_OK: u8 = 0x00;
/// Status: the request's CRC did not match.
pub const STATUS_BAD_CRC: u8 = 0x01;
/// Status: unknown command byte.
pub const STATUS_BAD_COMMAND: u8 = 0x02;
/// Status: the device has no core for the requested hash.
pub const STATUS_UNSUPPORTED: u8 = 0x03;

/// The magic at the start of a version response.
pub const MAGIC: [u8; 4] = *b"CPCF";
/// The protocol version this crate speaks.
pub const PROTOCOL_VERSION: u8 = 1;
/// Feature bit: the device has a SHA-256 core.
pub const FEATURE_SHA256: u8 = 0x01;
/// Feature bit: the device has a SHA-512 core.
pub const FEATURE_SHA512: u8 = 0x02;

/// Length of a version response payload.
pub const VERSION_LEN: usize = 7;
/// Length of a status response payload.
pub const STATUS_LEN: usize = 8;

/// Idle clock cycles after which a partial request is dropped (about 1.4 ms at 48 MHz).
pub const FRAME_TIMEOUT_CYCLES: u32 = 1 << 16;

/// One step of CRC-8 (polynomial 0x07) over a byte.
pub const fn crc8_update(mut crc: u8, byte: u8) -> u8 {
    crc ^= byte;
    let mut i = 0;
    while i < 8 {
        crc = if crc & 0x80 != 0 {
            (crc << 1) ^ 0x07
        } else {
            crc << 1
        };
        i += 1;
    }
    crc
}

/// CRC-8 of a byte string.
pub fn crc8(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0, |c, &b| crc8_update(c, b))
}

/// A request frame: sync, command, payload, CRC.
pub fn request(cmd: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 3);
    out.push(SYNC_REQUEST);
    out.push(cmd);
    out.extend_from_slice(payload);
    out.push(crc8(&out[1..]));
    out
}

/// A response frame: sync, status, payload, CRC.
pub fn response(status: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 3);
    out.push(SYNC_RESPONSE);
    out.push(status);
    out.extend_from_slice(payload);
    out.push(crc8(&out[1..]));
    out
}

/// Length of a request's payload, from its command and first payload byte (the flags);
/// `None` for an unknown command.
pub fn request_payload_len(cmd: u8, flags: u8) -> Option<usize> {
    match cmd {
        CMD_VERSION | CMD_STATUS => Some(0),
        CMD_START | CMD_DIGEST => Some(1),
        CMD_LOAD if flags & FLAG_SHA512 != 0 => Some(129),
        CMD_LOAD => Some(65),
        _ => None,
    }
}

/// Length of the payload of an OK response to `cmd` with `flags`.
pub fn response_payload_len(cmd: u8, flags: u8) -> usize {
    match cmd {
        CMD_VERSION => VERSION_LEN,
        CMD_STATUS => STATUS_LEN,
        CMD_DIGEST if flags & FLAG_SHA512 != 0 => 64,
        CMD_DIGEST => 32,
        _ => 0,
    }
}

/// FIPS 180-4 padding of a message for SHA-256: a multiple of 64 bytes.
pub fn sha256_pad(msg: &[u8]) -> Vec<u8> {
    pad(msg, 64, 8)
}

/// FIPS 180-4 padding of a message for SHA-512: a multiple of 128 bytes.
pub fn sha512_pad(msg: &[u8]) -> Vec<u8> {
    pad(msg, 128, 16)
}

fn pad(msg: &[u8], block: usize, len_bytes: usize) -> Vec<u8> {
    let total = (msg.len() + 1 + len_bytes).div_ceil(block) * block;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(msg);
    out.push(0x80);
    out.resize(total - len_bytes, 0);
    let bits = (msg.len() as u128) * 8;
    out.extend_from_slice(&bits.to_be_bytes()[16 - len_bytes..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc8_check_value() {
        // The catalogue check value of CRC-8 (poly 0x07, init 0): "123456789" -> 0xF4.
        assert_eq!(crc8(b"123456789"), 0xF4);
    }

    #[test]
    fn padding_lengths() {
        for (len, blocks) in [
            (0, 1),
            (55, 1),
            (56, 2),
            (63, 2),
            (64, 2),
            (119, 2),
            (120, 3),
        ] {
            assert_eq!(sha256_pad(&vec![0; len]).len(), blocks * 64, "len {len}");
        }
        for (len, blocks) in [(0, 1), (111, 1), (112, 2), (128, 2)] {
            assert_eq!(sha512_pad(&vec![0; len]).len(), blocks * 128, "len {len}");
        }
        let p = sha256_pad(b"abc");
        assert_eq!(p[3], 0x80);
        assert_eq!(p[63], 24);
    }
}
