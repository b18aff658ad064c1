//! Client <-> simulator over real HTTP on free ports.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera_packet::clock::{FixedClock, SystemClock};
use tessera_sbi::client::{
    CaptureSpec, ClientConfig, ClientError, FoundDevice, SbiClient, capture_spec_for, validate,
};
use tessera_sbi::jws::{Alg, JwsError, TrustStore};
use tessera_sbi::protocol::{
    BioSubType, CaptureResponse, DeviceStatus, DeviceSubId, HashChain, SbiErrorCode, TransactionId, parse,
};
use tessera_sbi::sim::{self, DeviceKind, FailureMode, SimConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{TestdataImages, harness, harness_with};

fn txn() -> TransactionId {
    TransactionId::random().unwrap()
}

/// An RCAPTURE spec for `dev` with a fresh transaction, no exceptions and a 10 s timeout.
fn spec_for(dev: &FoundDevice, sub: DeviceSubId, quality: u8) -> CaptureSpec {
    capture_spec_for(dev, sub, txn(), vec![], quality, Duration::from_secs(10))
}

/// Sets the simulator's state through its admin API (`POST /admin/<path>` on the device's port).
async fn admin(dev: &FoundDevice, path: &str, body: serde_json::Value) {
    let resp = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{}/admin/{path}", dev.port))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "admin/{path}: {}", resp.status());
}

#[tokio::test]
async fn discovers_info_and_captures_every_device() {
    let h = harness().await;
    for kind in DeviceKind::DEFAULT_SET {
        let dev = h.found(kind).await;
        assert_eq!(dev.entry.device_status, DeviceStatus::Ready);
        assert_eq!(dev.entry.callback_id, format!("http://127.0.0.1:{}/", dev.port));
        let info = h.client.device_info(dev.port).await.unwrap();
        assert_eq!(info.len(), 1);
        assert_eq!(info[0].digital_id.serial_no, dev.entry.device_code);
        assert_eq!(info[0].digital_id.bio_type, kind.bio_type());
    }
    let t = txn();
    let mut chain = HashChain::new();
    let mut captured = 0;
    for (kind, sub) in [
        (DeviceKind::FingerSlap, DeviceSubId::Left),
        (DeviceKind::FingerSlap, DeviceSubId::Right),
        (DeviceKind::FingerSlap, DeviceSubId::Both),
        (DeviceKind::IrisDouble, DeviceSubId::Both),
        (DeviceKind::Face, DeviceSubId::Unknown),
    ] {
        let dev = h.found(kind).await;
        let spec = capture_spec_for(&dev, sub, t.clone(), vec![], 40, Duration::from_secs(10));
        let cap = h.client.rcapture(&dev, &spec, &chain).await.unwrap();
        assert_eq!(cap.segments.len(), spec.expected_segments().len().max(1));
        // The chain continues across modalities: recompute it independently.
        let mut check = chain.clone();
        for s in &cap.segments {
            assert_eq!(check.push(&s.iso), s.hash);
            assert!(s.quality >= 40);
        }
        assert_eq!(check, cap.chain_after);
        chain = cap.chain_after;
        captured += cap.segments.len();
    }
    assert_eq!(captured, 4 + 4 + 2 + 2 + 1);
}

#[tokio::test]
async fn rs256_devices_work_end_to_end() {
    let h = harness_with(Alg::Rs256, Arc::new(SystemClock)).await;
    let dev = h.found(DeviceKind::FingerSlap).await;
    h.client.device_info(dev.port).await.unwrap();
    let spec = spec_for(&dev, DeviceSubId::Left, 40);
    let cap = h.client.rcapture(&dev, &spec, &HashChain::new()).await.unwrap();
    assert_eq!(cap.segments.len(), 4);
    assert!(
        cap.segments[0].data_jws.starts_with("eyJhbGciOiJSUzI1NiIs"),
        "RS256 header"
    );
}

#[tokio::test]
async fn same_person_gives_same_images_and_person_switch_changes_them() {
    let h = harness().await;
    let dev = h.found(DeviceKind::FingerSlap).await;
    let spec = spec_for(&dev, DeviceSubId::Right, 1);
    let a = h.client.rcapture(&dev, &spec, &HashChain::new()).await.unwrap();
    let b = h.client.rcapture(&dev, &spec, &HashChain::new()).await.unwrap();
    assert_eq!(a.segments[0].iso, b.segments[0].iso);
    admin(&dev, "person", serde_json::json!({"personId": 8})).await;
    let c = h.client.rcapture(&dev, &spec, &HashChain::new()).await.unwrap();
    assert_ne!(a.segments[0].iso, c.segments[0].iso);
}

#[tokio::test]
async fn missing_finger_is_a_typed_explained_error_and_exceptions_are_honoured() {
    let h = harness().await;
    let dev = h.found(DeviceKind::FingerSlap).await;
    admin(
        &dev,
        "missing",
        serde_json::json!({"missing": ["Right IndexFinger"]}),
    )
    .await;
    let spec = spec_for(&dev, DeviceSubId::Right, 40);
    let err = h
        .client
        .rcapture(&dev, &spec, &HashChain::new())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::MissingSegments { missing, .. } if missing == &vec![BioSubType::RightIndex]),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "Right index finger missing from the slap: capture again or mark an exception"
    );
    // Declared as an exception: three fingers is a complete capture.
    let spec = capture_spec_for(
        &dev,
        DeviceSubId::Right,
        txn(),
        vec![BioSubType::RightIndex],
        40,
        Duration::from_secs(10),
    );
    let cap = h.client.rcapture(&dev, &spec, &HashChain::new()).await.unwrap();
    let got: Vec<_> = cap.segments.iter().map(|s| s.bio_sub_type.unwrap()).collect();
    assert_eq!(
        got,
        vec![
            BioSubType::RightMiddle,
            BioSubType::RightRing,
            BioSubType::RightLittle
        ]
    );
}

