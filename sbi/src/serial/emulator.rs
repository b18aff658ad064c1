//! A virtual R30x sensor: answers the ZhianTec protocol on any `Read + Write` (one end of a pty pair)
//! with synthetic finger images, so the serial driver and the device host run end to end in CI.

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{IMAGE_BYTES, confirmation, pack_image};
use crate::protocol::BioSubType;
use crate::r30x::{self, Packet, PacketId, instruction};
use crate::sim::ImageSource;

/// Faults the emulator can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fault {
    /// Behave.
    #[default]
    None,
    /// Report "no finger" to every capture.
    NoFinger,
    /// Send acknowledgements with a wrong checksum.
    BadChecksum,
    /// Send acknowledgements whose length field is impossible.
    BadLength,
    /// Stop answering in the middle of an image upload (as if unplugged).
    UnplugDuringUpload,
}

/// Emulator settings.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Module password (factory default 0).
    pub password: u32,
    /// Synthetic person whose finger is "on the sensor".
    pub person_id: u64,
    /// Which finger.
    pub finger: BioSubType,
    /// Data packet size in bytes (32, 64, 128 or 256).
    pub packet_size: usize,
    /// Injected fault.
    pub fault: Fault,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            password: 0,
            person_id: 1,
            finger: BioSubType::RightIndex,
            packet_size: 128,
            fault: Fault::None,
        }
    }
}

fn send<T: Write>(io: &mut T, p: &Packet, fault: Fault) -> std::io::Result<()> {
    let mut bytes = r30x::encode(p);
    if p.id == PacketId::Ack {
        match fault {
            Fault::BadChecksum => {
                if let Some(b) = bytes.last_mut() {
                    *b ^= 0xFF;
                }
            }
            Fault::BadLength => {
                if let Some(b) = bytes.get_mut(7) {
                    *b = 0xFF;
                }
            }
            _ => {}
        }
    }
    io.write_all(&bytes)?;
    io.flush()
}

/// Serves the protocol until `stop` is set or the stream fails. Reads should time out regularly
/// (e.g. 20 ms) so `stop` is noticed.
pub fn serve<T: Read + Write>(
    mut io: T,
    config: EmulatorConfig,
    images: Arc<dyn ImageSource>,
    stop: Arc<AtomicBool>,
) {
    let mut buf: Vec<u8> = Vec::new();
    let mut captured: Option<Vec<u8>> = None;
    let mut impression = 0u32;
    let system_parameters: Vec<u8> = {
        let mut v = Vec::with_capacity(16);
        for w in [0u16, 0x0009, 1000, 3] {
            v.extend_from_slice(&w.to_be_bytes());
        }
        v.extend_from_slice(&r30x::DEFAULT_ADDRESS.to_be_bytes());
        let size_code: u16 = match config.packet_size {
            32 => 0,
            64 => 1,
            256 => 3,
            _ => 2,
        };
        v.extend_from_slice(&size_code.to_be_bytes());
        v.extend_from_slice(&6u16.to_be_bytes());
        v
    };
    while !stop.load(Ordering::Relaxed) {
        let mut chunk = [0u8; 256];
        match io.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(_) => return,
        }
        loop {
            let packet = match r30x::decode(&buf) {
                Ok(Some((p, used))) => {
                    buf.drain(..used.min(buf.len()));
                    p
                }
                Ok(None) => break,
                Err(_) => {
                    buf.clear();
                    if send(&mut io, &r30x::ack(confirmation::PACKET_ERROR, &[]), Fault::None).is_err() {
                        return;
                    }
                    break;
                }
            };
            if packet.id != PacketId::Command {
                continue;
            }
            let (&instr, params) = match packet.payload.split_first() {
                Some(x) => x,
                None => continue,
            };
            let reply = match instr {
                instruction::VFY_PWD => {
                    let given = params
                        .get(..4)
                        .and_then(|b| <[u8; 4]>::try_from(b).ok())
                        .map(u32::from_be_bytes);
                    if given == Some(config.password) {
                        r30x::ack(confirmation::OK, &[])
                    } else {
                        r30x::ack(confirmation::WRONG_PASSWORD, &[])
                    }
                }
                instruction::HANDSHAKE => r30x::ack(confirmation::OK, &[]),
                instruction::READ_SYS_PARA => r30x::ack(confirmation::OK, &system_parameters),
                instruction::GEN_IMG => {
                    if config.fault == Fault::NoFinger {
                        r30x::ack(confirmation::NO_FINGER, &[])
                    } else {
                        match images.finger(config.person_id, config.finger, impression) {
                            Ok(img) => {
                                impression = impression.wrapping_add(1);
                                captured = Some(pack_image(&img.preview));
                                r30x::ack(confirmation::OK, &[])
                            }
                            Err(_) => r30x::ack(confirmation::CAPTURE_FAILED, &[]),
                        }
                    }
                }
                instruction::UP_IMAGE => match &captured {
                    None => r30x::ack(0x15, &[]),
                    Some(data) => {
                        if send(&mut io, &r30x::ack(confirmation::OK, &[]), config.fault).is_err() {
                            return;
                        }
                        let chunks: Vec<&[u8]> = data.chunks(config.packet_size.max(1)).collect();
                        let last = chunks.len().saturating_sub(1);
                        for (i, c) in chunks.iter().enumerate() {
                            if config.fault == Fault::UnplugDuringUpload && i * 2 >= last {
                                return;
                            }
                            let p = Packet {
                                address: r30x::DEFAULT_ADDRESS,
                                id: if i == last {
                                    PacketId::EndData
                                } else {
                                    PacketId::Data
                                },
                                payload: c.to_vec(),
                            };
                            if send(&mut io, &p, Fault::None).is_err() {
                                return;
                            }
                        }
                        debug_assert_eq!(data.len(), IMAGE_BYTES);
                        continue;
                    }
                },
                _ => r30x::ack(confirmation::PACKET_ERROR, &[]),
            };
            if send(&mut io, &reply, config.fault).is_err() {
                return;
            }
        }
    }
}
