//! The SBI verbs of one simulated device.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, Method, Response, StatusCode, header};
use axum::routing::{get, post};

use super::{DeviceState, FailureMode, SimImage, TIMEOUT_FAILURE_EXTRA, admin};
use crate::protocol::{
    BioRequest, BioSubType, BioType, BiometricEntry, CaptureData, CaptureRequest, CaptureResponse,
    Certification, DeviceInfo, DeviceInfoEntry, DeviceStatus, DeviceSubId, DigitalId, DiscoverRequest,
    DiscoveredDevice, Env, ErrorInfo, ErrorResponse, NumStr, Purpose, RCaptureRequest, SPEC_VERSION,
    SbiErrorCode, StreamRequest, TransactionId, b64url_encode, chain_hash, parse, parse_hash, sbi_time,
};

const SERVICE_VERSION: &str = "1.0.0";
const FIRMWARE: &str = "sim-1.0";
const MAX_BODY: usize = 1024 * 1024;

pub(crate) fn router(state: Arc<DeviceState>) -> Router {
    Router::new()
        .route("/admin/status", get(admin::get_status).post(admin::set_status))
        .route("/admin/score", post(admin::set_score))
        .route("/admin/delay", post(admin::set_delay))
        .route("/admin/profile", post(admin::set_profile))
        .route("/admin/person", post(admin::set_person))
        .route("/admin/missing", post(admin::set_missing))
        .route("/admin/failure", post(admin::set_failure))
        .fallback(dispatch)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

pub(crate) fn json_response(status: StatusCode, body: Vec<u8>) -> Response<Body> {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("OPTIONS, RCAPTURE, CAPTURE, MOSIPDINFO, MOSIPDISC, STREAM, GET, POST"),
    );
    r
}

fn to_json<T: serde::Serialize>(v: &T) -> Response<Body> {
    match serde_json::to_vec(v) {
        Ok(b) => json_response(StatusCode::OK, b),
        Err(e) => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{{\"error\":{{\"errorCode\":\"500\",\"errorInfo\":\"serialisation failed: {e}\"}}}}")
                .into_bytes(),
        ),
    }
}

fn error_only(code: SbiErrorCode, info: Option<String>) -> Response<Body> {
    let mut e = ErrorInfo::from_code(code);
    if let Some(i) = info {
        e.error_info = i;
    }
    to_json(&ErrorResponse { error: e })
}

async fn dispatch(State(dev): State<Arc<DeviceState>>, method: Method, body: Bytes) -> Response<Body> {
    match method.as_str() {
        "MOSIPDISC" => discover(&dev, &body),
        "MOSIPDINFO" => device_info(&dev),
        "RCAPTURE" => capture(&dev, &body, false).await,
        "CAPTURE" => capture(&dev, &body, true).await,
        "STREAM" => stream(&dev, &body),
        "OPTIONS" => json_response(StatusCode::OK, Vec::new()),
        _ => json_response(
            StatusCode::METHOD_NOT_ALLOWED,
            br#"{"error":{"errorCode":"500","errorInfo":"unsupported method"}}"#.to_vec(),
        ),
    }
}

fn effective_status(dev: &DeviceState) -> DeviceStatus {
    let c = dev.control();
    if c.failure == FailureMode::Busy || dev.capturing.load(Ordering::Relaxed) {
        DeviceStatus::Busy
    } else if let Some(DeviceStatus::NotReady) = dev.images.device_status() {
        // A physical device behind the host that is unplugged: truthful Not Ready.
        DeviceStatus::NotReady
    } else {
        c.device_status
    }
}

fn digital_id(dev: &DeviceState) -> DigitalId {
    DigitalId {
        serial_no: dev.serial_no.clone(),
        make: "Tessera".into(),
        model: dev.kind.model().into(),
        bio_type: dev.kind.bio_type(),
        device_sub_type: dev.kind.sub_type(),
        device_provider: "Tessera Simulated Devices".into(),
        device_provider_id: "TESSERA-SIM".into(),
        date_time: sbi_time(dev.clock.now()),
    }
}