#[tokio::test]
async fn busy_device_and_concurrent_capture() {
    let h = harness().await;
    let dev = h.found(DeviceKind::FingerSlap).await;
    h.sim
        .control(DeviceKind::FingerSlap, |c| c.failure = FailureMode::Busy);
    let spec = spec_for(&dev, DeviceSubId::Left, 40);
    let err = h
        .client
        .rcapture(&dev, &spec, &HashChain::new())
        .await
        .unwrap_err();
    assert_eq!(err.sbi_code(), Some(SbiErrorCode::Busy), "{err}");
    assert!(err.to_string().contains("wait for the current capture"), "{err}");
    assert_eq!(
        h.found(DeviceKind::FingerSlap).await.entry.device_status,
        DeviceStatus::Busy
    );
    // Two captures at once: one waits on a 400 ms delay, the other is told the device is busy.
    h.sim.control(DeviceKind::FingerSlap, |c| {
        c.failure = FailureMode::None;
        c.delay_ms = 400;
    });
    let start = HashChain::new();
    let (a, b) = tokio::join!(h.client.rcapture(&dev, &spec, &start), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        h.client.rcapture(&dev, &spec, &start).await
    });
    assert!(a.is_ok(), "{:?}", a.err());
    assert_eq!(b.unwrap_err().sbi_code(), Some(SbiErrorCode::Busy));
}

