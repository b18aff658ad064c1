//! Serial fingerprint sensors of the R30x family (R307, R503, AS608) and their emulator.
//!
//! - [`R30xDriver`] speaks the ZhianTec packet protocol ([`crate::r30x`]) over any `Read + Write`
//!   (a `serialport` port in production, one end of a pty pair in tests): password check, handshake,
//!   system parameters, image capture (`GenImg`) and image upload (`UpImage`, 256 x 288 pixels at
//!   4 bits per pixel, in data packets).
//! - [`SerialFingerSource`] turns a sensor into an [`ImageSource`] so the SBI service layer of the
//!   simulator serves it as a real single-finger device (`tessera-sbi host`): each capture becomes an
//!   ISO/IEC 19794-4 record.
//! - [`emulator`] is a virtual sensor answering the same protocol with synthetic images, so the driver
//!   and the host are tested end to end with no hardware.

pub mod emulator;

use std::io::{Read, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::protocol::BioSubType;
use crate::r30x::{self, FrameError, Packet, PacketId, instruction};
use crate::sim::{ImageError, ImageSource, SimImage, finger_record};

/// Width of an R30x image.
pub const IMAGE_WIDTH: u32 = 256;
/// Height of an R30x image.
pub const IMAGE_HEIGHT: u32 = 288;
/// Bytes of an uploaded image (two 4-bit pixels per byte).
pub const IMAGE_BYTES: usize = (IMAGE_WIDTH * IMAGE_HEIGHT / 2) as usize;

/// Confirmation codes of the sensor that the driver interprets.
pub mod confirmation {
    /// Command executed.
    pub const OK: u8 = 0x00;
    /// Error receiving the packet.
    pub const PACKET_ERROR: u8 = 0x01;
    /// No finger on the sensor.
    pub const NO_FINGER: u8 = 0x02;
    /// Failed to capture the image.
    pub const CAPTURE_FAILED: u8 = 0x03;
    /// Wrong password.
    pub const WRONG_PASSWORD: u8 = 0x13;
}

/// A serial driver failure.
#[derive(Debug, thiserror::Error)]
pub enum SerialError {
    /// Reading or writing the port failed (e.g. the sensor was unplugged).
    #[error(
        "the serial port of the fingerprint sensor failed during {during}: {source}; check the cable and that the sensor is plugged in"
    )]
    Io {
        /// The step.
        during: &'static str,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
    /// The sensor did not answer in time.
    #[error(
        "the fingerprint sensor did not answer {during} within {after:?}; check the baud rate and the cable"
    )]
    Timeout {
        /// The step.
        during: &'static str,
        /// The time waited.
        after: Duration,
    },
    /// A frame from the sensor is malformed.
    #[error("bad frame from the fingerprint sensor during {during}: {source}")]
    Frame {
        /// The step.
        during: &'static str,
        /// What is wrong.
        #[source]
        source: FrameError,
    },
    /// The sensor answered with a non-zero confirmation code.
    #[error("the fingerprint sensor refused {during} with code 0x{code:02X} ({}); {}", describe(*.code), advise(*.code))]
    Refused {
        /// The step.
        during: &'static str,
        /// The confirmation code.
        code: u8,
    },
    /// The sensor sent something the protocol does not allow at this point.
    #[error("unexpected answer from the fingerprint sensor during {during}: {detail}")]
    Unexpected {
        /// The step.
        during: &'static str,
        /// What came.
        detail: String,
    },
}

fn describe(code: u8) -> &'static str {
    match code {
        confirmation::PACKET_ERROR => "packet receive error",
        confirmation::NO_FINGER => "no finger on the sensor",
        confirmation::CAPTURE_FAILED => "image capture failed",
        confirmation::WRONG_PASSWORD => "wrong module password",
        _ => "sensor error",
    }
}

fn advise(code: u8) -> &'static str {
    match code {
        confirmation::NO_FINGER => "place the finger on the sensor and capture again",
        confirmation::WRONG_PASSWORD => "configure the sensor's password in the host settings",
        _ => "try again; if it repeats, unplug and reconnect the sensor",
    }
}

/// The sensor's system parameters (`ReadSysPara`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SystemParameters {
    /// Status register.
    pub status: u16,
    /// System identifier code.
    pub system_id: u16,
    /// Template library size.
    pub library_size: u16,
    /// Security level 1-5.
    pub security_level: u16,
    /// Module address.
    pub address: u32,
    /// Data packet size: 32 << code bytes.
    pub packet_size_code: u16,
    /// Baud rate / 9600.
    pub baud_multiplier: u16,
}

/// The R30x driver over a byte stream.
#[derive(Debug)]
pub struct R30xDriver<T> {
    io: T,
    address: u32,
    timeout: Duration,
    buf: Vec<u8>,
}

