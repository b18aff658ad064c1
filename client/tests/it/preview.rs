//! The live STREAM preview (`tessera_station::preview`) against the real SBI simulator over loopback HTTP:
//! frames arrive and change, a capture stops the preview, time-outs, busy devices, stop and replace.

use std::time::Duration;

use tessera_sbi::sim::{DeviceKind, FailureMode, RunningSimulator};
use tessera_station::ErrorCode;
use tessera_station::capture::{CapturePart, DeviceOptions};
use tessera_station::preview::{PreviewEnd, PreviewEvent, PreviewInput, PreviewSource};
use tokio::sync::mpsc;

use crate::capture::start_sim_at;
use crate::common;

fn devices(sim: &RunningSimulator, base: u16) -> DeviceOptions {
    DeviceOptions {
        first_port: base,
        last_port: base + 3,
        trusted_ca_pem: vec![sim.ca_pem().to_owned()],
        capture_timeout_secs: 20,
    }
}

fn input(part: CapturePart, d: &DeviceOptions, secs: u64) -> PreviewInput {
    PreviewInput {
        part,
        devices: d.clone(),
        timeout_secs: secs,
    }
}

/// Runs a preview on the runtime, forwarding its events to the returned receiver.
fn spawn(
    source: PreviewSource,
) -> (
    mpsc::UnboundedReceiver<PreviewEvent>,
    tokio::task::JoinHandle<PreviewEvent>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let h = tokio::spawn(source.run(move |ev| tx.send(ev).is_ok()));
    (rx, h)
}

async fn next(rx: &mut mpsc::UnboundedReceiver<PreviewEvent>) -> PreviewEvent {
    tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("a preview event within 20 s")
        .expect("the preview sent its final event before closing")
}

