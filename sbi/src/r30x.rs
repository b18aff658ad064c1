//! The ZhianTec packet protocol of R30x-family optical fingerprint sensors (R307, R503, AS608).
//!
//! A packet is `EF 01 | address (4, BE) | packet id (1) | length (2, BE) | payload | checksum (2, BE)`,
//! where `length` counts the payload plus the two checksum bytes and the checksum is the low 16 bits of
//! the sum of the packet id, the two length bytes and every payload byte. Packet ids: `0x01` command,
//! `0x02` data with more to follow, `0x07` acknowledgement, `0x08` last data packet.
//!
//! This module is the codec only (no I/O): [`encode`] and an incremental [`decode`] that reports what
//! is wrong with a bad frame and where, never panics and never allocates more than
//! [`MAX_PAYLOAD`] bytes for one packet.

/// The fixed header.
pub const HEADER: [u8; 2] = [0xEF, 0x01];
/// The factory-default module address.
pub const DEFAULT_ADDRESS: u32 = 0xFFFF_FFFF;
/// Largest payload accepted (sensors use data packets of 32-256 bytes; commands are shorter).
pub const MAX_PAYLOAD: usize = 1024;
/// Bytes before the payload: header 2, address 4, id 1, length 2.
pub const PREFIX_LEN: usize = 9;

/// The packet identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketId {
    /// 0x01: a command from the host.
    Command,
    /// 0x02: a data packet, more follow.
    Data,
    /// 0x07: an acknowledgement from the sensor.
    Ack,
    /// 0x08: the last data packet.
    EndData,
}

impl PacketId {
    /// The wire byte.
    pub fn code(self) -> u8 {
        match self {
            PacketId::Command => 0x01,
            PacketId::Data => 0x02,
            PacketId::Ack => 0x07,
            PacketId::EndData => 0x08,
        }
    }

    /// From the wire byte.
    pub fn from_code(b: u8) -> Option<Self> {
        match b {
            0x01 => Some(PacketId::Command),
            0x02 => Some(PacketId::Data),
            0x07 => Some(PacketId::Ack),
            0x08 => Some(PacketId::EndData),
            _ => None,
        }
    }
}

/// Instruction codes the driver uses.
pub mod instruction {
    /// Capture a finger image into the image buffer.
    pub const GEN_IMG: u8 = 0x01;
    /// Generate a character file from the image into a char buffer.
    pub const IMG2TZ: u8 = 0x02;
    /// Upload a character buffer (template) to the host.
    pub const UP_CHAR: u8 = 0x08;
    /// Upload the image buffer to the host.
    pub const UP_IMAGE: u8 = 0x0A;
    /// Read the system parameters.
    pub const READ_SYS_PARA: u8 = 0x0F;
    /// Verify the module password.
    pub const VFY_PWD: u8 = 0x13;
    /// Number of stored templates.
    pub const TEMPLATE_NUM: u8 = 0x1D;
    /// Handshake (R503 and later; the reply is an ack with code 0).
    pub const HANDSHAKE: u8 = 0x40;
}

/// One packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Module address.
    pub address: u32,
    /// Kind.
    pub id: PacketId,
    /// Payload (instruction + parameters, confirmation code + data, or image/template data).
    pub payload: Vec<u8>,
}

/// A frame that cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The first two bytes are not `EF 01`.
    #[error(
        "serial frame does not start with EF 01 (found {found:02X?}); the port is not talking to an R30x sensor or lost sync"
    )]
    BadHeader {
        /// The two bytes found.
        found: [u8; 2],
    },
    /// The packet id byte is unknown.
    #[error("serial frame has unknown packet id 0x{id:02X} at byte 6")]
    BadPacketId {
        /// The byte.
        id: u8,
    },
    /// The length field is below 2 or implies a payload over [`MAX_PAYLOAD`].
    #[error("serial frame length field {length} at bytes 7-8 is invalid (must be 2 to {max})")]
    BadLength {
        /// The length field.
        length: u16,
        /// The largest accepted.
        max: usize,
    },
    /// The checksum does not match.
    #[error(
        "serial frame checksum mismatch: frame says 0x{found:04X}, computed 0x{computed:04X}; the cable is noisy or the baud rate is wrong"
    )]
    BadChecksum {
        /// Checksum in the frame.
        found: u16,
        /// Checksum of the bytes received.
        computed: u16,
    },
    /// The packet came from another module address.
    #[error("serial frame from module address {found:08X}, expected {expected:08X}")]
    WrongAddress {
        /// Address in the frame.
        found: u32,
        /// Address configured.
        expected: u32,
    },
}

fn checksum(id: u8, len: u16, payload: &[u8]) -> u16 {
    let mut sum = u32::from(id);
    for b in len.to_be_bytes() {
        sum += u32::from(b);
    }
    for b in payload {
        sum += u32::from(*b);
    }
    // The low 16 bits, as the sensors compute it.
    u16::try_from(sum & 0xFFFF).unwrap_or(0)
}

/// Encodes a packet. Payloads over [`MAX_PAYLOAD`] are the caller's bug: they are cut to the limit.
pub fn encode(p: &Packet) -> Vec<u8> {
    let payload = p.payload.get(..MAX_PAYLOAD).unwrap_or(&p.payload);
    let len = u16::try_from(payload.len() + 2).unwrap_or(u16::MAX);
    let mut out = Vec::with_capacity(PREFIX_LEN + payload.len() + 2);
    out.extend_from_slice(&HEADER);
    out.extend_from_slice(&p.address.to_be_bytes());
    out.push(p.id.code());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&checksum(p.id.code(), len, payload).to_be_bytes());
    out
}

