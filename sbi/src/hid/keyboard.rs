//! Decoding keyboard-style HID input reports (usage page 0x07, the boot keyboard report) into text.
//!
//! Barcode scanners in their default "USB keyboard" mode type what they read: each character is a
//! report `[modifiers, reserved, key1..key6]` with the key pressed, usually followed by an all-zero
//! release report, and the scan ends with Enter. [`KeyboardDecoder`] turns reports into characters
//! (US layout, the scanners' default; keys newly pressed since the previous report count once), and
//! [`ScanAssembler`] collects characters into one scan per Enter (or Tab).

/// Length of a boot keyboard input report without a report id.
pub const BOOT_REPORT_LEN: usize = 8;

/// Longest scan accepted; a longer run of keys without Enter is dropped as garbage.
pub const MAX_SCAN_CHARS: usize = 512;

/// A report that cannot be a keyboard report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// Too short for `[report id,] modifiers, reserved, keys`.
    #[error(
        "HID keyboard report of {len} bytes is too short: at least {min} bytes expected (report id: {with_id})"
    )]
    TooShort {
        /// Bytes received.
        len: usize,
        /// Bytes required.
        min: usize,
        /// Whether a report id byte was expected first.
        with_id: bool,
    },
    /// A numbered report with an id other than the configured one.
    #[error("HID report id {found} at byte 0 is not the keyboard report id {expected}")]
    WrongReportId {
        /// Id received.
        found: u8,
        /// Id configured.
        expected: u8,
    },
    /// The scan grew past [`MAX_SCAN_CHARS`] without an Enter.
    #[error("more than {MAX_SCAN_CHARS} characters without Enter: not a barcode scan; discarded")]
    ScanTooLong,
}

/// One decoded key press.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// A printable character.
    Char(char),
    /// Enter or keypad Enter: the scanner's usual end of scan.
    Enter,
    /// Tab: some scanners are set up to end with Tab.
    Tab,
    /// Backspace.
    Backspace,
}

const LEFT_SHIFT: u8 = 0x02;
const RIGHT_SHIFT: u8 = 0x20;
/// Usage id of "ErrorRollOver": every key slot holds it when too many keys are down.
const ROLLOVER: u8 = 0x01;

/// Maps a usage id of page 0x07 to a key (US layout). Unmapped usages (function keys, modifiers
/// reported as keys, ...) give `None`.
pub fn usage_to_key(usage: u8, shift: bool) -> Option<Key> {
    const DIGITS: &[u8; 10] = b"1234567890";
    const DIGITS_SHIFT: &[u8; 10] = b"!@#$%^&*()";
    const PUNCT: &[u8; 11] = b"-=[]\\#;'`,.";
    const PUNCT_SHIFT: &[u8; 11] = b"_+{}|~:\"~<>";
    let c = match usage {
        0x04..=0x1D => {
            let base = b'a' + (usage - 0x04);
            if shift { base.to_ascii_uppercase() } else { base }
        }
        0x1E..=0x27 => {
            let i = usize::from(usage - 0x1E);
            *(if shift { DIGITS_SHIFT } else { DIGITS }).get(i)?
        }
        0x28 | 0x58 => return Some(Key::Enter),
        0x2A => return Some(Key::Backspace),
        0x2B => return Some(Key::Tab),
        0x2C => b' ',
        0x2D..=0x37 => {
            let i = usize::from(usage - 0x2D);
            *(if shift { PUNCT_SHIFT } else { PUNCT }).get(i)?
        }
        0x38 => {
            if shift {
                b'?'
            } else {
                b'/'
            }
        }
        0x54 => b'/',
        0x55 => b'*',
        0x56 => b'-',
        0x57 => b'+',
        0x59..=0x62 => *DIGITS.get(usize::from(usage - 0x59))?,
        0x63 => b'.',
        _ => return None,
    };
    Some(Key::Char(char::from(c)))
}

/// Turns a stream of keyboard reports into key presses.
#[derive(Debug, Clone, Default)]
pub struct KeyboardDecoder {
    report_id: Option<u8>,
    down: Vec<u8>,
}

