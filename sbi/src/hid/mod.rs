//! HID devices: enumeration against a vendor/product allow-list and a report transport, with a
//! barcode-scanner service for pre-registration QR codes.
//!
//! - [`AllowList`]: which `vendor:product` pairs the host may open (`"0c2e:0b61"`, or `"0c2e:*"` for
//!   every product of a vendor). Nothing is opened that is not on it.
//! - [`HidBackend`] / [`HidReports`]: enumeration and input reports. [`HidapiBackend`] is the real one
//!   (`hidapi`, Linux hidraw backend); the traits keep the scanner service independent of it.
//! - [`keyboard`]: keyboard-style reports (usage page 0x07) decoded into scans.
//! - [`scanner`]: the service that keeps an allow-listed scanner open, reports Ready / Not Ready
//!   truthfully across unplug and re-plug, and hands scans to the station over HTTP.
//! - [`uhid`]: a virtual HID scanner through Linux `/dev/uhid`, for end-to-end tests.

pub mod keyboard;
pub mod scanner;
pub mod uhid;

use std::fmt;

/// A HID failure.
#[derive(Debug, thiserror::Error)]
pub enum HidError {
    /// An allow-list entry is not `vvvv:pppp` / `vvvv:*` in hexadecimal.
    #[error(
        "HID allow-list entry {entry:?} is invalid: {reason}; write vendor:product in hexadecimal, e.g. 0c2e:0b61 or 0c2e:*"
    )]
    AllowEntry {
        /// The entry as written.
        entry: String,
        /// What is wrong.
        reason: String,
    },
    /// The HID library could not enumerate or open devices.
    #[error("HID {during} failed: {reason}; check that the host may read /dev/hidraw* (udev rules)")]
    Backend {
        /// The step.
        during: &'static str,
        /// The library's message.
        reason: String,
    },
    /// Reading a report failed: the device was most likely unplugged.
    #[error("reading from HID device {device} failed: {reason}; the device was probably unplugged")]
    Read {
        /// Which device (vendor:product).
        device: String,
        /// The library's message.
        reason: String,
    },
}

/// One `vendor:product` entry of the allow-list; `product` `None` allows every product of the vendor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllowEntry {
    /// USB vendor id.
    pub vendor_id: u16,
    /// USB product id, or any.
    pub product_id: Option<u16>,
}

impl fmt::Display for AllowEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.product_id {
            Some(p) => write!(f, "{:04x}:{p:04x}", self.vendor_id),
            None => write!(f, "{:04x}:*", self.vendor_id),
        }
    }
}

impl std::str::FromStr for AllowEntry {
    type Err = HidError;
    fn from_str(s: &str) -> Result<Self, HidError> {
        let bad = |reason: &str| HidError::AllowEntry {
            entry: s.chars().take(40).collect(),
            reason: reason.to_string(),
        };
        let (v, p) = s.trim().split_once(':').ok_or_else(|| bad("no ':'"))?;
        let hex16 = |t: &str, what: &str| -> Result<u16, HidError> {
            let t = t.trim();
            let t = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")).unwrap_or(t);
            if t.is_empty() || t.len() > 4 {
                return Err(bad(&format!("{what} must be 1 to 4 hex digits")));
            }
            u16::from_str_radix(t, 16).map_err(|_| bad(&format!("{what} is not hexadecimal")))
        };
        let vendor_id = hex16(v, "vendor id")?;
        let product_id = if p.trim() == "*" {
            None
        } else {
            Some(hex16(p, "product id")?)
        };
        Ok(AllowEntry {
            vendor_id,
            product_id,
        })
    }
}

/// The vendor/product pairs the host may open. Empty allows nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    entries: Vec<AllowEntry>,
}

impl AllowList {
    /// An allow-list of `entries`.
    pub fn new(entries: Vec<AllowEntry>) -> Self {
        Self { entries }
    }

    /// Parses entries separated by commas or whitespace (the `TESSERA_SBI_HID_ALLOW` form).
    pub fn parse(list: &str) -> Result<Self, HidError> {
        list.split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(str::parse)
            .collect::<Result<Vec<_>, _>>()
            .map(Self::new)
    }

    /// Whether the device may be opened.
    pub fn allows(&self, vendor_id: u16, product_id: u16) -> bool {
        self.entries
            .iter()
            .any(|e| e.vendor_id == vendor_id && e.product_id.is_none_or(|p| p == product_id))
    }

    /// The entries.
    pub fn entries(&self) -> &[AllowEntry] {
        &self.entries
    }

    /// Whether nothing is allowed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// What enumeration tells about one HID interface.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HidDeviceSummary {
    /// Platform path (Linux: `/dev/hidrawN`).
    pub path: String,
    /// USB vendor id.
    pub vendor_id: u16,
    /// USB product id.
    pub product_id: u16,
    /// Top-level usage page of the interface.
    pub usage_page: u16,
    /// Top-level usage.
    pub usage: u16,
    /// USB interface number (-1 when not USB).
    pub interface_number: i32,
    /// Product string, when the device has one.
    pub product: Option<String>,
}

impl HidDeviceSummary {
    /// `vvvv:pppp`.
    pub fn id(&self) -> String {
        format!("{:04x}:{:04x}", self.vendor_id, self.product_id)
    }
}

/// Enumerates and opens HID devices.
pub trait HidBackend: Send + fmt::Debug {
    /// Every HID interface present now.
    fn enumerate(&mut self) -> Result<Vec<HidDeviceSummary>, HidError>;
    /// Opens one for input reports.
    fn open(&mut self, device: &HidDeviceSummary) -> Result<Box<dyn HidReports>, HidError>;
}

