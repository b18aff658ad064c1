//! The R30x driver and the device host end to end over a pty pair with the emulator.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serialport::{SerialPort as _, TTYPort};
use tessera_packet::clock::SystemClock;
use tessera_sbi::client::{ClientConfig, SbiClient, capture_spec_for};
use tessera_sbi::jws::{Alg, TrustStore};
use tessera_sbi::protocol::{BioSubType, DeviceSubId, DiscoverType, HashChain, TransactionId};
use tessera_sbi::serial::emulator::{self, EmulatorConfig, Fault};
use tessera_sbi::serial::{R30xDriver, SerialError, SerialFingerSource, confirmation};
use tessera_sbi::sim::{self, DeviceKind, SimConfig};

use crate::support::TestdataImages;

struct Rig {
    driver: R30xDriver<TTYPort>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn rig(config: EmulatorConfig) -> Rig {
    let (mut host, mut device) = TTYPort::pair().unwrap();
    host.set_timeout(Duration::from_millis(20)).unwrap();
    device.set_timeout(Duration::from_millis(20)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let thread = std::thread::spawn(move || {
        emulator::serve(device, config, Arc::new(TestdataImages::load()), s);
    });
    Rig {
        driver: R30xDriver::new(host, Duration::from_secs(3)),
        stop,
        thread: Some(thread),
    }
}

#[test]
fn driver_talks_to_the_emulator() {
    let mut r = rig(EmulatorConfig::default());
    r.driver.verify_password(0).unwrap();
    r.driver.handshake().unwrap();
    let p = r.driver.read_system_parameters().unwrap();
    assert_eq!((p.packet_size_code, p.address), (2, 0xFFFF_FFFF));
    r.driver.capture().unwrap();
    let img = r.driver.upload_image().unwrap();
    assert_eq!(img.dimensions(), (256, 288));
    // The 4-bit image is the emulator's synthetic finger, not a flat field.
    let distinct: std::collections::BTreeSet<u8> = img.pixels().map(|p| p.0[0]).collect();
    assert!(distinct.len() > 8, "{} grey levels", distinct.len());
    let err = r.driver.verify_password(1234).unwrap_err();
    assert!(
        matches!(
            err,
            SerialError::Refused {
                code: confirmation::WRONG_PASSWORD,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn sensor_faults_give_typed_errors() {
    let mut r = rig(EmulatorConfig {
        fault: Fault::NoFinger,
        ..EmulatorConfig::default()
    });
    let err = r.driver.capture().unwrap_err();
    assert!(
        matches!(
            err,
            SerialError::Refused {
                code: confirmation::NO_FINGER,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("place the finger"), "{err}");
    drop(r);

    let mut r = rig(EmulatorConfig {
        fault: Fault::BadChecksum,
        ..EmulatorConfig::default()
    });
    let err = r.driver.verify_password(0).unwrap_err();
    assert!(
        matches!(
            err,
            SerialError::Frame {
                source: tessera_sbi::r30x::FrameError::BadChecksum { .. },
                ..
            }
        ),
        "{err}"
    );
    drop(r);

    let mut r = rig(EmulatorConfig {
        fault: Fault::BadLength,
        ..EmulatorConfig::default()
    });
    let err = r.driver.verify_password(0).unwrap_err();
    assert!(
        matches!(
            err,
            SerialError::Frame {
                source: tessera_sbi::r30x::FrameError::BadLength { .. },
                ..
            }
        ),
        "{err}"
    );
    drop(r);

    let mut r = rig(EmulatorConfig {
        fault: Fault::UnplugDuringUpload,
        ..EmulatorConfig::default()
    });
    r.driver.capture().unwrap();
    let err = r.driver.upload_image().unwrap_err();
    assert!(
        matches!(err, SerialError::Io { .. } | SerialError::Timeout { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn client_host_serial_emulator_end_to_end() {
    let mut r = rig(EmulatorConfig {
        person_id: 3,
        ..EmulatorConfig::default()
    });
    r.driver.verify_password(0).unwrap();
    // Move the driver into the host's image source; keep the emulator thread running.
    let driver = std::mem::replace(
        &mut r.driver,
        R30xDriver::new(TTYPort::pair().unwrap().0, Duration::from_secs(1)),
    );
    let source = Arc::new(SerialFingerSource::new(driver));
    let mut cfg = SimConfig::from_port(0);
    cfg.devices = vec![(DeviceKind::FingerSingle, 0)];
    cfg.alg = Alg::Rs256;
    let host = sim::start(cfg, Arc::new(SystemClock), source).await.unwrap();
    let mut trust = TrustStore::new();
    trust.add_pem(host.ca_pem()).unwrap();
    let client = SbiClient::new(ClientConfig::default(), Arc::new(trust), Arc::new(SystemClock)).unwrap();
    let port = host.port_of(DeviceKind::FingerSingle).unwrap();
    let dev = client
        .discover_port(port, DiscoverType::Finger)
        .await
        .unwrap()
        .remove(0);
    let mut spec = capture_spec_for(
        &dev,
        DeviceSubId::Unknown,
        TransactionId::parse("serial-e2e-1").unwrap(),
        vec![],
        1,
        Duration::from_secs(20),
    );
    spec.bio_sub_type = vec![BioSubType::RightIndex];
    let cap = client.rcapture(&dev, &spec, &HashChain::new()).await.unwrap();
    assert_eq!(cap.segments.len(), 1);
    let recs = tessera_biometrics::iso19794_4::decode(&cap.segments[0].iso).unwrap();
    assert_eq!(recs[0].position, tessera_biometrics::FingerPosition::RightIndex);
    assert_eq!(recs[0].to_gray().unwrap().dimensions(), (256, 288));
}