impl KeyboardDecoder {
    /// A decoder for unnumbered reports (`report_id` `None`, the boot protocol) or for reports that
    /// start with the given report id.
    pub fn new(report_id: Option<u8>) -> Self {
        Self {
            report_id,
            down: Vec::new(),
        }
    }

    /// Decodes one report and returns the keys newly pressed in it, in slot order.
    pub fn push(&mut self, report: &[u8]) -> Result<Vec<Key>, ReportError> {
        let body = match self.report_id {
            Some(expected) => match report.split_first() {
                Some((&found, rest)) if found == expected => rest,
                Some((&found, _)) => return Err(ReportError::WrongReportId { found, expected }),
                None => {
                    return Err(ReportError::TooShort {
                        len: 0,
                        min: 4,
                        with_id: true,
                    });
                }
            },
            None => report,
        };
        // modifiers, reserved, at least one key slot
        let (Some(&modifiers), Some(keys)) = (body.first(), body.get(2..).filter(|k| !k.is_empty())) else {
            return Err(ReportError::TooShort {
                len: report.len(),
                min: 3 + usize::from(self.report_id.is_some()),
                with_id: self.report_id.is_some(),
            });
        };
        if keys.iter().all(|k| *k == ROLLOVER) {
            // Phantom state: keep the previous keys, report nothing.
            return Ok(Vec::new());
        }
        let shift = modifiers & (LEFT_SHIFT | RIGHT_SHIFT) != 0;
        let mut out = Vec::new();
        for &k in keys.iter().filter(|k| **k > ROLLOVER + 2) {
            if !self.down.contains(&k)
                && let Some(key) = usage_to_key(k, shift)
            {
                out.push(key);
            }
        }
        self.down = keys.iter().copied().filter(|k| *k > ROLLOVER + 2).collect();
        Ok(out)
    }
}

/// Collects key presses into complete scans.
#[derive(Debug, Clone, Default)]
pub struct ScanAssembler {
    buf: String,
    overflow: bool,
}

impl ScanAssembler {
    /// An empty assembler.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a key; returns a complete scan on Enter/Tab (empty scans are skipped). A run longer than
    /// [`MAX_SCAN_CHARS`] gives [`ReportError::ScanTooLong`] once and is discarded up to its Enter.
    pub fn push(&mut self, key: Key) -> Result<Option<String>, ReportError> {
        match key {
            Key::Enter | Key::Tab => {
                let overflow = std::mem::take(&mut self.overflow);
                let scan = std::mem::take(&mut self.buf);
                if overflow || scan.is_empty() {
                    return Ok(None);
                }
                Ok(Some(scan))
            }
            Key::Backspace => {
                self.buf.pop();
                Ok(None)
            }
            Key::Char(c) => {
                if self.overflow {
                    return Ok(None);
                }
                if self.buf.chars().count() >= MAX_SCAN_CHARS {
                    self.buf.clear();
                    self.overflow = true;
                    return Err(ReportError::ScanTooLong);
                }
                self.buf.push(c);
                Ok(None)
            }
        }
    }

    /// Characters typed so far without an Enter.
    pub fn pending(&self) -> usize {
        self.buf.chars().count()
    }
}

/// Encodes text as the boot keyboard reports a scanner sends: for every character a press report and
/// a release report, then Enter. Characters without a US-layout key are skipped. Used by the HID
/// emulator and tests.
pub fn encode_scan(text: &str) -> Vec<[u8; BOOT_REPORT_LEN]> {
    let mut out = Vec::new();
    for c in text.chars().chain(std::iter::once('\n')) {
        let Some((usage, shift)) = char_to_usage(c) else {
            continue;
        };
        out.push([if shift { LEFT_SHIFT } else { 0 }, 0, usage, 0, 0, 0, 0, 0]);
        out.push([0; BOOT_REPORT_LEN]);
    }
    out
}