fn signed_digital_id(dev: &DeviceState) -> Result<String, String> {
    let json = serde_json::to_vec(&digital_id(dev)).map_err(|e| e.to_string())?;
    dev.signer.sign(&json).map_err(|e| e.to_string())
}

fn purpose_env(status: DeviceStatus) -> (Purpose, Env) {
    if status == DeviceStatus::NotRegistered {
        (Purpose::Unregistered, Env::None)
    } else {
        (Purpose::Registration, Env::Developer)
    }
}

fn discover(dev: &DeviceState, body: &[u8]) -> Response<Body> {
    let req: DiscoverRequest = match parse("MOSIPDISC request", body) {
        Ok(r) => r,
        Err(e) => return error_only(SbiErrorCode::Vendor(500), Some(e.to_string())),
    };
    if !req.device_type.matches(dev.kind.bio_type()) {
        return to_json(&Vec::<DiscoveredDevice>::new());
    }
    let status = effective_status(dev);
    let (purpose, _) = purpose_env(status);
    let digital_id = match serde_json::to_vec(&digital_id(dev)) {
        Ok(j) => b64url_encode(&j),
        Err(e) => return error_only(SbiErrorCode::Vendor(500), Some(e.to_string())),
    };
    let error = if status == DeviceStatus::NotRegistered {
        ErrorInfo::from_code(SbiErrorCode::NotRegistered)
    } else {
        ErrorInfo::success()
    };
    to_json(&vec![DiscoveredDevice {
        device_id: dev.device_id.clone(),
        device_status: status,
        certification: Certification::L0,
        service_version: SERVICE_VERSION.into(),
        device_sub_id: dev.kind.sub_ids(),
        callback_id: dev.callback_id(),
        digital_id,
        device_code: dev.serial_no.clone(),
        spec_version: vec![SPEC_VERSION.into()],
        purpose,
        error,
    }])
}

fn device_info(dev: &DeviceState) -> Response<Body> {
    let status = effective_status(dev);
    let (purpose, env) = purpose_env(status);
    let digital = if status == DeviceStatus::NotRegistered {
        match serde_json::to_vec(&digital_id(dev)) {
            Ok(j) => b64url_encode(&j),
            Err(e) => return error_only(SbiErrorCode::Vendor(500), Some(e.to_string())),
        }
    } else {
        match signed_digital_id(dev) {
            Ok(s) => s,
            Err(e) => return error_only(SbiErrorCode::Vendor(500), Some(e)),
        }
    };
    let info = DeviceInfo {
        device_status: status,
        device_id: dev.device_id.clone(),
        firmware: FIRMWARE.into(),
        certification: Certification::L0,
        service_version: SERVICE_VERSION.into(),
        device_sub_id: dev.kind.sub_ids(),
        callback_id: dev.callback_id(),
        digital_id: digital,
        device_code: dev.serial_no.clone(),
        env,
        purpose,
        spec_version: vec![SPEC_VERSION.into()],
    };
    let payload = match serde_json::to_vec(&info) {
        Ok(p) => p,
        Err(e) => return error_only(SbiErrorCode::Vendor(500), Some(e.to_string())),
    };
    let entry = if status == DeviceStatus::NotRegistered {
        // An unregistered device has no key to sign with: payload only, and error 100.
        DeviceInfoEntry {
            device_info: Some(b64url_encode(&payload)),
            error: ErrorInfo::from_code(SbiErrorCode::NotRegistered),
        }
    } else {
        match dev.signer.sign(&payload) {
            Ok(jws) => DeviceInfoEntry {
                device_info: Some(jws),
                error: ErrorInfo::success(),
            },
            Err(e) => return error_only(SbiErrorCode::Vendor(500), Some(e.to_string())),
        }
    };
    to_json(&vec![entry])
}

