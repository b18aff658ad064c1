//! The SBI client the station uses.
//!
//! - [`SbiClient::discover`] scans `127.0.0.1:4501-4600` concurrently with MOSIPDISC; ports where nothing
//!   listens fail at once, unrelated services are skipped with a reason.
//! - [`SbiClient::device_info`] reads MOSIPDINFO and verifies its signature and the signed digital id.
//! - [`SbiClient::rcapture`] sends RCAPTURE and validates everything that comes back (see [`validate`]).
//! - [`SbiClient::next_scan`] reads what the device host's barcode scanner scanned (pre-registration
//!   QR codes), [`SbiClient::scanner_state`] its status.
//! - [`SbiClient::capture_auth`] sends CAPTURE (authentication) and validates it the same way, plus
//!   the session-key encryption to the IDA certificate.
//! - [`SbiClient::stream`] opens the STREAM preview and yields JPEG frames.
//!
//! Every verb has its own timeout ([`ClientConfig`]); every failure is a [`ClientError`] whose message
//! tells the operator what happened and what to do.

mod error;
mod stream;
pub mod validate;

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use tessera_packet::clock::Clock;

use crate::jws::TrustStore;
use crate::protocol::{
    BioRequest, BioSubType, BioType, CaptureRequest, CaptureResponse, DeviceInfo, DeviceInfoEntry,
    DeviceStatus, DeviceSubId, DigitalId, DiscoverRequest, DiscoverType, DiscoveredDevice, Env, HashChain,
    MAX_MESSAGE_BYTES, NumStr, Purpose, RCaptureRequest, SPEC_VERSION, StreamRequest, TransactionId,
    b64url_decode, parse, sbi_time,
};

pub use error::ClientError;
pub use stream::MjpegStream;
pub use validate::{Capture, CaptureMode, CaptureSpec, CapturedSegment};

/// What an authentication capture (CAPTURE) needs beyond the [`CaptureSpec`].
#[derive(Debug, Clone)]
pub struct AuthCaptureOptions {
    /// IDA domain URI sent as `domainUri` (federation); `None` for the default domain.
    pub domain_uri: Option<String>,
    /// Uppercase hex SHA-256 of the IDA encryption certificate the device must encrypt to
    /// ([`crate::session::thumbprint`] of the certificate synced from the server).
    pub thumbprint: String,
    /// The IDA private key, to decrypt and verify the hash chain (server side, tests); stations do not
    /// hold it.
    pub decryptor: Option<Arc<crate::session::SessionKeyDecryptor>>,
}

/// Timeouts and ports.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// First port scanned.
    pub first_port: u16,
    /// Last port scanned (inclusive).
    pub last_port: u16,
    /// TCP connect timeout (local ports refuse at once; this bounds filtered ports).
    pub connect_timeout: Duration,
    /// MOSIPDISC timeout per port (bounds services that accept but never answer).
    pub discover_timeout: Duration,
    /// MOSIPDINFO timeout.
    pub info_timeout: Duration,
    /// Added to the capture request's own timeout to get the RCAPTURE HTTP timeout.
    pub capture_grace: Duration,
    /// Application name sent in the `EXT` header.
    pub app_name: String,
    /// Environment sent in capture requests.
    pub env: Env,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            first_port: 4501,
            last_port: 4600,
            connect_timeout: Duration::from_millis(200),
            discover_timeout: Duration::from_millis(1500),
            info_timeout: Duration::from_secs(5),
            capture_grace: Duration::from_secs(5),
            app_name: "Tessera Station".into(),
            env: Env::Developer,
        }
    }
}

/// A device found by discovery.
#[derive(Debug, Clone)]
pub struct FoundDevice {
    /// Port it answered on.
    pub port: u16,
    /// The discovery entry.
    pub entry: DiscoveredDevice,
    /// The decoded (unsigned) digital id.
    pub digital_id: DigitalId,
}