#[tokio::test]
async fn not_ready_and_not_registered_are_reported() {
    let h = harness().await;
    let dev = h.found(DeviceKind::Face).await;
    let spec = spec_for(&dev, DeviceSubId::Unknown, 9);
    admin(
        &dev,
        "status",
        serde_json::json!({"type": "Face", "deviceStatus": "Not Ready"}),
    )
    .await;
    let err = h
        .client
        .rcapture(&dev, &spec, &HashChain::new())
        .await
        .unwrap_err();
    assert_eq!(err.sbi_code(), Some(SbiErrorCode::NotReady), "{err}");
    h.sim.control(DeviceKind::Face, |c| {
        c.device_status = DeviceStatus::NotRegistered
    });
    let err = h.client.device_info(dev.port).await.unwrap_err();
    assert_eq!(err.sbi_code(), Some(SbiErrorCode::NotRegistered), "{err}");
}

#[tokio::test]
async fn capture_timeout_is_typed() {
    let clock: Arc<dyn tessera_packet::clock::Clock> = Arc::new(SystemClock);
    let h = harness_with(Alg::EdDsa, clock.clone()).await;
    let cfg = ClientConfig {
        capture_grace: Duration::from_millis(200),
        ..ClientConfig::default()
    };
    let client = SbiClient::new(cfg, h.trust.clone(), clock).unwrap();
    let dev = h.found(DeviceKind::FingerSingle).await;
    h.sim
        .control(DeviceKind::FingerSingle, |c| c.failure = FailureMode::Timeout);
    let spec = capture_spec_for(
        &dev,
        DeviceSubId::Unknown,
        txn(),
        vec![],
        40,
        Duration::from_millis(300),
    );
    let started = Instant::now();
    let err = client.rcapture(&dev, &spec, &HashChain::new()).await.unwrap_err();
    assert!(
        matches!(err, ClientError::Timeout { verb: "RCAPTURE", .. }),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn bad_signature_untrusted_and_expired_are_rejected() {
    let h = harness().await;
    let dev = h.found(DeviceKind::FingerSlap).await;
    let spec = spec_for(&dev, DeviceSubId::Both, 40);
    h.sim
        .control(DeviceKind::FingerSlap, |c| c.failure = FailureMode::BadSignature);
    let err = h
        .client
        .rcapture(&dev, &spec, &HashChain::new())
        .await
        .unwrap_err();
    assert!(
        matches!(err.jws_error(), Some(JwsError::BadSignature { .. })),
        "{err}"
    );
    h.sim
        .control(DeviceKind::FingerSlap, |c| c.failure = FailureMode::None);

    let stranger = SbiClient::new(
        ClientConfig::default(),
        Arc::new(TrustStore::new()),
        Arc::new(SystemClock),
    )
    .unwrap();
    let err = stranger
        .rcapture(&dev, &spec, &HashChain::new())
        .await
        .unwrap_err();
    assert!(
        matches!(err.jws_error(), Some(JwsError::UntrustedChain { .. })),
        "{err}"
    );
    let err = stranger.device_info(dev.port).await.unwrap_err();
    assert!(
        matches!(err.jws_error(), Some(JwsError::UntrustedChain { .. })),
        "{err}"
    );

    // Device certificates are valid 30 days; a station clock 31 days ahead must refuse them.
    let later = Arc::new(FixedClock::new(chrono::Utc::now() + chrono::Duration::days(31)));
    let future = SbiClient::new(ClientConfig::default(), h.trust.clone(), later).unwrap();
    let err = future.rcapture(&dev, &spec, &HashChain::new()).await.unwrap_err();
    assert!(
        matches!(err.jws_error(), Some(JwsError::CertificateExpired { .. })),
        "{err}"
    );
}

#[tokio::test]
async fn quality_below_threshold_returns_the_capture_for_force_capture() {
    let h = harness().await;
    let dev = h.found(DeviceKind::FingerSlap).await;
    admin(
        &dev,
        "score",
        serde_json::json!({"type": "Finger", "qualityScore": "35", "fromIso": false}),
    )
    .await;
    let spec = spec_for(&dev, DeviceSubId::Left, 40);
    let err = h
        .client
        .rcapture(&dev, &spec, &HashChain::new())
        .await
        .unwrap_err();
    let ClientError::QualityBelowThreshold {
        low,
        average,
        required,
        capture,
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!((*average, *required, low.len()), (35, 40, 4));
    assert_eq!(capture.segments.len(), 4);
    assert!(err.to_string().contains("average 35, required 40"), "{err}");
    // The forced score wins over the measured one only until it is cleared with null.
    admin(
        &dev,
        "score",
        serde_json::json!({"type": "Finger", "qualityScore": null}),
    )
    .await;
    let spec = spec_for(&dev, DeviceSubId::Left, 1);
    let cap = h.client.rcapture(&dev, &spec, &HashChain::new()).await.unwrap();
    for s in &cap.segments {
        let recs = tessera_biometrics::iso19794_4::decode(&s.iso).unwrap();
        assert_eq!(
            s.quality,
            u32::from(recs[0].quality),
            "the image source's own score again"
        );
    }
}

#[tokio::test]
async fn auth_capture_is_encrypted_to_the_ida_certificate_and_verified() {
    use tessera_sbi::client::AuthCaptureOptions;
    use tessera_sbi::session::{SessionKeyDecryptor, thumbprint};
    let h = harness().await;
    let dev = h.found(DeviceKind::FingerSlap).await;
    let mut spec = spec_for(&dev, DeviceSubId::Unknown, 1);
    spec.bio_sub_type = vec![BioSubType::RightIndex, BioSubType::LeftThumb];
    spec.count = 2;
    let decryptor = Arc::new(SessionKeyDecryptor::from_pkcs8_der(&h.ida_key, &h.ida_cert).unwrap());
    let opts = AuthCaptureOptions {
        domain_uri: Some("https://ida.example.invalid".into()),
        thumbprint: thumbprint(&h.ida_cert),
        decryptor: Some(decryptor),
    };
    let cap = h
        .client
        .capture_auth(&dev, &spec, &HashChain::new(), &opts)
        .await
        .unwrap();
    assert_eq!(cap.segments.len(), 2);
    for s in &cap.segments {
        let enc = s.encrypted.as_ref().unwrap();
        assert_ne!(
            enc.bio_value,
            tessera_sbi::protocol::b64url_encode(&s.iso),
            "bioValue is encrypted"
        );
        assert_eq!(tessera_biometrics::iso19794_4::decode(&s.iso).unwrap().len(), 1);
        assert_eq!(s.data.purpose, tessera_sbi::protocol::Purpose::Auth);
        assert_eq!(s.data.domain_uri.as_deref(), Some("https://ida.example.invalid"));
    }
    // A station without the IDA key still checks signatures, chain, segments and the thumbprint.
    let station = AuthCaptureOptions {
        decryptor: None,
        ..opts.clone()
    };
    let cap = h
        .client
        .capture_auth(&dev, &spec, &HashChain::new(), &station)
        .await
        .unwrap();
    assert!(
        cap.segments
            .iter()
            .all(|s| s.iso.is_empty() && s.encrypted.is_some())
    );
    // Encrypted for another certificate: refused.
    let other = AuthCaptureOptions {
        thumbprint: "AB".repeat(32),
        decryptor: None,
        domain_uri: None,
    };
    let err = h
        .client
        .capture_auth(&dev, &spec, &HashChain::new(), &other)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Encryption { .. }), "{err}");
    // An auth answer is not a registration capture.
    let resp = reqwest::Client::new()
        .request(
            reqwest::Method::from_bytes(b"CAPTURE").unwrap(),
            format!("http://127.0.0.1:{}/capture", dev.port),
        )
        .json(&h.client.capture_request(&spec, &HashChain::new(), &opts))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let resp: CaptureResponse = parse("CAPTURE response", &resp).unwrap();
    let err = validate::validate_capture(&resp, &spec, &dev, &HashChain::new(), &h.trust, &SystemClock)
        .unwrap_err();
    assert!(matches!(err, ClientError::DeviceMismatch { .. }), "{err}");
    // Missing fingers are still caught.
    h.sim.control(DeviceKind::FingerSlap, |c| {
        c.missing = [BioSubType::LeftThumb].into_iter().collect()
    });
    let err = h
        .client
        .capture_auth(&dev, &spec, &HashChain::new(), &opts)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::MissingSegments { .. }), "{err}");
}

