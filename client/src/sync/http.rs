//! The station's HTTP client for the sync API (`docs/api.md`): every request signed with the machine key
//! (`wire::sign_request`), JSON answers checked against the server signing key pinned at enrolment, and
//! every failure classified so the engine knows whether to retry, skip one packet, or stop the batch.

use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::{SigningKey, VerifyingKey};
use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;
use tessera_packet::clock::Clock;
use tessera_packet::ids::MachineId;
use tessera_packet::wire::{self, ErrorBody, headers};

/// How the engine must react to a failed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// A passing fault (network, server busy or restarting): try again after a back-off.
    Retry,
    /// Something is wrong with this one packet; the rest of the batch goes on.
    SkipPacket,
    /// Authentication or configuration: nothing else will work either; stop and say why.
    StopBatch,
}

/// A failed request to the server.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HttpError {
    /// No connection, a timeout, or the connection closed mid-request.
    #[error("the server at {url} cannot be reached ({detail}); packets stay queued and are sent later")]
    Unreachable {
        /// The URL.
        url: String,
        /// The transport error.
        detail: String,
    },
    /// The server answered with an error body.
    #[error("the server refused {what}: {message} [{code}, HTTP {status}, request id {request_id}]")]
    Api {
        /// What the station was doing.
        what: String,
        /// HTTP status.
        status: u16,
        /// Stable code (`wire::ErrorBody::code`).
        code: String,
        /// The server's message.
        message: String,
        /// Request id to quote.
        request_id: String,
    },
    /// The answer could not be understood (not the protocol, truncated, wrong type).
    #[error("the server's answer to {what} is not valid: {detail}")]
    Garbage {
        /// What the station was doing.
        what: String,
        /// What was wrong.
        detail: String,
    },
    /// The answer's signature does not check against the pinned server key.
    #[error(
        "the answer to {what} is not signed by the server this station enrolled with; check the server address or re-enrol"
    )]
    BadSignature {
        /// What the station was doing.
        what: String,
    },
}

impl HttpError {
    /// What the engine should do about it.
    pub fn disposition(&self) -> Disposition {
        match self {
            Self::Unreachable { .. } | Self::Garbage { .. } => Disposition::Retry,
            Self::BadSignature { .. } => Disposition::StopBatch,
            Self::Api { status, code, .. } => match code.as_str() {
                "auth_missing"
                | "auth_malformed"
                | "request_expired"
                | "machine_unknown"
                | "signature_invalid"
                | "machine_pending"
                | "machine_suspended"
                | "tus_version_unsupported"
                | "wrong_content_type"
                | "checksum_algorithm_unsupported"
                | "quota_exceeded"
                | "malformed_header" => Disposition::StopBatch,
                "packet_too_large"
                | "rid_conflict"
                | "rid_machine_mismatch"
                | "invalid_rid"
                | "malformed_metadata"
                | "empty_upload" => Disposition::SkipPacket,
                _ if *status >= 500 || *status == 423 || *status == 409 || *status == 460 => {
                    Disposition::Retry
                }
                "replayed_request" => Disposition::Retry,
                _ => Disposition::SkipPacket,
            },
        }
    }

    /// The server's error code, if it answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// A response: status, headers, body.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Headers.
    pub headers: HeaderMap,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Answer {
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// A numeric header.
    pub fn header_u64(&self, what: &str, name: &str) -> Result<u64, HttpError> {
        self.header(name)
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| HttpError::Garbage {
                what: what.into(),
                detail: format!("header {name} is missing or not a number"),
            })
    }
}

/// Signs requests as one machine and checks answers against the pinned server key.
#[derive(Clone)]
pub struct ServerClient {
    http: reqwest::Client,
    base: String,
    machine_id: Option<MachineId>,
    key: SigningKey,
    server_key: Option<VerifyingKey>,
    clock: Arc<dyn Clock>,
    /// Server time minus station time, in seconds (applied to request timestamps).
    offset_secs: i64,
}

impl std::fmt::Debug for ServerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerClient")
            .field("base", &self.base)
            .field("machine_id", &self.machine_id)
            .finish_non_exhaustive()
    }
}

/// Largest answer body the station reads (sync pages, receipts).
const MAX_ANSWER: usize = 32 * 1024 * 1024;

fn nonce() -> String {
    let mut b = [0u8; 16];
    // A failing OS RNG leaves zeros; the server then refuses the replay, which the engine reports.
    let _ = getrandom::fill(&mut b);
    hex::encode(b)
}