fn jpeg(ev: &PreviewEvent) -> Vec<u8> {
    use base64::Engine as _;
    let PreviewEvent::Frame { jpeg_base64, .. } = ev else {
        panic!("expected a frame, got {ev:?}")
    };
    base64::engine::general_purpose::STANDARD
        .decode(jpeg_base64)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_arrive_and_change_and_a_capture_stops_the_preview() {
    let (env, mut st, _) = common::init_station();
    let (sim, base) = start_sim_at(env.clock.clone()).await;
    let d = devices(&sim, base);
    let source = st.prepare_preview(input(CapturePart::LeftSlap, &d, 60)).unwrap();
    assert_eq!(source.part(), CapturePart::LeftSlap);
    let (mut rx, task) = spawn(source);

    let PreviewEvent::Started { part, device } = next(&mut rx).await else {
        panic!("the first event is `started`")
    };
    assert_eq!(part, CapturePart::LeftSlap);
    assert_eq!(
        (device.bio_type.as_str(), device.status.as_str()),
        ("Finger", "Ready")
    );
    assert_eq!(device.port, base, "the slap scanner previews the left slap");

    let mut frames = Vec::new();
    for want in 1..=3u64 {
        let ev = next(&mut rx).await;
        let PreviewEvent::Frame { seq, .. } = &ev else {
            panic!("expected frame {want}, got {ev:?}")
        };
        assert_eq!(*seq, want);
        let f = jpeg(&ev);
        assert_eq!(&f[..2], &[0xFF, 0xD8], "JPEG start of image");
        let img = image::load_from_memory_with_format(&f, image::ImageFormat::Jpeg).unwrap();
        assert!(img.width() > 100 && img.height() > 100);
        frames.push(f);
    }
    assert!(
        frames.windows(2).any(|w| w[0] != w[1]),
        "the live image changes from frame to frame"
    );

    // The officer captures: the core stops the preview before asking the device.
    let id = crate::capture::draft_for_preview(&mut st);
    let part = st.capture_part(id, CapturePart::LeftSlap, &d).await.unwrap();
    assert_eq!(part.qualities.len(), 4);
    let end = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
    let PreviewEvent::Ended { reason, frames: n } = end else {
        panic!("ended normally, got {end:?}")
    };
    assert_eq!(reason, PreviewEnd::Capture);
    assert!(n >= 3);
    // Every event was delivered in order and the last one is the end.
    let mut last = None;
    while let Ok(ev) = rx.try_recv() {
        last = Some(ev);
    }
    assert!(
        matches!(
            last,
            Some(PreviewEvent::Ended {
                reason: PreviewEnd::Capture,
                ..
            })
        ),
        "{last:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_stop_replace_busy_and_no_session() {
    let (env, mut st, _) = common::init_station();
    let (sim, base) = start_sim_at(env.clock.clone()).await;
    let d = devices(&sim, base);

    // The preview's time is up.
    let (mut rx, task) = spawn(st.prepare_preview(input(CapturePart::Irises, &d, 1)).unwrap());
    assert!(matches!(next(&mut rx).await, PreviewEvent::Started { .. }));
    let end = task.await.unwrap();
    assert!(
        matches!(
            end,
            PreviewEvent::Ended {
                reason: PreviewEnd::Timeout,
                frames: 1..
            }
        ),
        "{end:?}"
    );

    // A second preview replaces the first; `stopPreview` stops the second.
    let (mut rx1, t1) = spawn(st.prepare_preview(input(CapturePart::Face, &d, 60)).unwrap());
    assert!(matches!(next(&mut rx1).await, PreviewEvent::Started { .. }));
    let (mut rx2, t2) = spawn(st.prepare_preview(input(CapturePart::Thumbs, &d, 60)).unwrap());
    let end1 = tokio::time::timeout(Duration::from_secs(10), t1)
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(
            end1,
            PreviewEvent::Ended {
                reason: PreviewEnd::Replaced,
                ..
            }
        ),
        "{end1:?}"
    );
    assert!(matches!(next(&mut rx2).await, PreviewEvent::Started { .. }));
    assert!(matches!(next(&mut rx2).await, PreviewEvent::Frame { seq: 1, .. }));
    st.execute(tessera_station::commands::Command::StopPreview)
        .unwrap();
    let end2 = tokio::time::timeout(Duration::from_secs(10), t2)
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(
            end2,
            PreviewEvent::Ended {
                reason: PreviewEnd::Stopped,
                ..
            }
        ),
        "{end2:?}"
    );

    // A consumer that goes away ends the preview quietly.
    let source = st.prepare_preview(input(CapturePart::Face, &d, 60)).unwrap();
    let mut seen = 0;
    let end = tokio::time::timeout(
        Duration::from_secs(10),
        source.run(move |_| {
            seen += 1;
            seen < 3
        }),
    )
    .await
    .unwrap();
    assert!(matches!(
        end,
        PreviewEvent::Ended {
            reason: PreviewEnd::Stopped,
            ..
        }
    ));

    // A busy device: the device's explanation, typed DEVICE.
    sim.control(DeviceKind::FingerSlap, |c| c.failure = FailureMode::Busy);
    let end = st
        .prepare_preview(input(CapturePart::RightSlap, &d, 5))
        .unwrap()
        .run(|_| true)
        .await;
    let PreviewEvent::Failed { error } = end else {
        panic!("busy device: {end:?}")
    };
    assert_eq!(error.code, ErrorCode::Device);
    assert!(error.message.to_lowercase().contains("busy"), "{}", error.message);
    sim.control(DeviceKind::FingerSlap, |c| c.failure = FailureMode::None);

    // No device in the range.
    let none = DeviceOptions {
        first_port: 1,
        last_port: 2,
        ..d.clone()
    };
    let end = st
        .prepare_preview(input(CapturePart::Face, &none, 5))
        .unwrap()
        .run(|_| true)
        .await;
    assert!(
        matches!(&end, PreviewEvent::Failed { error } if error.message.contains("no Face device found")),
        "{end:?}"
    );

    // Without a trusted provider CA, nothing starts.
    let untrusted = DeviceOptions {
        trusted_ca_pem: vec![],
        ..d.clone()
    };
    let e = st
        .prepare_preview(input(CapturePart::Face, &untrusted, 5))
        .unwrap_err();
    assert!(e.to_string().contains("CA"), "{e}");

    // Logging out stops a running preview, and a logged-out station starts none.
    let (mut rx, task) = spawn(st.prepare_preview(input(CapturePart::Face, &d, 60)).unwrap());
    assert!(matches!(next(&mut rx).await, PreviewEvent::Started { .. }));
    st.logout().unwrap();
    let end = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(
            end,
            PreviewEvent::Ended {
                reason: PreviewEnd::Logout,
                ..
            }
        ),
        "{end:?}"
    );
    let e = st.prepare_preview(input(CapturePart::Face, &d, 5)).unwrap_err();
    assert_eq!(
        tessera_station::CommandError::from(e).code,
        ErrorCode::NotLoggedIn
    );
}