/// Tries to decode one packet from the start of `buf`. `Ok(None)` means more bytes are needed;
/// `Ok(Some((packet, used)))` consumed `used` bytes.
pub fn decode(buf: &[u8]) -> Result<Option<(Packet, usize)>, FrameError> {
    let (Some(&h0), Some(&h1)) = (buf.first(), buf.get(1)) else {
        // Zero or one byte: if the one byte is already wrong, say so.
        if let Some(&b) = buf.first()
            && b != HEADER[0]
        {
            return Err(FrameError::BadHeader { found: [b, 0] });
        }
        return Ok(None);
    };
    if [h0, h1] != HEADER {
        return Err(FrameError::BadHeader { found: [h0, h1] });
    }
    let Some(prefix) = buf.get(..PREFIX_LEN) else {
        return Ok(None);
    };
    let mut addr = [0u8; 4];
    addr.copy_from_slice(prefix.get(2..6).unwrap_or(&[0; 4]));
    let id_byte = prefix.get(6).copied().unwrap_or(0);
    let id = PacketId::from_code(id_byte).ok_or(FrameError::BadPacketId { id: id_byte })?;
    let length = u16::from_be_bytes([
        prefix.get(7).copied().unwrap_or(0),
        prefix.get(8).copied().unwrap_or(0),
    ]);
    if length < 2 || usize::from(length) - 2 > MAX_PAYLOAD {
        return Err(FrameError::BadLength {
            length,
            max: MAX_PAYLOAD + 2,
        });
    }
    let total = PREFIX_LEN + usize::from(length);
    let Some(frame) = buf.get(..total) else {
        return Ok(None);
    };
    let payload = frame.get(PREFIX_LEN..total - 2).unwrap_or_default();
    let found = u16::from_be_bytes([
        frame.get(total - 2).copied().unwrap_or(0),
        frame.get(total - 1).copied().unwrap_or(0),
    ]);
    let computed = checksum(id_byte, length, payload);
    if found != computed {
        return Err(FrameError::BadChecksum { found, computed });
    }
    Ok(Some((
        Packet {
            address: u32::from_be_bytes(addr),
            id,
            payload: payload.to_vec(),
        },
        total,
    )))
}

/// A command packet to the default address.
pub fn command(instruction: u8, params: &[u8]) -> Packet {
    let mut payload = Vec::with_capacity(1 + params.len());
    payload.push(instruction);
    payload.extend_from_slice(params);
    Packet {
        address: DEFAULT_ADDRESS,
        id: PacketId::Command,
        payload,
    }
}

/// An acknowledgement with a confirmation code and data.
pub fn ack(code: u8, data: &[u8]) -> Packet {
    let mut payload = Vec::with_capacity(1 + data.len());
    payload.push(code);
    payload.extend_from_slice(data);
    Packet {
        address: DEFAULT_ADDRESS,
        id: PacketId::Ack,
        payload,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_frame_gen_img() {
        // GenImg as printed in the R307 manual: EF01 FFFFFFFF 01 0003 01 0005.
        let bytes = encode(&command(instruction::GEN_IMG, &[]));
        assert_eq!(
            bytes,
            [
                0xEF, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, 0x00, 0x03, 0x01, 0x00, 0x05
            ]
        );
        let (p, used) = decode(&bytes).unwrap().unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!(p, command(instruction::GEN_IMG, &[]));
    }

    #[test]
    fn typed_errors() {
        let good = encode(&ack(0, &[1, 2, 3]));
        let mut bad = good.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(matches!(decode(&bad), Err(FrameError::BadChecksum { .. })));
        let mut bad = good.clone();
        bad[0] = 0x00;
        assert!(matches!(decode(&bad), Err(FrameError::BadHeader { .. })));
        let mut bad = good.clone();
        bad[6] = 0x55;
        assert!(matches!(decode(&bad), Err(FrameError::BadPacketId { id: 0x55 })));
        let mut bad = good.clone();
        bad[7] = 0xFF;
        assert!(matches!(decode(&bad), Err(FrameError::BadLength { .. })));
        let mut bad = good;
        bad[8] = 1;
        bad[7] = 0;
        assert!(matches!(
            decode(&bad),
            Err(FrameError::BadLength { length: 1, .. })
        ));
    }

    proptest! {
        #[test]
        fn round_trip(addr in any::<u32>(), id in prop_oneof![Just(PacketId::Command), Just(PacketId::Data), Just(PacketId::Ack), Just(PacketId::EndData)],
                      payload in proptest::collection::vec(any::<u8>(), 0..MAX_PAYLOAD)) {
            let p = Packet { address: addr, id, payload };
            let bytes = encode(&p);
            let (q, used) = decode(&bytes).unwrap().unwrap();
            prop_assert_eq!(used, bytes.len());
            prop_assert_eq!(q, p);
            // Every strict prefix asks for more bytes.
            for cut in 0..bytes.len() {
                prop_assert_eq!(decode(&bytes[..cut]).unwrap(), None);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn single_bit_flips_are_detected(payload in proptest::collection::vec(any::<u8>(), 1..64), bit in 0usize..8, pos_seed in any::<usize>()) {
            let bytes = encode(&ack(0, &payload));
            let pos = PREFIX_LEN + pos_seed % payload.len();
            let mut bad = bytes.clone();
            bad[pos] ^= 1 << bit;
            prop_assert!(decode(&bad).is_err());
        }
    }
}