impl ServerClient {
    /// A client for `base` (e.g. `http://127.0.0.1:8440`), signing with `key`.
    pub fn new(
        base: &str,
        key: SigningKey,
        machine_id: Option<MachineId>,
        server_key: Option<VerifyingKey>,
        clock: Arc<dyn Clock>,
        offset_secs: i64,
        timeout: Duration,
    ) -> Result<Self, HttpError> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(5).min(timeout))
            .timeout(timeout)
            .build()
            .map_err(|e| HttpError::Unreachable {
                url: base.into(),
                detail: format!("cannot set up HTTP: {e}"),
            })?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            machine_id,
            key,
            server_key,
            clock,
            offset_secs,
        })
    }

    /// The server base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends one request. `signed` adds the machine's authentication headers.
    pub async fn send(
        &self,
        what: &str,
        method: &str,
        path: &str,
        extra: &[(&str, String)],
        body: Vec<u8>,
        signed: bool,
    ) -> Result<Answer, HttpError> {
        let url = format!("{}{}", self.base, path);
        let m = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| HttpError::Garbage {
            what: what.into(),
            detail: format!("method {method}: {e}"),
        })?;
        let mut rb = self.http.request(m, &url);
        if signed {
            let Some(machine) = &self.machine_id else {
                return Err(HttpError::Garbage {
                    what: what.into(),
                    detail: "the station is not enrolled (no machine id)".into(),
                });
            };
            let ts = self.clock.now().timestamp().saturating_add(self.offset_secs);
            let auth = wire::sign_request(&self.key, machine, method, path, ts, &nonce(), &body);
            for (k, v) in auth.headers() {
                rb = rb.header(k, v);
            }
        }
        for (k, v) in extra {
            rb = rb.header(*k, v);
        }
        let resp = rb.body(body).send().await.map_err(|e| HttpError::Unreachable {
            url: url.clone(),
            detail: transport_detail(&e),
        })?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let mut resp = resp;
        let mut body = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(c)) => {
                    if body.len().saturating_add(c.len()) > MAX_ANSWER {
                        return Err(HttpError::Garbage {
                            what: what.into(),
                            detail: format!("the answer is larger than {MAX_ANSWER} bytes"),
                        });
                    }
                    body.extend_from_slice(&c);
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(HttpError::Unreachable {
                        url,
                        detail: format!(
                            "the connection broke while reading the answer: {}",
                            transport_detail(&e)
                        ),
                    });
                }
            }
        }
        let answer = Answer {
            status,
            headers,
            body,
        };
        if status >= 400 {
            return Err(api_error(what, &answer));
        }
        Ok(answer)
    }

    /// Checks the server signature of `answer`'s body (when a server key is pinned) and parses it.
    pub fn parse_signed<T: DeserializeOwned>(&self, what: &str, answer: &Answer) -> Result<T, HttpError> {
        if let Some(key) = &self.server_key {
            let sig = answer
                .header(headers::SERVER_SIGNATURE)
                .ok_or_else(|| HttpError::BadSignature { what: what.into() })?;
            wire::verify_server_signature(key, &answer.body, sig)
                .map_err(|_| HttpError::BadSignature { what: what.into() })?;
        }
        parse(what, &answer.body)
    }

    /// Signed GET of a signed JSON answer.
    pub async fn get_json<T: DeserializeOwned>(&self, what: &str, path: &str) -> Result<T, HttpError> {
        let a = self.send(what, "GET", path, &[], Vec::new(), true).await?;
        self.parse_signed(what, &a)
    }
}

/// Parses JSON, naming what was parsed.
pub fn parse<T: DeserializeOwned>(what: &str, body: &[u8]) -> Result<T, HttpError> {
    serde_json::from_slice(body).map_err(|e| HttpError::Garbage {
        what: what.into(),
        detail: format!("not the expected JSON: {e}"),
    })
}

fn transport_detail(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

fn api_error(what: &str, a: &Answer) -> HttpError {
    match serde_json::from_slice::<ErrorBody>(&a.body) {
        Ok(b) => HttpError::Api {
            what: what.into(),
            status: a.status,
            code: b.code,
            message: b.message,
            request_id: b.request_id,
        },
        Err(_) => HttpError::Api {
            what: what.into(),
            status: a.status,
            code: format!("http_{}", a.status),
            message: format!(
                "HTTP {} without a Tessera error body{}",
                a.status,
                if a.status >= 500 {
                    "; the server may be restarting"
                } else {
                    ""
                }
            ),
            request_id: a.header(headers::REQUEST_ID).unwrap_or("-").to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn answers_from_a_hostile_server_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512), status in 100u16..600) {
            let _ = parse::<tessera_packet::wire::SyncPage>("x", &body);
            let _ = parse::<tessera_packet::wire::SignedReceipt>("x", &body);
            let a = Answer { status, headers: HeaderMap::new(), body };
            let e = api_error("x", &a);
            let _ = e.disposition();
            prop_assert!(a.header_u64("x", "upload-offset").is_err());
        }
    }

    fn api(status: u16, code: &str) -> HttpError {
        HttpError::Api {
            what: "x".into(),
            status,
            code: code.into(),
            message: String::new(),
            request_id: String::new(),
        }
    }

    #[test]
    fn dispositions() {
        assert_eq!(
            api(403, "machine_suspended").disposition(),
            Disposition::StopBatch
        );
        assert_eq!(
            api(401, "signature_invalid").disposition(),
            Disposition::StopBatch
        );
        assert_eq!(
            api(413, "packet_too_large").disposition(),
            Disposition::SkipPacket
        );
        assert_eq!(api(503, "not_ready").disposition(), Disposition::Retry);
        assert_eq!(
            api(460, "packet_checksum_mismatch").disposition(),
            Disposition::Retry
        );
        assert_eq!(api(502, "http_502").disposition(), Disposition::Retry);
        assert_eq!(
            HttpError::Unreachable {
                url: String::new(),
                detail: String::new()
            }
            .disposition(),
            Disposition::Retry
        );
    }
}
