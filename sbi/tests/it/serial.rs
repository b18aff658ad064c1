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

    use tessera_sbi::r30x::FrameError;
    for fault in [Fault::BadChecksum, Fault::BadLength] {
        let mut r = rig(EmulatorConfig {
            fault,
            ..EmulatorConfig::default()
        });
        let err = r.driver.verify_password(0).unwrap_err();
        let SerialError::Frame { source, .. } = &err else {
            panic!("{fault:?}: {err}")
        };
        match fault {
            Fault::BadChecksum => assert!(matches!(source, FrameError::BadChecksum { .. }), "{err}"),
            _ => assert!(matches!(source, FrameError::BadLength { .. }), "{err}"),
        }
    }

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
    assert!(source.is_connected());
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

/// One "plug" of a virtual sensor: the emulator on the pty master, the slave reachable through the
/// symlink `link` (as a USB adapter is through /dev/serial/by-id).
struct Plug {
    _slave: TTYPort,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Plug {
    fn new(link: &std::path::Path, fault: Fault) -> Self {
        let (mut master, slave) = TTYPort::pair().unwrap();
        master.set_timeout(Duration::from_millis(20)).unwrap();
        let _ = std::fs::remove_file(link);
        std::os::unix::fs::symlink(slave.name().unwrap(), link).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let config = EmulatorConfig {
            fault,
            ..EmulatorConfig::default()
        };
        let thread = std::thread::spawn(move || {
            emulator::serve(master, config, Arc::new(TestdataImages::load()), s);
        });
        Plug {
            _slave: slave,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Plug {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn status_of(client: &SbiClient, port: u16) -> tessera_sbi::protocol::DeviceStatus {
    client
        .discover_port(port, DiscoverType::Finger)
        .await
        .unwrap()
        .remove(0)
        .entry
        .device_status
}

async fn wait_for(client: &SbiClient, port: u16, want: tessera_sbi::protocol::DeviceStatus) {
    for _ in 0..100 {
        if status_of(client, port).await == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("device never reported {want:?}");
}

#[tokio::test]
async fn sensor_unplugged_mid_capture_is_not_ready_until_replugged() {
    use tessera_sbi::client::ClientError;
    use tessera_sbi::host::{HostSettings, SerialSettings};
    use tessera_sbi::protocol::{DeviceStatus, SbiErrorCode};
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("sensor");
    // The first sensor is pulled out in the middle of its first image upload.
    let plug = Plug::new(&link, Fault::UnplugDuringUpload);
    let settings = HostSettings {
        serial: Some(SerialSettings {
            path: link.to_string_lossy().into_owned(),
            baud: 57600,
            password: 0,
            port: 0,
        }),
        ..HostSettings::default()
    };
    let host = tessera_sbi::host::start_with(
        &settings,
        Arc::new(SystemClock),
        Duration::from_millis(100),
        || Box::new(tessera_sbi::hid::HidapiBackend::new()),
    )
    .await
    .unwrap();
    let sensor = host.sensor.as_ref().unwrap();
    let mut trust = TrustStore::new();
    trust.add_pem(sensor.ca_pem()).unwrap();
    let client = SbiClient::new(ClientConfig::default(), Arc::new(trust), Arc::new(SystemClock)).unwrap();
    let port = sensor.port_of(DeviceKind::FingerSingle).unwrap();
    assert_eq!(status_of(&client, port).await, DeviceStatus::Ready);
    let dev = client
        .discover_port(port, DiscoverType::Finger)
        .await
        .unwrap()
        .remove(0);
    let mut spec = capture_spec_for(
        &dev,
        DeviceSubId::Unknown,
        TransactionId::parse("hotplug-1").unwrap(),
        vec![],
        1,
        Duration::from_secs(20),
    );
    spec.bio_sub_type = vec![BioSubType::RightIndex];
    let started = std::time::Instant::now();
    let err = client.rcapture(&dev, &spec, &HashChain::new()).await.unwrap_err();
    assert_eq!(err.sbi_code(), Some(SbiErrorCode::NotReady), "{err}");
    assert!(matches!(err, ClientError::Device { .. }));
    assert!(err.to_string().contains("disconnected"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "no hang: {:?}",
        started.elapsed()
    );
    drop(plug);
    // Discovery and device info tell the truth while it is out.
    assert_eq!(status_of(&client, port).await, DeviceStatus::NotReady);
    let info = client.device_info(port).await.unwrap();
    assert_eq!(info[0].info.device_status, DeviceStatus::NotReady);
    let err = client.rcapture(&dev, &spec, &HashChain::new()).await.unwrap_err();
    assert_eq!(err.sbi_code(), Some(SbiErrorCode::NotReady), "{err}");
    // Plugged back in (a new pty behind the same link): Ready again, and it captures.
    let _plug = Plug::new(&link, Fault::None);
    wait_for(&client, port, DeviceStatus::Ready).await;
    let cap = client.rcapture(&dev, &spec, &HashChain::new()).await.unwrap();
    let recs = tessera_biometrics::iso19794_4::decode(&cap.segments[0].iso).unwrap();
    assert_eq!(recs[0].to_gray().unwrap().dimensions(), (256, 288));
    assert!(host.sensor_source.as_ref().unwrap().is_connected());
}