fn char_to_usage(c: char) -> Option<(u8, bool)> {
    if c == '\n' {
        return Some((0x28, false));
    }
    if c == '\t' {
        return Some((0x2B, false));
    }
    (0x04..=0x38u8)
        .flat_map(|u| [(u, false), (u, true)])
        .find(|(u, shift)| usage_to_key(*u, *shift) == Some(Key::Char(c)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_all(reports: &[[u8; 8]]) -> Vec<String> {
        let mut d = KeyboardDecoder::new(None);
        let mut a = ScanAssembler::new();
        let mut out = Vec::new();
        for r in reports {
            for k in d.push(r).unwrap() {
                if let Some(s) = a.push(k).unwrap() {
                    out.push(s);
                }
            }
        }
        out
    }

    #[test]
    fn digits_letters_and_shift() {
        assert_eq!(decode_all(&encode_scan("12345678901234")), vec!["12345678901234"]);
        assert_eq!(decode_all(&encode_scan("PRID-42/a?")), vec!["PRID-42/a?"]);
        // Repeated characters need the release report in between, as scanners send.
        assert_eq!(decode_all(&encode_scan("1100")), vec!["1100"]);
    }

    #[test]
    fn held_key_counts_once_and_rollover_is_ignored() {
        let mut d = KeyboardDecoder::new(None);
        assert_eq!(
            d.push(&[0, 0, 0x1E, 0, 0, 0, 0, 0]).unwrap(),
            vec![Key::Char('1')]
        );
        assert_eq!(
            d.push(&[0, 0, 0x1E, 0x1F, 0, 0, 0, 0]).unwrap(),
            vec![Key::Char('2')]
        );
        assert_eq!(d.push(&[0, 0, 1, 1, 1, 1, 1, 1]).unwrap(), vec![]);
        assert_eq!(d.push(&[0, 0, 0x1E, 0x1F, 0, 0, 0, 0]).unwrap(), vec![]);
        assert_eq!(d.push(&[0; 8]).unwrap(), vec![]);
        // keypad digits and keypad Enter
        assert_eq!(
            d.push(&[0, 0, 0x59, 0, 0, 0, 0, 0]).unwrap(),
            vec![Key::Char('1')]
        );
        assert_eq!(d.push(&[0, 0, 0x58, 0, 0, 0, 0, 0]).unwrap(), vec![Key::Enter]);
    }

    #[test]
    fn numbered_reports_and_malformed_reports_are_typed() {
        let mut d = KeyboardDecoder::new(Some(1));
        assert_eq!(
            d.push(&[1, 0, 0, 0x27, 0, 0, 0, 0, 0]).unwrap(),
            vec![Key::Char('0')]
        );
        assert_eq!(
            d.push(&[2, 0, 0, 0x27]).unwrap_err(),
            ReportError::WrongReportId {
                found: 2,
                expected: 1
            }
        );
        assert!(matches!(d.push(&[]).unwrap_err(), ReportError::TooShort { .. }));
        let mut d = KeyboardDecoder::new(None);
        let e = d.push(&[0, 0]).unwrap_err();
        assert!(e.to_string().contains("too short"), "{e}");
    }

    #[test]
    fn overlong_scan_is_dropped_until_enter() {
        let mut a = ScanAssembler::new();
        let mut errors = 0;
        for _ in 0..=MAX_SCAN_CHARS {
            if a.push(Key::Char('7')).is_err() {
                errors += 1;
            }
        }
        assert_eq!(errors, 1);
        assert_eq!(a.push(Key::Char('7')).unwrap(), None);
        assert_eq!(a.push(Key::Enter).unwrap(), None);
        a.push(Key::Char('9')).unwrap();
        assert_eq!(a.push(Key::Enter).unwrap(), Some("9".into()));
        assert_eq!(a.push(Key::Enter).unwrap(), None, "empty scans are skipped");
    }

    proptest! {
        #[test]
        fn decoder_never_panics(reports in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..12), 0..40), id in proptest::option::of(any::<u8>())) {
            let mut d = KeyboardDecoder::new(id);
            let mut a = ScanAssembler::new();
            for r in &reports {
                if let Ok(keys) = d.push(r) {
                    for k in keys {
                        let _ = a.push(k);
                    }
                }
            }
        }

        #[test]
        fn printable_ascii_round_trips(text in "[ -~]{1,60}") {
            prop_assert_eq!(decode_all(&encode_scan(&text)), vec![text.clone()]);
        }
    }
}
