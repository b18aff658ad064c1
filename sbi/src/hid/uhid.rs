//! A virtual HID barcode scanner through Linux `/dev/uhid`, for end-to-end tests of the HID path
//! (hidapi enumeration, hidraw reports, unplug and re-plug) with no hardware.
//!
//! The kernel's uhid interface takes `struct uhid_event` records (`<linux/uhid.h>`, packed, native
//! little-endian on the machines Tessera runs on) written to the character device; this module writes
//! them with plain [`std::fs::File`] writes of the byte layout, no `unsafe`:
//!
//! | event | type | payload |
//! |---|---|---|
//! | `UHID_CREATE2` | 11 | name\[128\], phys\[64\], uniq\[64\], rd_size u16, bus u16, vendor u32, product u32, version u32, country u32, rd_data\[4096\] |
//! | `UHID_INPUT2` | 12 | size u16, data\[4096\] |
//! | `UHID_DESTROY` | 1 | — |
//!
//! The report descriptor puts keyboard-page (0x07) fields — modifiers, reserved byte, six key slots,
//! the boot keyboard report — inside a **vendor-defined** application collection, so hidraw delivers
//! the reports but the kernel does not turn them into keystrokes on the test machine's console.
//! Closing the device (dropping [`UhidScanner`]) is an unplug.

use std::io::Write as _;

use super::keyboard::{BOOT_REPORT_LEN, encode_scan};

/// Path of the uhid character device.
pub const UHID_PATH: &str = "/dev/uhid";

const UHID_DESTROY: u32 = 1;
const UHID_CREATE2: u32 = 11;
const UHID_INPUT2: u32 = 12;
const UHID_DATA_MAX: usize = 4096;
const HID_MAX_DESCRIPTOR_SIZE: usize = 4096;
/// `sizeof(struct uhid_event)`: the type and the largest union member (`uhid_create2_req`).
pub const UHID_EVENT_SIZE: usize = 4 + 128 + 64 + 64 + 2 + 2 + 4 + 4 + 4 + 4 + HID_MAX_DESCRIPTOR_SIZE;
const BUS_USB: u16 = 0x03;

/// Report descriptor: a vendor application collection carrying a boot-keyboard-format input report.
pub const REPORT_DESCRIPTOR: &[u8] = &[
    0x06, 0x00, 0xFF, // Usage Page (Vendor 0xFF00)
    0x09, 0x01, // Usage (1)
    0xA1, 0x01, // Collection (Application)
    0x05, 0x07, //   Usage Page (Keyboard/Keypad)
    0x19, 0xE0, //   Usage Minimum (Left Control)
    0x29, 0xE7, //   Usage Maximum (Right GUI)
    0x15, 0x00, //   Logical Minimum (0)
    0x25, 0x01, //   Logical Maximum (1)
    0x75, 0x01, //   Report Size (1)
    0x95, 0x08, //   Report Count (8)
    0x81, 0x02, //   Input (Data, Variable, Absolute): modifiers
    0x75, 0x08, //   Report Size (8)
    0x95, 0x01, //   Report Count (1)
    0x81, 0x01, //   Input (Constant): reserved
    0x75, 0x08, //   Report Size (8)
    0x95, 0x06, //   Report Count (6)
    0x15, 0x00, //   Logical Minimum (0)
    0x26, 0xFF, 0x00, // Logical Maximum (255)
    0x05, 0x07, //   Usage Page (Keyboard/Keypad)
    0x19, 0x00, //   Usage Minimum (0)
    0x2A, 0xFF, 0x00, // Usage Maximum (255)
    0x81, 0x00, //   Input (Data, Array, Absolute): key slots
    0xC0, // End Collection
];

/// Builds the `UHID_CREATE2` event.
pub fn create2_event(name: &str, vendor: u16, product: u16, descriptor: &[u8]) -> Vec<u8> {
    let mut ev = vec![0u8; UHID_EVENT_SIZE];
    let mut w = Writer::new(&mut ev);
    w.u32(UHID_CREATE2);
    w.fixed(name.as_bytes(), 128);
    w.fixed(b"tessera-uhid", 64);
    w.fixed(b"", 64);
    w.u16(u16::try_from(descriptor.len().min(HID_MAX_DESCRIPTOR_SIZE)).unwrap_or(0));
    w.u16(BUS_USB);
    w.u32(u32::from(vendor));
    w.u32(u32::from(product));
    w.u32(1); // version
    w.u32(0); // country
    w.fixed(descriptor, HID_MAX_DESCRIPTOR_SIZE);
    ev
}