#[tokio::test]
async fn auth_capture_without_a_domain_key_is_error_108() {
    use tessera_sbi::client::AuthCaptureOptions;
    let mut cfg = SimConfig::from_port(0);
    cfg.alg = Alg::EdDsa;
    cfg.devices = vec![(DeviceKind::Face, 0)];
    let sim = sim::start(cfg, Arc::new(SystemClock), Arc::new(TestdataImages::load()))
        .await
        .unwrap();
    let mut trust = TrustStore::new();
    trust.add_pem(sim.ca_pem()).unwrap();
    let client = SbiClient::new(ClientConfig::default(), Arc::new(trust), Arc::new(SystemClock)).unwrap();
    let dev = client
        .discover_port(
            sim.port_of(DeviceKind::Face).unwrap(),
            tessera_sbi::protocol::DiscoverType::Face,
        )
        .await
        .unwrap()
        .remove(0);
    let spec = capture_spec_for(
        &dev,
        DeviceSubId::Unknown,
        txn(),
        vec![],
        1,
        Duration::from_secs(5),
    );
    let err = client
        .capture_auth(
            &dev,
            &spec,
            &HashChain::new(),
            &AuthCaptureOptions {
                domain_uri: None,
                thumbprint: "00".repeat(32),
                decryptor: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.sbi_code(), Some(SbiErrorCode::DomainKeyMissing), "{err}");
}

#[tokio::test]
async fn broken_hash_chain_and_foreign_transaction_are_rejected() {
    let h = harness().await;
    let dev = h.found(DeviceKind::IrisDouble).await;
    let t = txn();
    let spec = capture_spec_for(
        &dev,
        DeviceSubId::Both,
        t.clone(),
        vec![],
        40,
        Duration::from_secs(10),
    );
    let body = serde_json::to_vec(&h.client.rcapture_request(&spec, &HashChain::new())).unwrap();
    let bytes = reqwest::Client::new()
        .request(
            reqwest::Method::from_bytes(b"RCAPTURE").unwrap(),
            format!("http://127.0.0.1:{}/capture", dev.port),
        )
        .body(body)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let good: CaptureResponse = parse("RCAPTURE response", &bytes).unwrap();
    let clock = SystemClock;
    validate::validate_capture(&good, &spec, &dev, &HashChain::new(), &h.trust, &clock).unwrap();
    // Tampered hash.
    let mut bad = good.clone();
    bad.biometrics[1].hash = Some("00".repeat(32));
    let err = validate::validate_capture(&bad, &spec, &dev, &HashChain::new(), &h.trust, &clock).unwrap_err();
    assert!(matches!(err, ClientError::HashMismatch { .. }), "{err}");
    // Right hashes, wrong starting point (a capture of another transaction spliced in).
    let mut other = HashChain::new();
    other.push(b"another capture");
    let err = validate::validate_capture(&good, &spec, &dev, &other, &h.trust, &clock).unwrap_err();
    assert!(matches!(err, ClientError::HashMismatch { .. }), "{err}");
    // Reordered segments break the chain too.
    let mut swapped = good.clone();
    swapped.biometrics.swap(0, 1);
    assert!(validate::validate_capture(&swapped, &spec, &dev, &HashChain::new(), &h.trust, &clock).is_err());
    // Duplicate segment.
    let mut dup = good.clone();
    dup.biometrics[1] = dup.biometrics[0].clone();
    assert!(matches!(
        validate::validate_capture(&dup, &spec, &dev, &HashChain::new(), &h.trust, &clock).unwrap_err(),
        ClientError::DuplicateSegment { .. } | ClientError::HashMismatch { .. }
    ));
    // Another transaction id.
    let mut spec2 = spec.clone();
    spec2.transaction_id = TransactionId::parse("someone-else").unwrap();
    assert!(matches!(
        validate::validate_capture(&good, &spec2, &dev, &HashChain::new(), &h.trust, &clock).unwrap_err(),
        ClientError::TransactionMismatch { .. }
    ));
    // A data block from another device (different device code than discovered).
    let mut other_dev = dev.clone();
    other_dev.entry.device_code = "SOMEONE-ELSE".into();
    assert!(matches!(
        validate::validate_capture(&good, &spec, &other_dev, &HashChain::new(), &h.trust, &clock)
            .unwrap_err(),
        ClientError::DeviceMismatch { .. }
    ));
    // Fewer segments than requested (certified clients shipped without this check).
    let mut short = good.clone();
    short.biometrics.truncate(1);
    assert!(matches!(
        validate::validate_capture(&short, &spec, &dev, &HashChain::new(), &h.trust, &clock).unwrap_err(),
        ClientError::MissingSegments { .. }
    ));
}

#[tokio::test]
async fn stream_yields_jpeg_frames() {
    let h = harness().await;
    let dev = h.found(DeviceKind::FingerSlap).await;
    let mut s = h
        .client
        .stream(&dev, DeviceSubId::Left, Duration::from_millis(1500))
        .await
        .unwrap();
    let started = Instant::now();
    for _ in 0..3 {
        let f = s.next_frame().await.unwrap().unwrap();
        assert_eq!(&f[..2], &[0xFF, 0xD8], "JPEG start of image");
        assert_eq!(&f[f.len() - 2..], &[0xFF, 0xD9], "JPEG end of image");
        let img = image::load_from_memory_with_format(&f, image::ImageFormat::Jpeg).unwrap();
        assert!(img.width() > 100 && img.height() > 100);
    }
    // At least 3 frames a second, as the spec asks.
    assert!(
        started.elapsed() < Duration::from_millis(1000),
        "{:?}",
        started.elapsed()
    );
    // The stream ends when its timeout is over.
    let mut n = 3;
    while s.next_frame().await.unwrap().is_some() {
        n += 1;
        assert!(n < 50);
    }
    h.sim.control(DeviceKind::Face, |c| c.failure = FailureMode::Busy);
    let face = h.found(DeviceKind::Face).await;
    let err = h
        .client
        .stream(&face, DeviceSubId::Unknown, Duration::from_secs(1))
        .await
        .unwrap_err();
    assert_eq!(err.sbi_code(), Some(SbiErrorCode::Busy), "{err}");
}

/// Binds `n` consecutive free ports in a high range and returns the first.
/// A block of `n` consecutive free ports. Blocks are drawn below Linux's ephemeral range (32768 and up), so
/// sockets the OS numbers itself never land in them, and never overlap a block handed to another test of this
/// process (tests run concurrently and bind their blocks after this returns).
async fn free_block(n: u16) -> u16 {
    static TAKEN: std::sync::Mutex<Vec<(u16, u16)>> = std::sync::Mutex::new(Vec::new());
    for _ in 0..200 {
        let mut seed = [0u8; 2];
        getrandom::fill(&mut seed).unwrap();
        let first = 20000 + u16::from_le_bytes(seed) % (32768 - 20000 - n);
        let mut taken = TAKEN.lock().unwrap();
        if taken.iter().any(|&(a, m)| first < a + m && a < first + n) {
            continue;
        }
        let mut held = Vec::new();
        for p in first..first + n {
            match std::net::TcpListener::bind(("127.0.0.1", p)) {
                Ok(l) => held.push(l),
                Err(_) => break,
            }
        }
        if held.len() == usize::from(n) {
            taken.push((first, n));
            return first;
        }
    }
    panic!("no free port block");
}

#[tokio::test]
async fn discovery_scans_a_range_fast_and_tolerates_unrelated_services() {
    let first = free_block(12).await;
    let mut cfg = SimConfig::from_port(first);
    cfg.alg = Alg::EdDsa;
    let sim = sim::start(cfg, Arc::new(SystemClock), Arc::new(TestdataImages::load()))
        .await
        .unwrap();
    // Unrelated services on the next ports: a web server answering 404, one that sends non-SBI JSON,
    // one that accepts and never answers, one that closes at once.
    let l404 = tokio::net::TcpListener::bind(("127.0.0.1", first + 4))
        .await
        .unwrap();
    let ljson = tokio::net::TcpListener::bind(("127.0.0.1", first + 5))
        .await
        .unwrap();
    let lhang = tokio::net::TcpListener::bind(("127.0.0.1", first + 6))
        .await
        .unwrap();
    let lclose = tokio::net::TcpListener::bind(("127.0.0.1", first + 7))
        .await
        .unwrap();
    tokio::spawn(serve_fixed(
        l404,
        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
    ));
    tokio::spawn(serve_fixed(
        ljson,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"hello\":\"x\"}",
    ));
    tokio::spawn(async move {
        let mut keep = Vec::new();
        while let Ok((s, _)) = lhang.accept().await {
            keep.push(s);
        }
    });
    tokio::spawn(async move {
        while let Ok((s, _)) = lclose.accept().await {
            drop(s);
        }
    });
    let mut trust = TrustStore::new();
    trust.add_pem(sim.ca_pem()).unwrap();
    let cfg = ClientConfig {
        first_port: first,
        last_port: first + 11,
        discover_timeout: Duration::from_millis(400),
        ..ClientConfig::default()
    };
    let client = SbiClient::new(cfg, Arc::new(trust), Arc::new(SystemClock)).unwrap();
    let started = Instant::now();
    let found = client.discover().await;
    let took = started.elapsed();
    let ports: Vec<u16> = found.devices.iter().map(|d| d.port).collect();
    assert_eq!(ports, vec![first, first + 1, first + 2, first + 3]);
    let ignored: Vec<u16> = found.ignored.iter().map(|(p, _)| *p).collect();
    assert_eq!(
        ignored,
        vec![first + 4, first + 5, first + 6, first + 7],
        "{:?}",
        found.ignored
    );
    assert!(took < Duration::from_millis(1500), "{took:?}");
}

async fn serve_fixed(l: tokio::net::TcpListener, reply: &'static str) {
    while let Ok((mut s, _)) = l.accept().await {
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let _ = s.write_all(reply.as_bytes()).await;
        });
    }
}

