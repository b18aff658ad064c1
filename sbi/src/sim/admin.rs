//! The simulator's control API (modelled on MOSIP's mock device service `/admin/*`).

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{Response, StatusCode};
use serde::{Deserialize, Serialize};

use super::handlers::json_response;
use super::{DeviceState, FailureMode, SimControl};
use crate::protocol::{BioSubType, DeviceStatus};

/// A number that MockMDS-style clients send either as a JSON number or as a string.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum LooseNumber {
    Number(u64),
    Text(String),
}

impl LooseNumber {
    fn value(&self) -> Option<u64> {
        match self {
            LooseNumber::Number(n) => Some(*n),
            LooseNumber::Text(s) => s.trim().parse().ok(),
        }
    }
}

fn ok(dev: &DeviceState) -> Response<Body> {
    status_json(dev)
}

fn bad(msg: String) -> Response<Body> {
    let body = serde_json::json!({ "errorCode": "400", "errorInfo": msg });
    json_response(StatusCode::BAD_REQUEST, body.to_string().into_bytes())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusView<'a> {
    device_id: &'a str,
    kind: super::DeviceKind,
    port: u16,
    serial_no: &'a str,
    #[serde(flatten)]
    control: SimControl,
}

fn status_json(dev: &DeviceState) -> Response<Body> {
    let view = StatusView {
        device_id: &dev.device_id,
        kind: dev.kind,
        port: dev.port,
        serial_no: &dev.serial_no,
        control: dev.control(),
    };
    match serde_json::to_vec(&view) {
        Ok(b) => json_response(StatusCode::OK, b),
        Err(e) => bad(e.to_string()),
    }
}

pub(crate) async fn get_status(State(dev): State<Arc<DeviceState>>) -> Response<Body> {
    status_json(&dev)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SetStatus {
    #[serde(rename = "type", default)]
    _type: Option<String>,
    device_status: DeviceStatus,
}

pub(crate) async fn set_status(
    State(dev): State<Arc<DeviceState>>,
    Json(body): Json<SetStatus>,
) -> Response<Body> {
    dev.update(|c| c.device_status = body.device_status);
    ok(&dev)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SetScore {
    #[serde(rename = "type", default)]
    _type: Option<String>,
    quality_score: Option<LooseNumber>,
    #[serde(default)]
    _from_iso: Option<bool>,
}

pub(crate) async fn set_score(
    State(dev): State<Arc<DeviceState>>,
    Json(body): Json<SetScore>,
) -> Response<Body> {
    let score = match &body.quality_score {
        None => None,
        Some(n) => match n.value() {
            Some(v) if v <= 100 => u8::try_from(v).ok(),
            _ => return bad("qualityScore must be 0 to 100, or null for the image's own".into()),
        },
    };
    dev.update(|c| c.quality_score = score);
    ok(&dev)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SetDelay {
    #[serde(rename = "type", default)]
    _type: Option<String>,
    delay: LooseNumber,
    #[serde(default)]
    _method: Option<Vec<String>>,
}

pub(crate) async fn set_delay(
    State(dev): State<Arc<DeviceState>>,
    Json(body): Json<SetDelay>,
) -> Response<Body> {
    let Some(ms) = body.delay.value().filter(|v| *v <= 600_000) else {
        return bad("delay must be 0 to 600000 milliseconds".into());
    };
    dev.update(|c| c.delay_ms = ms);
    ok(&dev)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SetProfile {
    #[serde(rename = "type", default)]
    _type: Option<String>,
    profile_id: String,
}

/// `profileId` "Default" is person 1; a number (optionally prefixed "person-") selects that person.
pub(crate) async fn set_profile(
    State(dev): State<Arc<DeviceState>>,
    Json(body): Json<SetProfile>,
) -> Response<Body> {
    let id = body.profile_id.trim();
    let person = if id.eq_ignore_ascii_case("default") {
        Some(1)
    } else {
        id.trim_start_matches("person-").parse::<u64>().ok()
    };
    let Some(person) = person else {
        return bad(format!(
            "profileId {id:?} is not \"Default\" or a synthetic person number"
        ));
    };
    dev.update(|c| c.person_id = person);
    ok(&dev)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SetPerson {
    person_id: u64,
}

pub(crate) async fn set_person(
    State(dev): State<Arc<DeviceState>>,
    Json(body): Json<SetPerson>,
) -> Response<Body> {
    dev.update(|c| c.person_id = body.person_id);
    ok(&dev)
}

#[derive(Deserialize)]
pub(crate) struct SetMissing {
    missing: BTreeSet<BioSubType>,
}

pub(crate) async fn set_missing(
    State(dev): State<Arc<DeviceState>>,
    Json(body): Json<SetMissing>,
) -> Response<Body> {
    dev.update(|c| c.missing = body.missing);
    ok(&dev)
}

#[derive(Deserialize)]
pub(crate) struct SetFailure {
    mode: FailureMode,
}

pub(crate) async fn set_failure(
    State(dev): State<Arc<DeviceState>>,
    Json(body): Json<SetFailure>,
) -> Response<Body> {
    dev.update(|c| c.failure = body.mode);
    ok(&dev)
}