impl FoundDevice {
    /// Modality.
    pub fn bio_type(&self) -> BioType {
        self.digital_id.bio_type
    }
}

/// The result of a discovery scan.
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    /// Devices found, by port.
    pub devices: Vec<FoundDevice>,
    /// Ports where something answered that is not a usable SBI service, with the reason.
    pub ignored: Vec<(u16, String)>,
}

/// Verified device info.
#[derive(Debug, Clone)]
pub struct VerifiedDeviceInfo {
    /// The payload.
    pub info: DeviceInfo,
    /// The digital id (signature verified).
    pub digital_id: DigitalId,
    /// Subject of the signer certificate.
    pub signer_subject: String,
}

/// The station's SBI client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SbiClient {
    http: reqwest::Client,
    config: Arc<ClientConfig>,
    trust: Arc<TrustStore>,
    clock: Arc<dyn Clock>,
}

fn method(name: &'static str) -> Result<Method, ClientError> {
    Method::from_bytes(name.as_bytes()).map_err(|e| ClientError::Setup(format!("HTTP method {name}: {e}")))
}

impl SbiClient {
    /// A client trusting the provider CAs in `trust`, reading time from `clock`.
    pub fn new(
        config: ClientConfig,
        trust: Arc<TrustStore>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(config.connect_timeout)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| ClientError::Setup(e.to_string()))?;
        Ok(Self {
            http,
            config: Arc::new(config),
            trust,
            clock,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    fn url(port: u16, path: &str) -> String {
        format!("http://127.0.0.1:{port}{path}")
    }

    /// Sends one SBI verb and reads the whole (bounded) body.
    async fn call(
        &self,
        verb: &'static str,
        port: u16,
        path: &str,
        body: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<Vec<u8>, ClientError> {
        let mut rb = self
            .http
            .request(method(verb)?, Self::url(port, path))
            .header("EXT", self.config.app_name.as_str())
            .timeout(timeout);
        if let Some(b) = body {
            rb = rb
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(b);
        }
        let resp = rb
            .send()
            .await
            .map_err(|e| ClientError::from_reqwest(verb, port, timeout, e))?;
        if !resp.status().is_success() {
            return Err(ClientError::HttpStatus {
                verb,
                port,
                status: resp.status().as_u16(),
            });
        }
        read_bounded(verb, port, timeout, resp).await
    }

    /// MOSIPDISC on one port.
    pub async fn discover_port(
        &self,
        port: u16,
        kind: DiscoverType,
    ) -> Result<Vec<FoundDevice>, ClientError> {
        let body = serde_json::to_vec(&DiscoverRequest { device_type: kind })
            .map_err(|e| ClientError::Setup(e.to_string()))?;
        let bytes = self
            .call(
                "MOSIPDISC",
                port,
                "/device",
                Some(body),
                self.config.discover_timeout,
            )
            .await?;
        let entries: Vec<DiscoveredDevice> =
            parse("MOSIPDISC response", &bytes).map_err(|source| ClientError::Protocol {
                verb: "MOSIPDISC",
                port,
                source,
            })?;
        let mut out = Vec::with_capacity(entries.len());
        for entry in entries {
            let raw =
                b64url_decode("digitalId", &entry.digital_id).map_err(|source| ClientError::Protocol {
                    verb: "MOSIPDISC",
                    port,
                    source,
                })?;
            let digital_id: DigitalId =
                parse("discovery digitalId", &raw).map_err(|source| ClientError::Protocol {
                    verb: "MOSIPDISC",
                    port,
                    source,
                })?;
            out.push(FoundDevice {
                port,
                entry,
                digital_id,
            });
        }
        Ok(out)
    }

    /// Scans the configured port range concurrently for devices of any type.
    pub async fn discover(&self) -> Discovery {
        self.discover_type(DiscoverType::BiometricDevice).await
    }

    /// Scans the configured port range concurrently for devices of `kind`.
    pub async fn discover_type(&self, kind: DiscoverType) -> Discovery {
        let mut set = tokio::task::JoinSet::new();
        for port in self.config.first_port..=self.config.last_port {
            let me = self.clone();
            set.spawn(async move { (port, me.discover_port(port, kind).await) });
        }
        let mut d = Discovery::default();
        while let Some(r) = set.join_next().await {
            match r {
                Ok((_, Ok(found))) => d.devices.extend(found),
                Ok((_, Err(ClientError::Connect { .. }))) => {}
                Ok((port, Err(e))) => {
                    tracing::debug!(port, error = %e, "port answered but is not a usable SBI service");
                    d.ignored.push((port, e.to_string()));
                }
                Err(e) => tracing::warn!(error = %e, "discovery task failed"),
            }
        }
        d.devices.sort_by_key(|f| (f.port, f.entry.device_id.clone()));
        d.ignored.sort_by_key(|(p, _)| *p);
        d
    }

    /// MOSIPDINFO on one port; verifies each signed entry and its digital id.
    pub async fn device_info(&self, port: u16) -> Result<Vec<VerifiedDeviceInfo>, ClientError> {
        let bytes = self
            .call("MOSIPDINFO", port, "/info", None, self.config.info_timeout)
            .await?;
        let entries: Vec<DeviceInfoEntry> =
            parse("MOSIPDINFO response", &bytes).map_err(|source| ClientError::Protocol {
                verb: "MOSIPDINFO",
                port,
                source,
            })?;
        let mut out = Vec::new();
        for e in entries {
            let code = e.error.code().map_err(|source| ClientError::Protocol {
                verb: "MOSIPDINFO",
                port,
                source,
            })?;
            if code != crate::protocol::SbiErrorCode::Success {
                return Err(ClientError::Device {
                    verb: "MOSIPDINFO",
                    port,
                    code,
                    info: e.error.error_info,
                });
            }
            let token = e.device_info.ok_or(ClientError::Device {
                verb: "MOSIPDINFO",
                port,
                code,
                info: "success without deviceInfo".into(),
            })?;
            let v = self
                .trust
                .verify("device info", &token, self.clock.as_ref())
                .map_err(|source| ClientError::Signature {
                    what: "device info".into(),
                    source: Box::new(source),
                })?;
            let info: DeviceInfo =
                parse("deviceInfo payload", &v.payload).map_err(|source| ClientError::Protocol {
                    verb: "MOSIPDINFO",
                    port,
                    source,
                })?;
            let d = self
                .trust
                .verify("digital id", &info.digital_id, self.clock.as_ref())
                .map_err(|source| ClientError::Signature {
                    what: "device info digital id".into(),
                    source: Box::new(source),
                })?;
            let digital_id: DigitalId =
                parse("digitalId payload", &d.payload).map_err(|source| ClientError::Protocol {
                    verb: "MOSIPDINFO",
                    port,
                    source,
                })?;
            if digital_id.serial_no != info.device_code {
                return Err(ClientError::DeviceMismatch {
                    detail: format!(
                        "device info reports device code {} but its digital id names serial {}",
                        info.device_code, digital_id.serial_no
                    ),
                });
            }
            out.push(VerifiedDeviceInfo {
                info,
                digital_id,
                signer_subject: v.signer_subject,
            });
        }
        Ok(out)
    }

    /// Builds the RCAPTURE request for `spec`.
    pub fn rcapture_request(&self, spec: &CaptureSpec, previous: &HashChain) -> RCaptureRequest {
        RCaptureRequest {
            env: self.config.env,
            purpose: Purpose::Registration,
            spec_version: SPEC_VERSION.into(),
            timeout: NumStr(u32::try_from(spec.timeout.as_millis()).unwrap_or(u32::MAX)),
            capture_time: sbi_time(self.clock.now()),
            transaction_id: spec.transaction_id.as_str().to_string(),
            bio: vec![BioRequest {
                bio_type: spec.bio_type,
                count: NumStr(spec.count),
                bio_sub_type: spec.bio_sub_type.clone(),
                exception: spec.exceptions.clone(),
                requested_score: NumStr(u32::from(spec.requested_score)),
                device_id: spec.device_id.clone(),
                device_sub_id: spec.device_sub_id,
                previous_hash: previous.current_hex(),
            }],
            custom_opts: None,
        }
    }

    /// RCAPTURE on `device` and full validation of the answer (see [`validate::validate_capture`]).
    /// `previous` is the transaction's hash chain so far; on success the returned capture carries the
    /// chain after it, to keep if the station accepts the capture.
    pub async fn rcapture(
        &self,
        device: &FoundDevice,
        spec: &CaptureSpec,
        previous: &HashChain,
    ) -> Result<Capture, ClientError> {
        if device.entry.device_status != DeviceStatus::Ready {
            tracing::debug!(port = device.port, status = ?device.entry.device_status, "capturing on a device that was not Ready at discovery");
        }
        let req = self.rcapture_request(spec, previous);
        let body = serde_json::to_vec(&req).map_err(|e| ClientError::Setup(e.to_string()))?;
        let timeout = spec.timeout + self.config.capture_grace;
        let bytes = self
            .call("RCAPTURE", device.port, "/capture", Some(body), timeout)
            .await?;
        let resp: CaptureResponse =
            parse("RCAPTURE response", &bytes).map_err(|source| ClientError::Protocol {
                verb: "RCAPTURE",
                port: device.port,
                source,
            })?;
        validate::validate_capture(&resp, spec, device, previous, &self.trust, self.clock.as_ref())
    }

    /// Builds the CAPTURE (authentication) request for `spec`.
    pub fn capture_request(
        &self,
        spec: &CaptureSpec,
        previous: &HashChain,
        options: &AuthCaptureOptions,
    ) -> CaptureRequest {
        let r = self.rcapture_request(spec, previous);
        CaptureRequest {
            env: r.env,
            purpose: Purpose::Auth,
            spec_version: r.spec_version,
            timeout: r.timeout,
            capture_time: r.capture_time,
            domain_uri: options.domain_uri.clone(),
            transaction_id: r.transaction_id,
            bio: r.bio,
            custom_opts: None,
        }
    }

    /// CAPTURE (authentication) on `device`: the same checks as [`SbiClient::rcapture`] (device
    /// errors, signatures and chain, digital id, transaction id, requested vs returned segments,
    /// quality), plus purpose `Auth`, the IDA certificate thumbprint and the wrapped session key; the
    /// hash chain is verified when `options` carries the IDA key (see [`CaptureMode::Auth`]). Only
    /// one CAPTURE at a time: a parallel call gets Busy.
    pub async fn capture_auth(
        &self,
        device: &FoundDevice,
        spec: &CaptureSpec,
        previous: &HashChain,
        options: &AuthCaptureOptions,
    ) -> Result<Capture, ClientError> {
        let req = self.capture_request(spec, previous, options);
        let body = serde_json::to_vec(&req).map_err(|e| ClientError::Setup(e.to_string()))?;
        let timeout = spec.timeout + self.config.capture_grace;
        let bytes = self
            .call("CAPTURE", device.port, "/capture", Some(body), timeout)
            .await?;
        let resp: CaptureResponse =
            parse("CAPTURE response", &bytes).map_err(|source| ClientError::Protocol {
                verb: "CAPTURE",
                port: device.port,
                source,
            })?;
        validate::validate_capture_as(
            &resp,
            spec,
            device,
            previous,
            &self.trust,
            self.clock.as_ref(),
            CaptureMode::Auth {
                thumbprint: &options.thumbprint,
                decryptor: options.decryptor.as_deref(),
            },
        )
    }

    /// The state of the device host's barcode scanner (`tessera-sbi host`, scanner port 4610 by
    /// default): Ready / Not Ready, the open device, pending scans.
    pub async fn scanner_state(&self, port: u16) -> Result<crate::hid::scanner::ScannerState, ClientError> {
        let bytes = self
            .call("GET", port, "/scanner", None, self.config.info_timeout)
            .await?;
        parse("scanner state", &bytes).map_err(|source| ClientError::Protocol {
            verb: "GET /scanner",
            port,
            source,
        })
    }

    /// The oldest unread scan of the device host's barcode scanner (e.g. a pre-registration QR code),
    /// waiting up to `wait` (at most 60 s) for one; `None` when nothing was scanned.
    pub async fn next_scan(
        &self,
        port: u16,
        wait: Duration,
    ) -> Result<Option<crate::hid::scanner::Scan>, ClientError> {
        let ms = wait.min(crate::hid::scanner::MAX_WAIT).as_millis();
        let bytes = self
            .call(
                "GET",
                port,
                &format!("/scanner/scan?waitMs={ms}"),
                None,
                wait + self.config.capture_grace,
            )
            .await?;
        if bytes.is_empty() {
            return Ok(None);
        }
        parse("scanner scan", &bytes)
            .map(Some)
            .map_err(|source| ClientError::Protocol {
                verb: "GET /scanner/scan",
                port,
                source,
            })
    }

    /// Opens the STREAM preview of a device part.
    pub async fn stream(
        &self,
        device: &FoundDevice,
        sub_id: DeviceSubId,
        duration: Duration,
    ) -> Result<MjpegStream, ClientError> {
        let req = StreamRequest {
            device_id: device.entry.device_id.clone(),
            device_sub_id: sub_id,
            timeout: Some(NumStr(u32::try_from(duration.as_millis()).unwrap_or(u32::MAX))),
        };
        let body = serde_json::to_vec(&req).map_err(|e| ClientError::Setup(e.to_string()))?;
        let resp = self
            .http
            .request(method("STREAM")?, Self::url(device.port, "/stream"))
            .header("EXT", self.config.app_name.as_str())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .timeout(duration + self.config.capture_grace)
            .send()
            .await
            .map_err(|e| ClientError::from_reqwest("STREAM", device.port, duration, e))?;
        MjpegStream::open("STREAM", device.port, resp).await
    }
}

/// A spec helper: the standard request for one part of a device.
pub fn capture_spec_for(
    device: &FoundDevice,
    sub_id: DeviceSubId,
    transaction_id: TransactionId,
    exceptions: Vec<BioSubType>,
    requested_score: u8,
    timeout: Duration,
) -> CaptureSpec {
    let bio_type = device.bio_type();
    let segments = BioSubType::segments_of(bio_type, sub_id);
    let count = match bio_type {
        BioType::Face => 1,
        _ => u32::try_from(segments.len().max(1)).unwrap_or(1),
    };
    CaptureSpec {
        transaction_id,
        bio_type,
        device_id: device.entry.device_id.clone(),
        device_sub_id: sub_id,
        count,
        bio_sub_type: segments.to_vec(),
        exceptions,
        requested_score,
        timeout,
    }
}

async fn read_bounded(
    verb: &'static str,
    port: u16,
    timeout: Duration,
    mut resp: reqwest::Response,
) -> Result<Vec<u8>, ClientError> {
    let mut out = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(c)) => {
                if out.len() + c.len() > MAX_MESSAGE_BYTES {
                    return Err(ClientError::TooLarge {
                        verb,
                        port,
                        max: MAX_MESSAGE_BYTES,
                    });
                }
                out.extend_from_slice(&c);
            }
            Ok(None) => return Ok(out),
            Err(e) => return Err(ClientError::from_reqwest(verb, port, timeout, e)),
        }
    }
}
