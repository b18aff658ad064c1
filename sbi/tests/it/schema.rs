//! Wire conformance: what the simulator answers and what the client sends, validated against the
//! SBI 0.9.5 JSON schemas in `tests/fixtures/schemas` (written from the spec and the CTK schemas).

use std::time::Duration;

use serde_json::Value;
use tessera_sbi::client::capture_spec_for;
use tessera_sbi::jws::decode_unverified;
use tessera_sbi::protocol::{
    DeviceSubId, DiscoverRequest, DiscoverType, HashChain, StreamRequest, TransactionId, b64url_decode,
};
use tessera_sbi::sim::DeviceKind;

use crate::support::harness;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/schemas");

/// Loads a schema with the shared `defs.json` definitions inlined (no remote resolution).
fn validator(name: &str) -> jsonschema::Validator {
    let defs: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{DIR}/defs.json")).unwrap()).unwrap();
    let text = std::fs::read_to_string(format!("{DIR}/{name}"))
        .unwrap()
        .replace("defs.json#/$defs/", "#/$defs/");
    let mut schema: Value = serde_json::from_str(&text).unwrap();
    schema["$defs"] = defs["$defs"].clone();
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft201909)
        .build(&schema)
        .unwrap()
}

fn assert_valid(name: &str, instance: &Value) {
    let v = validator(name);
    let errors: Vec<String> = v
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{name}: {errors:#?}\n{instance:#}");
}

fn assert_invalid(name: &str, instance: &Value) {
    assert!(
        !validator(name).is_valid(instance),
        "{name} accepted {instance:#}"
    );
}

async fn raw(port: u16, verb: &str, path: &str, body: Option<Value>) -> Value {
    let c = reqwest::Client::new();
    let mut rb = c.request(
        reqwest::Method::from_bytes(verb.as_bytes()).unwrap(),
        format!("http://127.0.0.1:{port}{path}"),
    );
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let resp = rb.send().await.unwrap();
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert_eq!(resp.headers()["cache-control"], "no-store");
    resp.json().await.unwrap()
}

fn decode_jws(token: &str) -> Value {
    serde_json::from_slice(&decode_unverified("t", token).unwrap().payload).unwrap()
}

/// Puts the decoded payload of each capture's `data` JWS (and its `digitalId` JWS) beside it, so the schema
/// can check what is inside the signatures.
fn decode_biometrics(resp: &mut Value) {
    for e in resp["biometrics"].as_array_mut().unwrap() {
        let mut data = decode_jws(e["data"].as_str().unwrap());
        let did = decode_jws(data["digitalId"].as_str().unwrap());
        data["digitalIdDecoded"] = did;
        e["dataDecoded"] = data;
    }
}

fn decode_plain(b64: &str) -> Value {
    serde_json::from_slice(&b64url_decode("t", b64).unwrap()).unwrap()
}

#[tokio::test]
async fn discovery_and_device_info_match_the_schemas() {
    let h = harness().await;
    for kind in DeviceKind::DEFAULT_SET {
        let port = h.device(kind);
        let mut disc = raw(
            port,
            "MOSIPDISC",
            "/device",
            Some(serde_json::json!({"type": "Biometric Device"})),
        )
        .await;
        for e in disc.as_array_mut().unwrap() {
            let d = decode_plain(e["digitalId"].as_str().unwrap());
            e["digitalIdDecoded"] = d;
        }
        assert_valid("discover_response.json", &disc);

        let mut info = raw(port, "MOSIPDINFO", "/info", None).await;
        for e in info.as_array_mut().unwrap() {
            let mut decoded = decode_jws(e["deviceInfo"].as_str().unwrap());
            let did = decode_jws(decoded["digitalId"].as_str().unwrap());
            decoded["digitalIdDecoded"] = did;
            e["deviceInfoDecoded"] = decoded;
        }
        assert_valid("device_info_response.json", &info);
    }
    // Filtering by type: a face camera does not answer a Finger discovery.
    let none = raw(
        h.device(DeviceKind::Face),
        "MOSIPDISC",
        "/device",
        Some(serde_json::json!({"type": "Finger"})),
    )
    .await;
    assert_eq!(none, serde_json::json!([]));
}

#[tokio::test]
async fn not_registered_device_info_matches_its_schema() {
    let h = harness().await;
    h.sim.control(DeviceKind::FingerSlap, |c| {
        c.device_status = tessera_sbi::protocol::DeviceStatus::NotRegistered
    });
    let mut info = raw(h.device(DeviceKind::FingerSlap), "MOSIPDINFO", "/info", None).await;
    for e in info.as_array_mut().unwrap() {
        let mut decoded = decode_plain(e["deviceInfo"].as_str().unwrap());
        let did = decode_plain(decoded["digitalId"].as_str().unwrap());
        decoded["digitalIdDecoded"] = did;
        e["deviceInfoDecoded"] = decoded;
    }
    assert_valid("device_info_not_registered.json", &info);
    assert_invalid("device_info_response.json", &info);
}

#[tokio::test]
async fn client_requests_match_the_schemas() {
    let h = harness().await;
    assert_valid(
        "discover_request.json",
        &serde_json::to_value(DiscoverRequest {
            device_type: DiscoverType::BiometricDevice,
        })
        .unwrap(),
    );
    for (kind, sub) in [
        (DeviceKind::FingerSlap, DeviceSubId::Left),
        (DeviceKind::FingerSlap, DeviceSubId::Right),
        (DeviceKind::FingerSlap, DeviceSubId::Both),
        (DeviceKind::IrisDouble, DeviceSubId::Both),
        (DeviceKind::Face, DeviceSubId::Unknown),
    ] {
        let dev = h.found(kind).await;
        let spec = capture_spec_for(
            &dev,
            sub,
            TransactionId::parse("txn-0001").unwrap(),
            vec![],
            40,
            Duration::from_secs(10),
        );
        let req = h.client.rcapture_request(&spec, &HashChain::new());
        let v = serde_json::to_value(&req).unwrap();
        assert_valid("rcapture_request.json", &v);
        // Numbers travel as strings.
        assert!(
            v["timeout"].is_string()
                && v["bio"][0]["count"].is_string()
                && v["bio"][0]["requestedScore"].is_string()
        );
    }
    let s = serde_json::to_value(StreamRequest {
        device_id: "1".into(),
        device_sub_id: DeviceSubId::Left,
        timeout: Some(5000.into()),
    })
    .unwrap();
    assert_valid("stream_request.json", &s);
    // The schema is not vacuous: a numeric count is refused.
    let mut bad = serde_json::to_value(h.client.rcapture_request(
        &capture_spec_for(
            &h.found(DeviceKind::FingerSlap).await,
            DeviceSubId::Left,
            TransactionId::parse("txn-0001").unwrap(),
            vec![],
            40,
            Duration::from_secs(1),
        ),
        &HashChain::new(),
    ))
    .unwrap();
    bad["bio"][0]["count"] = serde_json::json!(4);
    assert_invalid("rcapture_request.json", &bad);
}

#[tokio::test]
async fn rcapture_responses_match_the_schema_for_every_modality() {
    let h = harness().await;
    for (kind, sub, count) in [
        (DeviceKind::FingerSlap, "1", "4"),
        (DeviceKind::FingerSlap, "3", "2"),
        (DeviceKind::FingerSingle, "0", "1"),
        (DeviceKind::IrisDouble, "3", "2"),
        (DeviceKind::Face, "0", "1"),
    ] {
        let port = h.device(kind);
        let bio_type = match kind {
            DeviceKind::FingerSlap | DeviceKind::FingerSingle => "Finger",
            DeviceKind::IrisDouble => "Iris",
            DeviceKind::Face => "Face",
        };
        let req = serde_json::json!({
            "env": "Developer", "purpose": "Registration", "specVersion": "0.9.5", "timeout": "10000",
            "captureTime": "2026-11-29T09:00:00Z", "transactionId": "conformance-1",
            "bio": [{"type": bio_type, "count": count, "bioSubType": [], "exception": [], "requestedScore": "40",
                     "deviceId": "IGNORED", "deviceSubId": sub, "previousHash": ""}]
        });
        assert_valid("rcapture_request.json", &req);
        let mut req = req;
        let device_id = h.found(kind).await.entry.device_id;
        req["bio"][0]["deviceId"] = Value::String(device_id);
        let mut resp = raw(port, "RCAPTURE", "/capture", Some(req)).await;
        decode_biometrics(&mut resp);
        assert_eq!(
            resp["biometrics"].as_array().unwrap().len(),
            count.parse::<usize>().unwrap(),
            "{kind:?}"
        );
        assert_valid("rcapture_response.json", &resp);
    }
}

#[tokio::test]
async fn capture_errors_match_the_error_schema() {
    let h = harness().await;
    let port = h.device(DeviceKind::FingerSlap);
    let req = serde_json::json!({
        "env": "Developer", "purpose": "Registration", "specVersion": "0.9.5", "timeout": "10000",
        "captureTime": "2026-11-29T09:00:00Z", "transactionId": "bad_txn!",
        "bio": [{"type": "Finger", "count": "4", "bioSubType": [], "requestedScore": "40",
                 "deviceId": "1", "deviceSubId": "1", "previousHash": ""}]
    });
    assert_invalid("rcapture_request.json", &req);
    let resp = raw(port, "RCAPTURE", "/capture", Some(req)).await;
    assert_valid("capture_error_response.json", &resp);
    assert_eq!(resp["biometrics"][0]["error"]["errorCode"], "112");
    assert_invalid("rcapture_response.json", &resp);
}

#[tokio::test]
async fn auth_capture_requests_and_responses_match_the_schemas() {
    use tessera_sbi::client::AuthCaptureOptions;
    let h = harness().await;
    let opts = AuthCaptureOptions {
        domain_uri: Some("https://ida.example.invalid".into()),
        thumbprint: tessera_sbi::session::thumbprint(&h.ida_cert),
        decryptor: None,
    };
    for (kind, subs, count) in [
        (
            DeviceKind::FingerSlap,
            vec!["Right IndexFinger", "Left Thumb"],
            "2",
        ),
        (DeviceKind::FingerSingle, vec!["Right IndexFinger"], "1"),
        (DeviceKind::IrisDouble, vec!["Left", "Right"], "2"),
        (DeviceKind::Face, vec![], "1"),
    ] {
        let dev = h.found(kind).await;
        // What the client sends.
        let mut spec = capture_spec_for(
            &dev,
            DeviceSubId::Unknown,
            TransactionId::parse("auth-0001").unwrap(),
            vec![],
            40,
            Duration::from_secs(10),
        );
        spec.bio_sub_type = subs
            .iter()
            .map(|s| serde_json::from_value(Value::String((*s).into())).unwrap())
            .collect();
        spec.count = count.parse().unwrap();
        let req = serde_json::to_value(h.client.capture_request(&spec, &HashChain::new(), &opts)).unwrap();
        assert_valid("auth_capture_request.json", &req);
        // What the simulator answers.
        let mut resp = raw(dev.port, "CAPTURE", "/capture", Some(req)).await;
        decode_biometrics(&mut resp);
        assert_eq!(
            resp["biometrics"].as_array().unwrap().len(),
            count.parse::<usize>().unwrap(),
            "{kind:?}: {resp:#}"
        );
        assert_valid("auth_capture_response.json", &resp);
        // Registration and auth answers are told apart.
        assert_invalid("rcapture_response.json", &resp);
    }
    // A registration request is not an auth request.
    let dev = h.found(DeviceKind::Face).await;
    let spec = capture_spec_for(
        &dev,
        DeviceSubId::Unknown,
        TransactionId::parse("auth-0002").unwrap(),
        vec![],
        40,
        Duration::from_secs(10),
    );
    let reg = serde_json::to_value(h.client.rcapture_request(&spec, &HashChain::new())).unwrap();
    assert_invalid("auth_capture_request.json", &reg);
}
