//! Shared test helpers. `TestdataImages` is a test-only image source: real fingerprint photographs
//! from `biometrics/testdata` (MIT, see its LICENSE) wrapped in ISO 19794-4 records; iris and face use
//! crops of the same photographs, which is enough for protocol tests (SBI never looks inside images).

use std::sync::Arc;

use tessera_packet::clock::{Clock, SystemClock};
use tessera_sbi::client::{ClientConfig, FoundDevice, SbiClient};
use tessera_sbi::jws::{Alg, TrustStore};
use tessera_sbi::protocol::BioSubType;
use tessera_sbi::sim::{
    self, DeviceKind, ImageError, ImageSource, RunningSimulator, SimConfig, SimImage, face_record,
    finger_record, iris_record,
};

#[derive(Debug)]
pub struct TestdataImages {
    fingers: Vec<image::GrayImage>,
}

impl TestdataImages {
    pub fn load() -> Self {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../biometrics/testdata");
        let fingers = ["p1_1.png", "p1_2.png", "p2_1.png"]
            .iter()
            .map(|f| image::open(format!("{dir}/{f}")).unwrap().to_luma8())
            .collect();
        Self { fingers }
    }

    fn pick(&self, person: u64, salt: u64) -> &image::GrayImage {
        let i = (person.wrapping_mul(31).wrapping_add(salt) % self.fingers.len() as u64) as usize;
        &self.fingers[i]
    }
}

fn quality(person: u64, salt: u64) -> u8 {
    (60 + (person.wrapping_add(salt) % 30)) as u8
}

impl ImageSource for TestdataImages {
    fn finger(&self, person: u64, position: BioSubType, _impression: u32) -> Result<SimImage, ImageError> {
        let img = self.pick(person, position as u64).clone();
        let q = quality(person, position as u64);
        Ok(SimImage {
            iso: finger_record(position, &img, q)?,
            preview: img,
            quality: q,
        })
    }
    fn iris(&self, person: u64, position: BioSubType, _impression: u32) -> Result<SimImage, ImageError> {
        let img = image::imageops::crop_imm(self.pick(person, 20), 0, 0, 320, 240).to_image();
        let q = quality(person, 20 + position as u64);
        Ok(SimImage {
            iso: iris_record(position, &img, q)?,
            preview: img,
            quality: q,
        })
    }
    fn face(&self, person: u64, _impression: u32) -> Result<SimImage, ImageError> {
        let img = image::imageops::crop_imm(self.pick(person, 40), 0, 0, 240, 320).to_image();
        let rgb = image::DynamicImage::ImageLuma8(img.clone()).to_rgb8();
        let q = quality(person, 40);
        Ok(SimImage {
            iso: face_record(&rgb, q)?,
            preview: img,
            quality: q,
        })
    }
}

pub struct Harness {
    pub sim: RunningSimulator,
    pub client: SbiClient,
    pub trust: Arc<TrustStore>,
    /// The stand-in IDA encryption certificate CAPTURE encrypts to, and its private key (PKCS#8).
    pub ida_cert: Vec<u8>,
    pub ida_key: Vec<u8>,
}

impl Harness {
    pub fn device(&self, kind: DeviceKind) -> u16 {
        self.sim.port_of(kind).unwrap()
    }

    pub async fn found(&self, kind: DeviceKind) -> FoundDevice {
        let port = self.device(kind);
        let mut v = self
            .client
            .discover_port(port, tessera_sbi::protocol::DiscoverType::BiometricDevice)
            .await
            .unwrap();
        assert_eq!(v.len(), 1);
        v.remove(0)
    }
}

/// The default device set on free ports, EdDSA keys (fast), person 7, system clock.
pub async fn harness() -> Harness {
    harness_with(Alg::EdDsa, Arc::new(SystemClock)).await
}

pub async fn harness_with(alg: Alg, clock: Arc<dyn Clock>) -> Harness {
    let (ida_cert, ida_key) = tessera_sbi::pki::encryption_certificate("Test IDA", clock.now()).unwrap();
    let mut cfg = SimConfig::from_port(0);
    cfg.alg = alg;
    cfg.person_id = 7;
    cfg.auth_cert_der = Some(ida_cert.clone());
    let sim = sim::start(cfg, clock.clone(), Arc::new(TestdataImages::load()))
        .await
        .unwrap();
    let mut trust = TrustStore::new();
    assert_eq!(trust.add_pem(sim.ca_pem()).unwrap(), 1);
    let trust = Arc::new(trust);
    let client = SbiClient::new(ClientConfig::default(), trust.clone(), clock).unwrap();
    Harness {
        sim,
        client,
        trust,
        ida_cert,
        ida_key,
    }
}

/// Whether tests that need an outside facility must fail instead of skipping.
pub fn require_all() -> bool {
    std::env::var("TESSERA_TEST_REQUIRE_ALL").is_ok_and(|v| v == "1")
}