fn capture_error(code: SbiErrorCode, info: Option<String>) -> Response<Body> {
    let mut error = ErrorInfo::from_code(code);
    if let Some(i) = info {
        error.error_info = i;
    }
    to_json(&CaptureResponse {
        biometrics: vec![BiometricEntry {
            spec_version: Some(SPEC_VERSION.into()),
            data: None,
            hash: None,
            session_key: None,
            thumbprint: None,
            error,
        }],
    })
}

/// Clears the capturing flag when a capture ends, however it ends.
struct CaptureGuard<'a>(&'a DeviceState);

impl Drop for CaptureGuard<'_> {
    fn drop(&mut self) {
        self.0.capturing.store(false, Ordering::Release);
    }
}

/// The segments the device returns for a request, before removing what the person lacks.
fn requested_segments(dev: &DeviceState, bio: &BioRequest) -> Result<Vec<Option<BioSubType>>, String> {
    match dev.kind.bio_type() {
        BioType::Face => Ok(vec![None]),
        bt => {
            let all: Vec<BioSubType> = match (dev.kind, bio.device_sub_id) {
                (super::DeviceKind::FingerSingle, _) => {
                    // A single-finger scanner captures whichever finger is named (or UNKNOWN).
                    let named: Vec<BioSubType> = bio
                        .bio_sub_type
                        .iter()
                        .copied()
                        .filter(|s| s.belongs_to(BioType::Finger))
                        .collect();
                    if named.is_empty() {
                        vec![BioSubType::Unknown]
                    } else {
                        named
                    }
                }
                (_, DeviceSubId::Unknown) => {
                    return Err(format!(
                        "deviceSubId 0 is not valid for a {} device with parts 1-3",
                        bt.as_str()
                    ));
                }
                (_, sub) => BioSubType::segments_of(bt, sub).to_vec(),
            };
            let filter: Vec<BioSubType> = bio
                .bio_sub_type
                .iter()
                .copied()
                .filter(|s| *s != BioSubType::Unknown)
                .collect();
            Ok(all
                .into_iter()
                .filter(|s| filter.is_empty() || filter.contains(s))
                .filter(|s| !bio.exception.contains(s))
                .map(Some)
                .collect())
        }
    }
}

/// The segments an auth CAPTURE returns: the named ones (deviceSubId is "0" for auth), else the
/// device part's, minus exceptions.
fn auth_segments(dev: &DeviceState, bio: &BioRequest) -> Result<Vec<Option<BioSubType>>, String> {
    let bt = dev.kind.bio_type();
    if bt == BioType::Face {
        return Ok(vec![None]);
    }
    let named: Vec<BioSubType> = bio
        .bio_sub_type
        .iter()
        .copied()
        .filter(|s| s.belongs_to(bt) && *s != BioSubType::Unknown)
        .collect();
    let base = if !named.is_empty() {
        named
    } else if dev.kind == super::DeviceKind::FingerSingle {
        vec![BioSubType::Unknown]
    } else if bio.device_sub_id != DeviceSubId::Unknown {
        BioSubType::segments_of(bt, bio.device_sub_id).to_vec()
    } else {
        return Err(format!(
            "name the {} segments to capture in bioSubType",
            bt.as_str()
        ));
    };
    Ok(base
        .into_iter()
        .filter(|s| !bio.exception.contains(s))
        .map(Some)
        .collect())
}

fn image_for(
    dev: &DeviceState,
    person: u64,
    seg: Option<BioSubType>,
    impression: u32,
) -> Result<SimImage, super::ImageError> {
    match (dev.kind.bio_type(), seg) {
        (BioType::Face, _) => dev.images.face(person, impression),
        (BioType::Iris, Some(s)) => dev.images.iris(person, s, impression),
        (BioType::Finger, Some(s)) => dev.images.finger(person, s, impression),
        (_, None) => Err(super::ImageError {
            what: "an image".into(),
            person,
            reason: "no segment".into(),
            device_gone: false,
        }),
    }
}