impl<T: Read + Write> R30xDriver<T> {
    /// A driver on `io`, talking to the default address, waiting up to `timeout` for each packet.
    /// The stream's own read timeout should be short (e.g. 50 ms) so the deadline is honoured.
    pub fn new(io: T, timeout: Duration) -> Self {
        Self {
            io,
            address: r30x::DEFAULT_ADDRESS,
            timeout,
            buf: Vec::new(),
        }
    }

    fn send(&mut self, during: &'static str, p: &Packet) -> Result<(), SerialError> {
        self.io
            .write_all(&r30x::encode(p))
            .and_then(|()| self.io.flush())
            .map_err(|source| SerialError::Io { during, source })
    }

    fn receive(&mut self, during: &'static str) -> Result<Packet, SerialError> {
        let deadline = Instant::now() + self.timeout;
        loop {
            match r30x::decode(&self.buf) {
                Ok(Some((p, used))) => {
                    self.buf.drain(..used.min(self.buf.len()));
                    if p.address != self.address {
                        return Err(SerialError::Frame {
                            during,
                            source: FrameError::WrongAddress {
                                found: p.address,
                                expected: self.address,
                            },
                        });
                    }
                    return Ok(p);
                }
                Ok(None) => {}
                Err(source) => {
                    // Drop what is buffered: the stream is out of sync.
                    self.buf.clear();
                    return Err(SerialError::Frame { during, source });
                }
            }
            if Instant::now() >= deadline {
                return Err(SerialError::Timeout {
                    during,
                    after: self.timeout,
                });
            }
            let mut chunk = [0u8; 512];
            match self.io.read(&mut chunk) {
                Ok(0) => {
                    return Err(SerialError::Io {
                        during,
                        source: std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the port closed"),
                    });
                }
                Ok(n) => self.buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::Interrupted
                    ) => {}
                Err(source) => return Err(SerialError::Io { during, source }),
            }
        }
    }

    /// Sends a command and returns the acknowledgement's data after checking its code is 0.
    fn command(&mut self, during: &'static str, instr: u8, params: &[u8]) -> Result<Vec<u8>, SerialError> {
        let mut p = r30x::command(instr, params);
        p.address = self.address;
        self.send(during, &p)?;
        let ack = self.receive(during)?;
        if ack.id != PacketId::Ack {
            return Err(SerialError::Unexpected {
                during,
                detail: format!("{:?} packet instead of an acknowledgement", ack.id),
            });
        }
        let (&code, data) = ack.payload.split_first().ok_or(SerialError::Unexpected {
            during,
            detail: "empty acknowledgement".into(),
        })?;
        if code != confirmation::OK {
            return Err(SerialError::Refused { during, code });
        }
        Ok(data.to_vec())
    }

    /// Verifies the module password (factory default 0).
    pub fn verify_password(&mut self, password: u32) -> Result<(), SerialError> {
        self.command("password check", instruction::VFY_PWD, &password.to_be_bytes())
            .map(|_| ())
    }

    /// Handshake (R503 and later).
    pub fn handshake(&mut self) -> Result<(), SerialError> {
        self.command("handshake", instruction::HANDSHAKE, &[]).map(|_| ())
    }

    /// Reads the system parameters.
    pub fn read_system_parameters(&mut self) -> Result<SystemParameters, SerialError> {
        let d = self.command("reading system parameters", instruction::READ_SYS_PARA, &[])?;
        let word = |i: usize| -> u16 {
            u16::from_be_bytes([d.get(i).copied().unwrap_or(0), d.get(i + 1).copied().unwrap_or(0)])
        };
        if d.len() < 16 {
            return Err(SerialError::Unexpected {
                during: "reading system parameters",
                detail: format!("{} bytes of parameters, expected 16", d.len()),
            });
        }
        Ok(SystemParameters {
            status: word(0),
            system_id: word(2),
            library_size: word(4),
            security_level: word(6),
            address: (u32::from(word(8)) << 16) | u32::from(word(10)),
            packet_size_code: word(12),
            baud_multiplier: word(14),
        })
    }

    /// Captures an image into the sensor's buffer (`GenImg`). [`SerialError::Refused`] with
    /// [`confirmation::NO_FINGER`] when nothing is on the sensor.
    pub fn capture(&mut self) -> Result<(), SerialError> {
        self.command("image capture", instruction::GEN_IMG, &[])
            .map(|_| ())
    }

    /// Uploads the image buffer (`UpImage`) and returns it as 8-bit grey, 256 x 288.
    pub fn upload_image(&mut self) -> Result<image::GrayImage, SerialError> {
        const DURING: &str = "image upload";
        self.command(DURING, instruction::UP_IMAGE, &[])?;
        let mut packed = Vec::with_capacity(IMAGE_BYTES);
        loop {
            let p = self.receive(DURING)?;
            match p.id {
                PacketId::Data | PacketId::EndData => {
                    if packed.len() + p.payload.len() > IMAGE_BYTES {
                        return Err(SerialError::Unexpected {
                            during: DURING,
                            detail: format!("more than {IMAGE_BYTES} bytes of image data"),
                        });
                    }
                    packed.extend_from_slice(&p.payload);
                    if p.id == PacketId::EndData {
                        break;
                    }
                }
                other => {
                    return Err(SerialError::Unexpected {
                        during: DURING,
                        detail: format!("{other:?} packet inside the image data"),
                    });
                }
            }
        }
        if packed.len() != IMAGE_BYTES {
            return Err(SerialError::Unexpected {
                during: DURING,
                detail: format!("{} bytes of image data, expected {IMAGE_BYTES}", packed.len()),
            });
        }
        let mut pixels = Vec::with_capacity(IMAGE_BYTES * 2);
        for b in packed {
            pixels.push((b & 0xF0) | (b >> 4));
            pixels.push(((b & 0x0F) << 4) | (b & 0x0F));
        }
        image::GrayImage::from_raw(IMAGE_WIDTH, IMAGE_HEIGHT, pixels).ok_or(SerialError::Unexpected {
            during: DURING,
            detail: "image size mismatch".into(),
        })
    }
}

