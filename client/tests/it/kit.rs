//! Creating a station from the server's station set-up kit (`tessera_station::kit`, the commands
//! `inspect_kit` / `create_from_kit`): a kit made by the real server (`tessera_server::station_kit`), what the
//! officer is shown, bad kits, the first operator, the pinned server key at enrolment, and the first sync.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::SigningKey;
use tessera_packet::clock::Clock as _;
use tessera_packet::wire::SyncKind;
use tessera_packet::wire::kit::SignedStationKit;
use tessera_station::ErrorCode;
use tessera_station::commands::{self, Command, KitCreateInput, KitInput, Output};
use tessera_station::crypto::KdfParams;
use tessera_station::sync::SyncOptions;

use crate::common::{OFFICER_PW, SUPERVISOR_PW};
use crate::sync::{Server, now_clock};

/// A kit for center 10001 from `server` (operators and the simulator-like provider CA published first).
async fn make_kit(server: &Server) -> Vec<u8> {
    server.publish_operators().await;
    server
        .state()
        .store
        .put_sync_item(
            SyncKind::Certificates,
            "",
            "test-provider-ca",
            Some(serde_json::json!({"pem": "-----BEGIN CERTIFICATE-----\nnot-used-here\n-----END CERTIFICATE-----"})),
        )
        .await
        .unwrap();
    let req = tessera_server::station_kit::KitRequest {
        center_id: "10001".into(),
        machine_id: "00000".into(),
        server_url: server.url(),
        recovery_key: age::x25519::Identity::generate().to_public().to_string(),
    };
    let (kit, summary) = tessera_server::station_kit::build(
        server.state().store.as_ref(),
        &server.state().keys,
        &req,
        server.clock.now(),
    )
    .await
    .unwrap();
    assert_eq!(
        summary.operators, 3,
        "the center's three operators, not far1 of 10002"
    );
    kit.to_bytes().unwrap()
}