/// The capture error for an image source failure: Not Ready when the device went away (unplugged
/// mid-capture), extraction error otherwise.
fn image_error(e: &super::ImageError) -> Response<Body> {
    if e.device_gone {
        capture_error(
            SbiErrorCode::NotReady,
            Some(format!(
                "the device was disconnected during the capture ({}); reconnect it and capture again",
                e.reason
            )),
        )
    } else {
        capture_error(SbiErrorCode::ExtractionError, Some(e.to_string()))
    }
}

/// What RCAPTURE and CAPTURE requests share.
struct CaptureCall {
    env: crate::protocol::Env,
    timeout: NumStr,
    transaction_id: String,
    bio: Vec<BioRequest>,
    domain_uri: Option<String>,
}

fn parse_call(body: &[u8], auth: bool) -> Result<CaptureCall, String> {
    if auth {
        let r: CaptureRequest = parse("CAPTURE request", body).map_err(|e| e.to_string())?;
        Ok(CaptureCall {
            env: r.env,
            timeout: r.timeout,
            transaction_id: r.transaction_id,
            bio: r.bio,
            domain_uri: r.domain_uri,
        })
    } else {
        let r: RCaptureRequest = parse("RCAPTURE request", body).map_err(|e| e.to_string())?;
        Ok(CaptureCall {
            env: r.env,
            timeout: r.timeout,
            transaction_id: r.transaction_id,
            bio: r.bio,
            domain_uri: None,
        })
    }
}