#[tokio::test]
async fn empty_range_scan_is_fast() {
    // 100 ports where nothing listens (checked first), scanned concurrently.
    let first = free_block(100).await;
    let cfg = ClientConfig {
        first_port: first,
        last_port: first + 99,
        ..ClientConfig::default()
    };
    let client = SbiClient::new(cfg, Arc::new(TrustStore::new()), Arc::new(SystemClock)).unwrap();
    let started = Instant::now();
    let found = client.discover().await;
    assert!(found.devices.is_empty() && found.ignored.is_empty());
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn port_closing_mid_response_and_bad_json_are_typed() {
    let h = harness().await;
    let real = h.found(DeviceKind::FingerSlap).await;
    // A fake service on another port that cuts the response short.
    let l = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(serve_fixed(
        l,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{\"biometrics\":[{\"specVersion\"",
    ));
    let mut dev = real.clone();
    dev.port = port;
    let spec = capture_spec_for(&dev, DeviceSubId::Left, txn(), vec![], 40, Duration::from_secs(2));
    let err = h
        .client
        .rcapture(&dev, &spec, &HashChain::new())
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Read { verb: "RCAPTURE", .. }), "{err}");
    // Bad JSON with a correct length.
    let l = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    dev.port = l.local_addr().unwrap().port();
    tokio::spawn(serve_fixed(
        l,
        "HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n{\"biometrics\":[1,2]}",
    ));
    let err = h
        .client
        .rcapture(&dev, &spec, &HashChain::new())
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::Protocol { verb: "RCAPTURE", .. }),
        "{err}"
    );
    // Wrong types: count as a number in the data block cannot come from a signed device, but a
    // response with numeric errorCode is refused by shape.
    let l = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    dev.port = l.local_addr().unwrap().port();
    tokio::spawn(serve_fixed(
        l,
        "HTTP/1.1 200 OK\r\nContent-Length: 58\r\n\r\n{\"biometrics\":[{\"error\":{\"errorCode\":0,\"errorInfo\":\"x\"}}]}",
    ));
    let err = h
        .client
        .rcapture(&dev, &spec, &HashChain::new())
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Protocol { .. }), "{err}");
}

