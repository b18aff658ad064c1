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
use crate::sim::{ImageError, ImageSource, SimImage, finger_record, measured_finger_quality};

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

/// Opens the sensor's port again after it was unplugged (production: the same `/dev/...` path, best a
/// `/dev/serial/by-id/...` link, which udev re-creates when the adapter comes back).
pub type Reconnect<T> = Box<dyn Fn() -> Result<R30xDriver<T>, SerialError> + Send + Sync>;

impl SerialError {
    /// Whether the error means the sensor is gone (unplugged cable, closed port, no answer at all),
    /// as opposed to a refused command or a garbled frame from a sensor that is still there.
    pub fn is_disconnect(&self) -> bool {
        matches!(self, SerialError::Io { .. } | SerialError::Timeout { .. })
    }
}

/// A serial sensor as the image source of a single-finger SBI device, with truthful status: the
/// device is Not Ready while the sensor is unplugged (an I/O error or silence during a capture or a
/// [`SerialFingerSource::check`] probe), and Ready again once [`SerialFingerSource::check`] has
/// reopened the port and the sensor accepted its password. [`SerialFingerSource::watch`] runs the
/// probe periodically.
pub struct SerialFingerSource<T> {
    driver: Mutex<Option<R30xDriver<T>>>,
    password: u32,
    reconnect: Option<Reconnect<T>>,
    connected: std::sync::atomic::AtomicBool,
}

impl<T> std::fmt::Debug for SerialFingerSource<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SerialFingerSource")
            .field(
                "connected",
                &self.connected.load(std::sync::atomic::Ordering::Relaxed),
            )
            .field("reconnects", &self.reconnect.is_some())
            .finish_non_exhaustive()
    }
}

impl<T: Read + Write> SerialFingerSource<T> {
    /// Wraps a driver (after its password check). Without a way to reopen the port, an unplugged
    /// sensor stays Not Ready until the host restarts; see [`SerialFingerSource::reconnecting`].
    pub fn new(driver: R30xDriver<T>) -> Self {
        Self {
            driver: Mutex::new(Some(driver)),
            password: 0,
            reconnect: None,
            connected: std::sync::atomic::AtomicBool::new(true),
        }
    }

    /// A source that opens the sensor with `reconnect` (and checks `password`) on the first
    /// [`SerialFingerSource::check`], and again whenever the sensor was lost. Starts Not Ready.
    pub fn reconnecting(password: u32, reconnect: Reconnect<T>) -> Self {
        Self {
            driver: Mutex::new(None),
            password,
            reconnect: Some(reconnect),
            connected: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Whether the sensor is connected and answered its last command.
    pub fn is_connected(&self) -> bool {
        self.connected.load(std::sync::atomic::Ordering::Acquire)
    }

    fn lost(&self, slot: &mut Option<R30xDriver<T>>, why: &SerialError) {
        if slot.take().is_some() || self.is_connected() {
            tracing::warn!(error = %why, "fingerprint sensor lost: reporting Not Ready");
        }
        self.connected.store(false, std::sync::atomic::Ordering::Release);
    }

    /// One status probe: when connected, a password check (`VfyPwd`, harmless) shows the sensor is
    /// still there; when not, one attempt to reopen it. Skipped while a capture holds the sensor.
    /// Returns whether the sensor is connected afterwards.
    pub fn check(&self) -> bool {
        let mut slot = match self.driver.try_lock() {
            Ok(g) => g,
            Err(std::sync::TryLockError::WouldBlock) => return self.is_connected(),
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
        };
        if let Some(d) = slot.as_mut() {
            match d.verify_password(self.password) {
                Ok(()) => {}
                Err(e) if e.is_disconnect() => self.lost(&mut slot, &e),
                Err(e) => tracing::debug!(error = %e, "sensor probe answered badly; keeping it"),
            }
            return self.is_connected();
        }
        let Some(reconnect) = &self.reconnect else {
            return false;
        };
        match reconnect().and_then(|mut d| d.verify_password(self.password).map(|()| d)) {
            Ok(d) => {
                *slot = Some(d);
                self.connected.store(true, std::sync::atomic::Ordering::Release);
                tracing::info!("fingerprint sensor connected: reporting Ready");
                true
            }
            Err(e) => {
                tracing::debug!(error = %e, "fingerprint sensor not there yet");
                false
            }
        }
    }

    fn capture_image(&self) -> Result<image::GrayImage, SerialError> {
        let mut slot = match self.driver.lock() {
            Ok(d) => d,
            Err(p) => p.into_inner(),
        };
        let Some(d) = slot.as_mut() else {
            return Err(SerialError::Io {
                during: "image capture",
                source: std::io::Error::new(std::io::ErrorKind::NotConnected, "the sensor is not connected"),
            });
        };
        let r = d.capture().and_then(|()| d.upload_image());
        if let Err(e) = &r
            && e.is_disconnect()
        {
            self.lost(&mut slot, e);
        }
        r
    }
}

impl<T: Read + Write + Send + 'static> SerialFingerSource<T> {
    /// Probes the sensor every `every` (see [`SerialFingerSource::check`]) until the source is dropped
    /// elsewhere or the task is aborted. Spawn it on the runtime that serves the device.
    pub async fn watch(self: std::sync::Arc<Self>, every: Duration) {
        let weak = std::sync::Arc::downgrade(&self);
        drop(self);
        loop {
            let Some(me) = weak.upgrade() else { return };
            if tokio::task::spawn_blocking(move || me.check()).await.is_err() {
                return;
            }
            tokio::time::sleep(every).await;
        }
    }
}

fn not_supported(what: &str, person: u64) -> ImageError {
    ImageError {
        what: what.to_string(),
        person,
        reason: "a serial fingerprint sensor captures fingers only".into(),
        device_gone: false,
    }
}

impl<T: Read + Write + Send> ImageSource for SerialFingerSource<T> {
    fn finger(&self, person: u64, position: BioSubType, _impression: u32) -> Result<SimImage, ImageError> {
        let img = self.capture_image().map_err(|e| ImageError {
            what: position.human().to_string(),
            person,
            device_gone: e.is_disconnect(),
            reason: e.to_string(),
        })?;
        let quality = measured_finger_quality(&img);
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

    fn device_status(&self) -> Option<crate::protocol::DeviceStatus> {
        (!self.is_connected()).then_some(crate::protocol::DeviceStatus::NotReady)
    }
}