/// RCAPTURE (`auth` false: plain ISO records) and CAPTURE (`auth` true: session-key-encrypted).
async fn capture(dev: &Arc<DeviceState>, body: &[u8], auth: bool) -> Response<Body> {
    let req = match parse_call(body, auth) {
        Ok(r) => r,
        Err(e) => return capture_error(SbiErrorCode::Vendor(500), Some(e)),
    };
    if TransactionId::parse(&req.transaction_id).is_err() {
        return capture_error(SbiErrorCode::InvalidTransactionId, None);
    }
    let encryptor = match (&dev.auth, auth) {
        (_, false) => None,
        (Some(e), true) => Some(e.clone()),
        (None, true) => {
            return capture_error(
                SbiErrorCode::DomainKeyMissing,
                Some("no authentication (IDA) certificate is configured to encrypt to".into()),
            );
        }
    };
    let control = dev.control();
    match (control.failure, effective_status(dev)) {
        (FailureMode::Busy, _) | (_, DeviceStatus::Busy) => return capture_error(SbiErrorCode::Busy, None),
        (_, DeviceStatus::NotReady) => return capture_error(SbiErrorCode::NotReady, None),
        (_, DeviceStatus::NotRegistered) => return capture_error(SbiErrorCode::NotRegistered, None),
        _ => {}
    }
    let Some(bio) = req.bio.first() else {
        return capture_error(
            SbiErrorCode::Vendor(500),
            Some("the request has no bio entry".into()),
        );
    };
    if bio.bio_type != dev.kind.bio_type() {
        return capture_error(
            SbiErrorCode::DeviceNotFound,
            Some(format!(
                "this device captures {}, not {}",
                dev.kind.bio_type().as_str(),
                bio.bio_type.as_str()
            )),
        );
    }
    if bio.device_id != dev.device_id {
        return capture_error(
            SbiErrorCode::DeviceNotFound,
            Some(format!("no device with id {:?} here", bio.device_id)),
        );
    }
    let segments = match if auth {
        auth_segments(dev, bio)
    } else {
        requested_segments(dev, bio)
    } {
        Ok(s) => s,
        Err(e) => return capture_error(SbiErrorCode::BioCountNotSupported, Some(e)),
    };
    let count = bio.count.get() as usize;
    let capacity = match (dev.kind, auth) {
        (super::DeviceKind::FingerSlap, true) => 10,
        (super::DeviceKind::IrisDouble, true) => 2,
        (_, true) => 1,
        _ => match dev.kind.bio_type() {
            BioType::Face => 1,
            bt => BioSubType::segments_of(bt, bio.device_sub_id).len().max(1),
        },
    };
    if count == 0 || count > capacity {
        return capture_error(
            SbiErrorCode::BioCountNotSupported,
            Some(format!(
                "count {count} is not supported by this device part (1 to {capacity})"
            )),
        );
    }
    let mut previous = match parse_hash("previousHash", &bio.previous_hash) {
        Ok(h) => h,
        Err(e) => return capture_error(SbiErrorCode::Vendor(500), Some(e.to_string())),
    };
    if dev
        .capturing
        .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return capture_error(SbiErrorCode::Busy, None);
    }
    let _guard = CaptureGuard(dev);
    if control.failure == FailureMode::Timeout {
        let hold = Duration::from_millis(u64::from(req.timeout.get())) + TIMEOUT_FAILURE_EXTRA;
        tokio::time::sleep(hold).await;
        return capture_error(SbiErrorCode::UnableToDetect, Some("capture timed out".into()));
    }
    if control.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(control.delay_ms)).await;
    }
    let digital = match signed_digital_id(dev) {
        Ok(d) => d,
        Err(e) => return capture_error(SbiErrorCode::Vendor(500), Some(e)),
    };
    let impression = dev.next_impression();
    let dev2 = dev.clone();
    let person = control.person_id;
    let kept: Vec<Option<BioSubType>> = segments
        .into_iter()
        .filter(|s| s.is_none_or(|s| !control.missing.contains(&s)))
        .collect();
    // Image synthesis and quality scoring are CPU work: off the async workers, one thread per segment
    // (a slap's four fingers in parallel).
    let images = tokio::task::spawn_blocking(move || {
        std::thread::scope(|scope| {
            let handles: Vec<_> = kept
                .iter()
                .map(|&s| {
                    let dev = &dev2;
                    (s, scope.spawn(move || image_for(dev, person, s, impression)))
                })
                .collect();
            handles
                .into_iter()
                .map(|(s, h)| match h.join() {
                    Ok(r) => r.map(|i| (s, i)),
                    Err(_) => Err(super::ImageError {
                        what: "an image".into(),
                        person,
                        reason: "the image source failed unexpectedly".into(),
                        device_gone: false,
                    }),
                })
                .collect::<Result<Vec<_>, super::ImageError>>()
        })
    })
    .await;
    let images = match images {
        Ok(Ok(i)) => i,
        Ok(Err(e)) => return image_error(&e),
        Err(e) => return capture_error(SbiErrorCode::ExtractionError, Some(e.to_string())),
    };
    if images.is_empty() {
        return capture_error(SbiErrorCode::UnableToDetect, None);
    }
    let timestamp = sbi_time(dev.clock.now());
    let mut biometrics = Vec::with_capacity(images.len());
    for (seg, img) in images {
        // A score forced through /admin/score wins over the one measured on the image.
        let quality = control.quality_score.unwrap_or(img.quality).min(100);
        let (bio_value, sealed) = match &encryptor {
            None => (b64url_encode(&img.iso), None),
            Some(enc) => match enc.encrypt(&img.iso, &timestamp, &req.transaction_id) {
                Ok(e) => (e.bio_value.clone(), Some(e)),
                Err(e) => return capture_error(SbiErrorCode::Vendor(500), Some(e.to_string())),
            },
        };
        let data = CaptureData {
            digital_id: digital.clone(),
            bio_type: dev.kind.bio_type(),
            bio_sub_type: seg,
            device_code: dev.serial_no.clone(),
            device_service_version: SERVICE_VERSION.into(),
            purpose: if auth {
                Purpose::Auth
            } else {
                Purpose::Registration
            },
            env: req.env,
            domain_uri: auth.then(|| req.domain_uri.clone().unwrap_or_default()),
            bio_value,
            transaction_id: req.transaction_id.clone(),
            timestamp: timestamp.clone(),
            requested_score: bio.requested_score,
            quality_score: NumStr(u32::from(quality)),
        };
        let payload = match serde_json::to_vec(&data) {
            Ok(p) => p,
            Err(e) => return capture_error(SbiErrorCode::Vendor(500), Some(e.to_string())),
        };
        let signed = if control.failure == FailureMode::BadSignature {
            dev.signer.sign_corrupted(&payload)
        } else {
            dev.signer.sign(&payload)
        };
        let signed = match signed {
            Ok(s) => s,
            Err(e) => return capture_error(SbiErrorCode::Vendor(500), Some(e.to_string())),
        };
        previous = chain_hash(&previous, &img.iso);
        biometrics.push(BiometricEntry {
            spec_version: Some(SPEC_VERSION.into()),
            data: Some(signed),
            hash: Some(hex::encode_upper(previous)),
            session_key: sealed.as_ref().map(|e| e.session_key.clone()),
            thumbprint: sealed.map(|e| e.thumbprint),
            error: ErrorInfo::success(),
        });
    }
    tracing::debug!(device = %dev.device_id, segments = biometrics.len(), auth, "simulated capture answered");
    to_json(&CaptureResponse { biometrics })
}