#[tokio::test]
async fn shipped_synthetic_source_serves_decodable_iso_records() {
    let mut cfg = SimConfig::from_port(0);
    cfg.alg = Alg::EdDsa;
    cfg.person_id = 42;
    let sim = sim::start(cfg, Arc::new(SystemClock), sim::default_image_source().unwrap())
        .await
        .unwrap();
    let mut trust = TrustStore::new();
    trust.add_pem(sim.ca_pem()).unwrap();
    let client = SbiClient::new(ClientConfig::default(), Arc::new(trust), Arc::new(SystemClock)).unwrap();
    let port = sim.port_of(DeviceKind::FingerSlap).unwrap();
    let dev = client
        .discover_port(port, tessera_sbi::protocol::DiscoverType::Finger)
        .await
        .unwrap()
        .remove(0);
    let spec = capture_spec_for(&dev, DeviceSubId::Both, txn(), vec![], 1, Duration::from_secs(60));
    let first = client.rcapture(&dev, &spec, &HashChain::new()).await.unwrap();
    let second = client.rcapture(&dev, &spec, &HashChain::new()).await.unwrap();
    for (cap, seg) in [(&first, 0), (&first, 1), (&second, 0)] {
        let s = &cap.segments[seg];
        let recs = tessera_biometrics::iso19794_4::decode(&s.iso).unwrap();
        assert_eq!(recs.len(), 1);
        let expected = match s.bio_sub_type.unwrap() {
            BioSubType::LeftThumb => tessera_biometrics::FingerPosition::LeftThumb,
            BioSubType::RightThumb => tessera_biometrics::FingerPosition::RightThumb,
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(recs[0].position, expected);
        assert_eq!(u32::from(recs[0].quality), s.quality);
        // The reported quality is the biometrics crate's score of exactly the returned image.
        let measured = tessera_biometrics::quality::assess(&recs[0].to_gray().unwrap()).score;
        assert_eq!(s.quality, u32::from(measured));
        assert_eq!(recs[0].to_gray().unwrap().dimensions(), (320, 400));
    }
    // Two captures of the same finger are different impressions, not byte-identical copies.
    assert_ne!(first.segments[0].iso, second.segments[0].iso);
    // Iris and face records decode too.
    let iris = client
        .discover_port(
            sim.port_of(DeviceKind::IrisDouble).unwrap(),
            tessera_sbi::protocol::DiscoverType::Iris,
        )
        .await
        .unwrap()
        .remove(0);
    let spec = capture_spec_for(
        &iris,
        DeviceSubId::Both,
        txn(),
        vec![],
        1,
        Duration::from_secs(60),
    );
    let cap = client.rcapture(&iris, &spec, &HashChain::new()).await.unwrap();
    for s in &cap.segments {
        assert_eq!(tessera_biometrics::iso19794_6::decode(&s.iso).unwrap().len(), 1);
    }
}