/// Input reports of an open HID device.
pub trait HidReports: Send {
    /// Waits up to `timeout_ms` for one input report; `Ok(0)` on timeout. An error means the device
    /// is gone.
    fn read_report(&mut self, buf: &mut [u8], timeout_ms: i32) -> Result<usize, HidError>;
}

/// The allow-listed devices among `all`, one entry per path, sorted by path.
pub fn allowed(all: Vec<HidDeviceSummary>, allow: &AllowList) -> Vec<HidDeviceSummary> {
    let mut out: Vec<HidDeviceSummary> = all
        .into_iter()
        .filter(|d| allow.allows(d.vendor_id, d.product_id))
        .collect();
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out.dedup_by(|a, b| a.path == b.path);
    out
}

/// The real backend: `hidapi` (hidraw on Linux).
#[derive(Default)]
pub struct HidapiBackend {
    api: Option<hidapi::HidApi>,
}

impl fmt::Debug for HidapiBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HidapiBackend")
            .field("initialised", &self.api.is_some())
            .finish()
    }
}

impl HidapiBackend {
    /// A backend; the library is initialised on first use.
    pub fn new() -> Self {
        Self::default()
    }

    fn api(&mut self) -> Result<&mut hidapi::HidApi, HidError> {
        if self.api.is_none() {
            self.api = Some(hidapi::HidApi::new().map_err(|e| HidError::Backend {
                during: "initialisation",
                reason: e.to_string(),
            })?);
        }
        self.api.as_mut().ok_or(HidError::Backend {
            during: "initialisation",
            reason: "no context".into(),
        })
    }
}

impl HidBackend for HidapiBackend {
    fn enumerate(&mut self) -> Result<Vec<HidDeviceSummary>, HidError> {
        let api = self.api()?;
        api.refresh_devices().map_err(|e| HidError::Backend {
            during: "enumeration",
            reason: e.to_string(),
        })?;
        Ok(api
            .device_list()
            .map(|d| HidDeviceSummary {
                path: d.path().to_string_lossy().into_owned(),
                vendor_id: d.vendor_id(),
                product_id: d.product_id(),
                usage_page: d.usage_page(),
                usage: d.usage(),
                interface_number: d.interface_number(),
                product: d.product_string().map(str::to_string),
            })
            .collect())
    }

    fn open(&mut self, device: &HidDeviceSummary) -> Result<Box<dyn HidReports>, HidError> {
        let path = std::ffi::CString::new(device.path.clone()).map_err(|e| HidError::Backend {
            during: "opening",
            reason: e.to_string(),
        })?;
        let dev = self.api()?.open_path(&path).map_err(|e| HidError::Backend {
            during: "opening",
            reason: format!("{}: {e}", device.path),
        })?;
        Ok(Box::new(HidapiReports { dev, id: device.id() }))
    }
}

struct HidapiReports {
    dev: hidapi::HidDevice,
    id: String,
}

impl HidReports for HidapiReports {
    fn read_report(&mut self, buf: &mut [u8], timeout_ms: i32) -> Result<usize, HidError> {
        self.dev
            .read_timeout(buf, timeout_ms)
            .map_err(|e| HidError::Read {
                device: self.id.clone(),
                reason: e.to_string(),
            })
    }
}

/// Enumerates the allow-listed devices with `hidapi`.
pub fn enumerate_allowed(allow: &AllowList) -> Result<Vec<HidDeviceSummary>, HidError> {
    Ok(allowed(HidapiBackend::new().enumerate()?, allow))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(path: &str, v: u16, p: u16) -> HidDeviceSummary {
        HidDeviceSummary {
            path: path.into(),
            vendor_id: v,
            product_id: p,
            usage_page: 1,
            usage: 6,
            interface_number: 0,
            product: None,
        }
    }

    #[test]
    fn allow_list_parses_and_matches() {
        let a = AllowList::parse("0c2e:0b61, 05E0:*  0x1eab:0x1d06").unwrap();
        assert!(a.allows(0x0c2e, 0x0b61));
        assert!(!a.allows(0x0c2e, 0x0b62));
        assert!(a.allows(0x05e0, 0x1200));
        assert!(a.allows(0x1eab, 0x1d06));
        assert!(!a.allows(0x046d, 0xc31c));
        assert_eq!(a.entries()[1].to_string(), "05e0:*");
        assert!(AllowList::parse("").unwrap().is_empty());
        assert!(!AllowList::default().allows(0, 0));
        for bad in ["0c2e", "0c2e:", "zz:0001", "12345:1", "0c2e:0b61:1"] {
            let e = AllowList::parse(bad).unwrap_err();
            assert!(e.to_string().contains("vendor:product"), "{bad}: {e}");
        }
    }

    #[test]
    fn only_allowed_devices_are_kept_once() {
        let a = AllowList::parse("0c2e:*").unwrap();
        let kept = allowed(
            vec![
                dev("/dev/hidraw2", 0x0c2e, 1),
                dev("/dev/hidraw0", 0x046d, 1),
                dev("/dev/hidraw1", 0x0c2e, 2),
                dev("/dev/hidraw1", 0x0c2e, 2),
            ],
            &a,
        );
        let paths: Vec<&str> = kept.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(paths, ["/dev/hidraw1", "/dev/hidraw2"]);
    }

    #[test]
    fn real_enumeration_runs_and_honours_the_allow_list() {
        // Whatever this machine has, nothing outside the allow-list comes back and nothing fails.
        let a = AllowList::parse("ffff:fffe").unwrap();
        match enumerate_allowed(&a) {
            Ok(v) => assert!(v.iter().all(|d| (d.vendor_id, d.product_id) == (0xffff, 0xfffe))),
            Err(e) => panic!("hidapi enumeration failed: {e}"),
        }
    }
}