const BOUNDARY: &str = "tesseraframe";

fn stream(dev: &Arc<DeviceState>, body: &[u8]) -> Response<Body> {
    let req: StreamRequest = match parse("STREAM request", body) {
        Ok(r) => r,
        Err(e) => return error_only(SbiErrorCode::Vendor(500), Some(e.to_string())),
    };
    if req.device_id != dev.device_id {
        return error_only(SbiErrorCode::DeviceNotFound, None);
    }
    let control = dev.control();
    match (control.failure, effective_status(dev)) {
        (FailureMode::Busy, _) | (_, DeviceStatus::Busy) => return error_only(SbiErrorCode::Busy, None),
        (_, DeviceStatus::NotReady) => return error_only(SbiErrorCode::NotReady, None),
        (_, DeviceStatus::NotRegistered) => return error_only(SbiErrorCode::NotRegistered, None),
        _ => {}
    }
    let timeout_ms = req.timeout.map(NumStr::get).unwrap_or(300_000);
    let segment = match dev.kind.bio_type() {
        BioType::Face => None,
        bt => BioSubType::segments_of(bt, req.device_sub_id)
            .first()
            .copied()
            .or(Some(BioSubType::Unknown)),
    };
    let dev = dev.clone();
    let person = control.person_id;
    let frames = futures_util::stream::unfold((0u32, tokio::time::Instant::now()), move |(n, started)| {
        let dev = dev.clone();
        async move {
            if started.elapsed() >= Duration::from_millis(u64::from(timeout_ms)) {
                return None;
            }
            if n > 0 {
                // 5 frames a second (the spec asks for at least 3).
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let frame = tokio::task::spawn_blocking(move || {
                let img = image_for(&dev, person, segment, n).map_err(|e| e.to_string())?;
                let mut jpeg = Vec::new();
                image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 70)
                    .encode_image(&img.preview)
                    .map_err(|e| e.to_string())?;
                Ok::<Vec<u8>, String>(jpeg)
            })
            .await;
            let jpeg = match frame {
                Ok(Ok(j)) => j,
                _ => return None,
            };
            let mut part = format!(
                "--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
                jpeg.len()
            )
            .into_bytes();
            part.extend_from_slice(&jpeg);
            part.extend_from_slice(b"\r\n");
            Some((
                Ok::<Bytes, std::io::Error>(Bytes::from(part)),
                (n.saturating_add(1), started),
            ))
        }
    });
    let mut r = Response::new(Body::from_stream(frames));
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("multipart/x-mixed-replace; boundary={BOUNDARY}")) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