/// Builds a `UHID_INPUT2` event carrying one input report.
pub fn input2_event(report: &[u8]) -> Vec<u8> {
    let mut ev = vec![0u8; UHID_EVENT_SIZE];
    let mut w = Writer::new(&mut ev);
    w.u32(UHID_INPUT2);
    w.u16(u16::try_from(report.len().min(UHID_DATA_MAX)).unwrap_or(0));
    w.fixed(report, UHID_DATA_MAX);
    ev
}

/// Builds the `UHID_DESTROY` event.
pub fn destroy_event() -> Vec<u8> {
    let mut ev = vec![0u8; UHID_EVENT_SIZE];
    Writer::new(&mut ev).u32(UHID_DESTROY);
    ev
}

/// Little-endian writer over a zeroed buffer; bytes past the end are dropped (never panics).
struct Writer<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl<'a> Writer<'a> {
    fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, at: 0 }
    }
    fn put(&mut self, bytes: &[u8]) {
        for (i, b) in bytes.iter().enumerate() {
            if let Some(slot) = self.buf.get_mut(self.at + i) {
                *slot = *b;
            }
        }
        self.at += bytes.len();
    }
    fn u16(&mut self, v: u16) {
        self.put(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.put(&v.to_le_bytes());
    }
    /// `bytes` truncated or zero-padded to exactly `len`.
    fn fixed(&mut self, bytes: &[u8], len: usize) {
        let take = bytes.len().min(len);
        self.put(bytes.get(..take).unwrap_or_default());
        self.at += len - take;
    }
}

/// A virtual HID scanner alive while this value lives.
#[derive(Debug)]
pub struct UhidScanner {
    file: std::fs::File,
}

impl UhidScanner {
    /// Creates the device `name` with the given USB ids. Fails when `/dev/uhid` is missing (kernel
    /// without `CONFIG_UHID`, or module not loaded) or not writable.
    pub fn create(name: &str, vendor: u16, product: u16) -> std::io::Result<Self> {
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(UHID_PATH)?;
        file.write_all(&create2_event(name, vendor, product, REPORT_DESCRIPTOR))?;
        Ok(Self { file })
    }

    /// Sends one input report.
    pub fn send_report(&mut self, report: &[u8]) -> std::io::Result<()> {
        self.file.write_all(&input2_event(report))
    }

    /// Types `text` and Enter, as a scanner in keyboard mode does.
    pub fn type_scan(&mut self, text: &str) -> std::io::Result<()> {
        for r in encode_scan(text) {
            let r: [u8; BOOT_REPORT_LEN] = r;
            self.send_report(&r)?;
        }
        Ok(())
    }

    /// Removes the device (as closing it does).
    pub fn unplug(mut self) -> std::io::Result<()> {
        self.file.write_all(&destroy_event())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_layout_matches_the_kernel_struct() {
        assert_eq!(UHID_EVENT_SIZE, 4376);
        let ev = create2_event("Tessera test scanner", 0x1209, 0x0001, REPORT_DESCRIPTOR);
        assert_eq!(&ev[..4], &11u32.to_le_bytes());
        assert_eq!(&ev[4..24], b"Tessera test scanner");
        assert_eq!(ev[24], 0);
        assert_eq!(&ev[132..144], b"tessera-uhid");
        // rd_size at 4 + 128 + 64 + 64 = 260, bus at 262, vendor at 264, product at 268
        assert_eq!(
            u16::from_le_bytes([ev[260], ev[261]]) as usize,
            REPORT_DESCRIPTOR.len()
        );
        assert_eq!(u16::from_le_bytes([ev[262], ev[263]]), BUS_USB);
        assert_eq!(&ev[264..268], &0x1209u32.to_le_bytes());
        assert_eq!(&ev[268..272], &0x0001u32.to_le_bytes());
        assert_eq!(&ev[280..280 + REPORT_DESCRIPTOR.len()], REPORT_DESCRIPTOR);
        let ev = input2_event(&[2, 0, 0x1E, 0, 0, 0, 0, 0]);
        assert_eq!(&ev[..4], &12u32.to_le_bytes());
        assert_eq!(u16::from_le_bytes([ev[4], ev[5]]), 8);
        assert_eq!(&ev[6..14], &[2, 0, 0x1E, 0, 0, 0, 0, 0]);
        assert_eq!(&destroy_event()[..4], &1u32.to_le_bytes());
    }
}