/// Packs an 8-bit grey image (resized to 256 x 288) into the sensor's 4-bit upload format.
pub fn pack_image(img: &image::GrayImage) -> Vec<u8> {
    let img = if img.dimensions() == (IMAGE_WIDTH, IMAGE_HEIGHT) {
        img.clone()
    } else {
        image::imageops::resize(
            img,
            IMAGE_WIDTH,
            IMAGE_HEIGHT,
            image::imageops::FilterType::Triangle,
        )
    };
    img.as_raw()
        .chunks(2)
        .map(|c| {
            let hi = c.first().copied().unwrap_or(0) & 0xF0;
            let lo = c.get(1).copied().unwrap_or(0) >> 4;
            hi | lo
        })
        .collect()
}

/// A provisional 0-100 quality from an image's contrast: the share of the grey range the ridges use.
/// Replaced by the biometrics crate's NFIQ 2 when it is available.
pub fn contrast_quality(img: &image::GrayImage) -> u8 {
    let mut hist = [0u32; 256];
    for p in img.pixels() {
        if let Some(h) = hist.get_mut(usize::from(p.0[0])) {
            *h += 1;
        }
    }
    let total: u32 = hist.iter().sum();
    if total == 0 {
        return 0;
    }
    let pick = |frac: u32| -> usize {
        let mut acc = 0u32;
        for (i, h) in hist.iter().enumerate() {
            acc += h;
            if acc.saturating_mul(100) >= total.saturating_mul(frac) {
                return i;
            }
        }
        255
    };
    let spread = pick(95).saturating_sub(pick(5));
    u8::try_from((spread * 100 / 255).min(100)).unwrap_or(100)
}

/// A serial sensor as the image source of a single-finger SBI device.
#[derive(Debug)]
pub struct SerialFingerSource<T> {
    driver: Mutex<R30xDriver<T>>,
}

impl<T: Read + Write> SerialFingerSource<T> {
    /// Wraps a driver (after its password check).
    pub fn new(driver: R30xDriver<T>) -> Self {
        Self {
            driver: Mutex::new(driver),
        }
    }

    fn capture_image(&self) -> Result<image::GrayImage, SerialError> {
        let mut d = match self.driver.lock() {
            Ok(d) => d,
            Err(p) => p.into_inner(),
        };
        d.capture()?;
        d.upload_image()
    }
}

fn not_supported(what: &str, person: u64) -> ImageError {
    ImageError {
        what: what.to_string(),
        person,
        reason: "a serial fingerprint sensor captures fingers only".into(),
    }
}

impl<T: Read + Write + Send + std::fmt::Debug> ImageSource for SerialFingerSource<T> {
    fn finger(&self, person: u64, position: BioSubType, _impression: u32) -> Result<SimImage, ImageError> {
        let img = self.capture_image().map_err(|e| ImageError {
            what: position.human().to_string(),
            person,
            reason: e.to_string(),
        })?;
        let quality = contrast_quality(&img);
        Ok(SimImage {
            iso: finger_record(position, &img, quality)?,
            preview: img,
            quality,
        })
    }

    fn iris(&self, person: u64, _position: BioSubType, _impression: u32) -> Result<SimImage, ImageError> {
        Err(not_supported("an iris", person))
    }

    fn face(&self, person: u64, _impression: u32) -> Result<SimImage, ImageError> {
        Err(not_supported("a face", person))
    }
}