fn code(e: tessera_station::CommandError) -> ErrorCode {
    e.code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_station_is_created_from_the_kit_and_enrols_with_the_pinned_server() {
    let clock = now_clock();
    let server = Server::start(clock.clone()).await;
    let bytes = make_kit(&server).await;
    let b64 = B64.encode(&bytes);

    // What the officer confirms.
    let s = commands::inspect_kit(&KitInput {
        kit_base64: b64.clone(),
    })
    .unwrap();
    assert_eq!(s.center_id, "10001");
    assert!(
        s.center_name.values().any(|n| n.contains("Hillborough")),
        "{:?}",
        s.center_name
    );
    assert_eq!(s.server_url, server.url());
    let key = server.state().keys.signing.verifying_key();
    assert_eq!(
        s.server_key_fingerprint,
        tessera_station::crypto::fingerprint(key.as_bytes()),
        "the station's own fingerprint format"
    );
    assert_eq!(s.country, "Tessera Sample Republic");
    let mut ids: Vec<&str> = s.operators.iter().map(|o| o.id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["gone1", "officer1", "super1"]);
    assert!(s.packet_keys >= 1 && s.certificates == 1);
    assert!(
        !serde_json::to_string(&s).unwrap().contains("argon2"),
        "no password hash shown"
    );

    let dir = tempfile::tempdir().unwrap();
    let input = |sha: &str, operator: &str, pw: &str| KitCreateInput {
        home: dir.path().to_path_buf(),
        kit_base64: b64.clone(),
        kit_sha256: sha.into(),
        operator: operator.into(),
        password: pw.into(),
    };
    // Another file than the one confirmed, a wrong password, an inactive operator: nothing is created.
    let e = commands::create_from_kit(&input(&"0".repeat(64), "officer1", OFFICER_PW), clock.clone())
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::Kit);
    assert!(e.message.contains("not the kit file you confirmed"), "{e}");
    let e = commands::create_from_kit(&input(&s.kit_sha256, "officer1", "nope"), clock.clone()).unwrap_err();
    assert_eq!(e.code, ErrorCode::WrongPassword);
    let e =
        commands::create_from_kit(&input(&s.kit_sha256, "gone1", SUPERVISOR_PW), clock.clone()).unwrap_err();
    assert_eq!(e.code, ErrorCode::OperatorRejected);
    assert!(!commands::home_state(dir.path()).initialised);

    let (mut st, out) =
        commands::create_from_kit(&input(&s.kit_sha256, "officer1", OFFICER_PW), clock.clone()).unwrap();
    assert!(commands::home_state(dir.path()).initialised);
    assert_eq!(
        (out.operator.as_str(), out.roles.as_slice()),
        ("officer1", &["officer".to_owned()][..])
    );
    assert_eq!(out.machine.center_id, "10001");
    assert_eq!(out.kit, s);
    let Output::Status(status) = st.execute(Command::Status).unwrap() else {
        panic!()
    };
    let pin = status.kit.clone().unwrap();
    assert_eq!(pin.server_url, server.url());
    assert_eq!(pin.server_key_fingerprint, s.server_key_fingerprint);
    assert!(status.server.is_none(), "not enrolled yet");
    assert_eq!(status.config_version, s.config_version);
    // The kit's certificates count as synced: devices of that provider are trusted before any sync.
    assert_eq!(st.synced_certificates().unwrap().len(), 1);
    // Creating again on the same folder is refused.
    let e =
        commands::create_from_kit(&input(&s.kit_sha256, "officer1", OFFICER_PW), clock.clone()).unwrap_err();
    assert_eq!(e.code, ErrorCode::AlreadyInitialised);

    // Other operators of the center get their slot from the app; the supervisor logs in.
    st.execute(Command::AddOperatorSlot {
        operator: "super1".into(),
        password: SUPERVISOR_PW.into(),
    })
    .unwrap();

    // Enrolment with the kit's server, approval, then the first sync: nothing new to fetch but the server's
    // answers, and registration can start.
    let e = st.enrol_machine(&server.url(), "kit-desk").await.unwrap();
    assert!(e.machine_id_changed);
    server.approve(&e.machine_id).await;
    let r = st.sync(&SyncOptions::default()).await.unwrap();
    assert!(r.stopped.is_none(), "{r:?}");
    assert!(
        !r.master_data_applied,
        "the kit's configuration is the server's: {r:?}"
    );
    assert!(st.start_draft("NEW").is_ok());
    drop(st);
    let sup = tessera_station::station::Station::login_with(
        dir.path(),
        "super1",
        SUPERVISOR_PW,
        clock.clone(),
        KdfParams::TEST_ONLY_FAST,
    );
    assert!(sup.is_ok(), "{sup:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_kits_are_refused_with_what_to_do_and_another_server_key_cannot_enrol() {
    let clock = now_clock();
    let server = Server::start(clock.clone()).await;
    let bytes = make_kit(&server).await;
    let inspect = |b: &[u8]| {
        commands::inspect_kit(&KitInput {
            kit_base64: B64.encode(b),
        })
    };

    // Truncated while copying.
    let e = inspect(&bytes[..bytes.len() * 2 / 3]).unwrap_err();
    assert_eq!(code(e.clone()), ErrorCode::Kit);
    assert!(e.message.contains("incomplete"), "{e}");
    // Tampered: the center changed after signing.
    let mut k: SignedStationKit = serde_json::from_slice(&bytes).unwrap();
    k.payload = k
        .payload
        .replacen("\"centerId\":\"10001\"", "\"centerId\":\"10002\"", 1);
    let e = inspect(&k.to_bytes().unwrap()).unwrap_err();
    assert!(e.message.contains("changed after the server made it"), "{e}");
    // Another version.
    let mut k: SignedStationKit = serde_json::from_slice(&bytes).unwrap();
    k.version = 2;
    let e = inspect(&k.to_bytes().unwrap()).unwrap_err();
    assert!(
        e.message.contains("version 2") && e.message.contains("update the station software"),
        "{e}"
    );
    // Not a kit; not base64.
    let e = inspect(b"%PDF-1.4 not a kit").unwrap_err();
    assert!(e.message.contains("not a Tessera station kit"), "{e}");
    let e = commands::inspect_kit(&KitInput {
        kit_base64: "***".into(),
    })
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::Kit);

    // Validly signed by some other key that claims to be this server: the station is created (the officer
    // should have compared the fingerprint), but enrolling with the real server is refused.
    let real: SignedStationKit = serde_json::from_slice(&bytes).unwrap();
    let mut kit = real.verify().unwrap();
    let other = SigningKey::from_bytes(&[42u8; 32]); // test vector
    kit.server_key = tessera_packet::wire::encode_b64(other.verifying_key().as_bytes());
    let forged = SignedStationKit::sign(&kit, &other).unwrap().to_bytes().unwrap();
    let s = inspect(&forged).unwrap();
    assert_ne!(
        s.server_key_fingerprint,
        tessera_station::crypto::fingerprint(server.state().keys.signing.verifying_key().as_bytes())
    );
    let dir = tempfile::tempdir().unwrap();
    let (mut st, _, _) = tessera_station::kit::create(
        dir.path(),
        &forged,
        None,
        "officer1",
        OFFICER_PW,
        KdfParams::TEST_ONLY_FAST,
        clock.clone(),
    )
    .unwrap();
    let e = st.enrol_machine(&server.url(), "desk").await.unwrap_err();
    assert!(e.to_string().contains("set-up kit names"), "{e}");
    assert!(
        st.server_link().unwrap().is_none(),
        "nothing pinned from the wrong server"
    );

    // A kit whose configuration the station refuses (an inactive center) names the problem.
    let mut kit = real.verify().unwrap();
    kit.center_id = "99999".into();
    let key = &server.state().keys.signing;
    let e = inspect(&SignedStationKit::sign(&kit, key).unwrap().to_bytes().unwrap()).unwrap_err();
    assert!(e.message.contains("center 99999 is not an active center"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_creates_a_station_from_a_kit_only_with_the_slip_fingerprint() {
    let server = Server::start(now_clock()).await;
    let bytes = make_kit(&server).await;
    let dir = tempfile::tempdir().unwrap();
    let kit = dir.path().join("station-10001.tkit");
    std::fs::write(&kit, &bytes).unwrap();
    let home = dir.path().join("station");
    let fp = tessera_station::crypto::fingerprint(server.state().keys.signing.verifying_key().as_bytes());
    let run = |fingerprint: &str| {
        std::process::Command::new(crate::cli::bin())
            .args([
                "--home",
                home.to_str().unwrap(),
                "init-kit",
                kit.to_str().unwrap(),
            ])
            .args(["--server-fingerprint", fingerprint, "-o", "officer1"])
            .env("TESSERA_STATION_PASSWORD", OFFICER_PW)
            .env_remove("TESSERA_STATION_OPERATOR")
            .output()
            .unwrap()
    };
    let out = run("SHA256:0000 1111");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("not the SHA256:0000 1111 you gave"), "{err}");
    assert!(!home.join("station.db").exists());
    // As written on the slip, in lower case and without spaces: accepted.
    let out = run(&fp.replace(' ', "").to_lowercase());
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("from the kit for center 10001") && said.contains(&server.url()),
        "{said}"
    );
    assert!(said.contains("enrol-machine"), "{said}");
    assert!(home.join("station.db").exists());
}
