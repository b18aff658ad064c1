//! Reading the STREAM preview: `multipart/x-mixed-replace` parts of JPEG frames.

use super::ClientError;
use crate::protocol::{ErrorResponse, SbiErrorCode, parse};

/// Largest preview frame accepted.
pub const MAX_FRAME_BYTES: usize = 4 * 1024 * 1024;

/// An open preview stream.
#[derive(Debug)]
pub struct MjpegStream {
    verb: &'static str,
    port: u16,
    resp: reqwest::Response,
    boundary: Vec<u8>,
    buf: Vec<u8>,
    done: bool,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The outcome of looking for one frame in a buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FrameParse {
    /// Need more bytes.
    Incomplete,
    /// A frame and how many bytes it used.
    Frame(Vec<u8>, usize),
    /// The part is malformed.
    Bad(String),
}

/// Parses one part `--boundary\r\nheaders\r\n\r\n<body>` with a Content-Length header, or ending at the
/// next boundary when no length is given.
pub(crate) fn parse_frame(buf: &[u8], boundary: &[u8]) -> FrameParse {
    let mut marker = b"--".to_vec();
    marker.extend_from_slice(boundary);
    let Some(start) = find(buf, &marker) else {
        if buf.len() > MAX_FRAME_BYTES {
            return FrameParse::Bad("no boundary within the frame size limit".into());
        }
        return FrameParse::Incomplete;
    };
    let after = start + marker.len();
    let Some(rest) = buf.get(after..) else {
        return FrameParse::Incomplete;
    };
    let Some(hend) = find(rest, b"\r\n\r\n") else {
        if rest.len() > 8192 {
            return FrameParse::Bad("part headers longer than 8 KiB".into());
        }
        return FrameParse::Incomplete;
    };
    let headers = String::from_utf8_lossy(rest.get(..hend).unwrap_or_default()).to_string();
    let body_start = after + hend + 4;
    let mut length = None;
    for line in headers.lines() {
        if let Some((k, v)) = line.split_once(':')
            && k.trim().eq_ignore_ascii_case("content-length")
        {
            match v.trim().parse::<usize>() {
                Ok(n) if n <= MAX_FRAME_BYTES => length = Some(n),
                _ => return FrameParse::Bad(format!("bad Content-Length {:?}", v.trim())),
            }
        }
    }
    match length {
        Some(n) => match buf.get(body_start..body_start + n) {
            Some(body) => FrameParse::Frame(body.to_vec(), body_start + n),
            None => FrameParse::Incomplete,
        },
        None => {
            let Some(tail) = buf.get(body_start..) else {
                return FrameParse::Incomplete;
            };
            match find(tail, &marker) {
                Some(end) => {
                    let body = tail.get(..end).unwrap_or_default();
                    let body = body.strip_suffix(b"\r\n").unwrap_or(body);
                    FrameParse::Frame(body.to_vec(), body_start + end)
                }
                None if tail.len() > MAX_FRAME_BYTES => FrameParse::Bad("frame larger than the limit".into()),
                None => FrameParse::Incomplete,
            }
        }
    }
}

impl MjpegStream {
    pub(crate) async fn open(
        verb: &'static str,
        port: u16,
        resp: reqwest::Response,
    ) -> Result<Self, ClientError> {
        let ct = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        if !ct.starts_with("multipart/") {
            // Devices refuse a stream with a JSON error object.
            let bytes = resp
                .bytes()
                .await
                .map_err(|e| ClientError::from_reqwest(verb, port, std::time::Duration::ZERO, e))?;
            let err: ErrorResponse = parse("STREAM error response", &bytes)
                .map_err(|source| ClientError::Protocol { verb, port, source })?;
            let code = err
                .error
                .code()
                .map_err(|source| ClientError::Protocol { verb, port, source })?;
            return Err(ClientError::Device {
                verb,
                port,
                code: if code == SbiErrorCode::Success {
                    SbiErrorCode::Undefined(0)
                } else {
                    code
                },
                info: err.error.error_info,
            });
        }
        let boundary = ct
            .split(';')
            .filter_map(|p| p.trim().strip_prefix("boundary="))
            .next()
            .map(|b| b.trim_matches('"').trim_start_matches("--").as_bytes().to_vec())
            .ok_or_else(|| ClientError::Read {
                verb,
                port,
                reason: "multipart stream without a boundary".into(),
            })?;
        Ok(Self {
            verb,
            port,
            resp,
            boundary,
            buf: Vec::new(),
            done: false,
        })
    }

    /// The next JPEG frame, or `None` when the device ends the stream.
    pub async fn next_frame(&mut self) -> Result<Option<Vec<u8>>, ClientError> {
        loop {
            match parse_frame(&self.buf, &self.boundary) {
                FrameParse::Frame(f, used) => {
                    self.buf.drain(..used.min(self.buf.len()));
                    return Ok(Some(f));
                }
                FrameParse::Bad(reason) => {
                    return Err(ClientError::Read {
                        verb: self.verb,
                        port: self.port,
                        reason,
                    });
                }
                FrameParse::Incomplete if self.done => return Ok(None),
                FrameParse::Incomplete => {}
            }
            match self.resp.chunk().await {
                Ok(Some(c)) => self.buf.extend_from_slice(&c),
                Ok(None) => self.done = true,
                Err(e) => {
                    return Err(ClientError::from_reqwest(
                        self.verb,
                        self.port,
                        std::time::Duration::ZERO,
                        e,
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_parts_with_and_without_length() {
        let b = b"--x\r\nContent-Type: image/jpeg\r\nContent-Length: 3\r\n\r\nabc\r\n--x\r\n\r\nde\r\n--x";
        let FrameParse::Frame(f, used) = parse_frame(b, b"x") else {
            panic!()
        };
        assert_eq!(f, b"abc");
        let FrameParse::Frame(f, _) = parse_frame(&b[used..], b"x") else {
            panic!()
        };
        assert_eq!(f, b"de");
        assert_eq!(
            parse_frame(b"--x\r\nContent-Length: 10\r\n\r\nab", b"x"),
            FrameParse::Incomplete
        );
        assert!(matches!(
            parse_frame(b"--x\r\nContent-Length: zz\r\n\r\nab", b"x"),
            FrameParse::Bad(_)
        ));
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_frame(&bytes, b"tesseraframe");
        }
    }
}
