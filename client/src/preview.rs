//! Live STREAM preview of an SBI device while the officer positions the finger, eyes or face.
//!
//! SBI devices stream MJPEG on loopback (`STREAM`, `multipart/x-mixed-replace`) without CORS, so the page
//! cannot read it directly: the core reads it and hands JPEG frames to the adapters as [`PreviewEvent`]s
//! (the HTTP bridge as one JSON line per event, the Tauri shell over a `Channel`).
//!
//! The operation has two halves so that the store never waits on a device:
//! 1. [`Station::prepare_preview`] (synchronous, on the station's thread): checks the session, builds the
//!    device trust store from the synced provider CAs and returns a [`PreviewSource`] that owns everything
//!    the stream needs and no reference to the store;
//! 2. [`PreviewSource::run`] (async, on the adapter's runtime): discovers the devices, picks the one for
//!    the part (as a capture would), opens STREAM and forwards frames until it ends.
//!
//! A preview ends, with a final [`PreviewEvent::Ended`] or [`PreviewEvent::Failed`], when:
//! - a capture starts on the station ([`PreviewEnd::Capture`]: every capture stops the preview first),
//!   another preview starts ([`PreviewEnd::Replaced`]), the operator logs out or the adapter asks
//!   ([`Command::StopPreview`](crate::commands::Command::StopPreview), [`PreviewEnd::Stopped`]);
//! - its time is up ([`PreviewEnd::Timeout`]) or the device ends the stream ([`PreviewEnd::DeviceEnded`]);
//! - the device refuses or fails (busy, not ready, untrusted, gone): `Failed` with the device's explanation;
//! - the consumer went away (the page closed the request, the webview dropped the channel): silently.
//!
//! Frames are never stored or logged: they are images of the resident.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use tessera_packet::clock::Clock;
use tessera_sbi::client::{ClientConfig, FoundDevice, SbiClient};
use tessera_sbi::jws::TrustStore;
use tokio::sync::watch;
use tracing::{debug, info};

use crate::capture::{CapturePart, DeviceOptions, DeviceView};
use crate::error::{CommandError, Result, StationError};
use crate::station::Station;

/// Longest preview the core keeps open, whatever the caller asks.
pub const MAX_PREVIEW_SECS: u64 = 300;

/// What to preview.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PreviewInput {
    /// The part the officer is about to capture (its device and sub-id are used).
    pub part: CapturePart,
    /// Port range and extra trusted CAs, as for a capture.
    #[serde(default)]
    pub devices: DeviceOptions,
    /// How long the preview may run, in seconds (default 60, at most [`MAX_PREVIEW_SECS`]).
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

fn default_timeout() -> u64 {
    60
}

/// Why a preview ended normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PreviewEnd {
    /// The adapter asked for it (the officer left the step or pressed Stop).
    Stopped,
    /// A capture started on the station.
    Capture,
    /// Another preview started.
    Replaced,
    /// The operator logged out.
    Logout,
    /// The preview's time was up.
    Timeout,
    /// The device ended the stream.
    DeviceEnded,
}

/// One event of a preview, in order: `started`, then `frame`s, then exactly one of `ended` or `failed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "camelCase")]
pub enum PreviewEvent {
    /// The device was found and its stream opened.
    Started {
        /// The part previewed.
        part: CapturePart,
        /// The device streaming.
        device: DeviceView,
    },
    /// One JPEG frame.
    Frame {
        /// Frame number, from 1.
        seq: u64,
        /// The JPEG image, base64.
        #[serde(rename = "jpegBase64")]
        jpeg_base64: String,
    },
    /// The preview ended normally.
    Ended {
        /// Why.
        reason: PreviewEnd,
        /// Frames delivered.
        frames: u64,
    },
    /// The preview could not start or the device failed: what happened and what to do.
    Failed {
        /// The typed error (code `DEVICE` for device problems).
        error: CommandError,
    },
}

/// Stops running previews: one per station, shared with the adapters through [`Station::preview_control`].
#[derive(Debug, Clone)]
pub struct PreviewControl {
    tx: Arc<watch::Sender<(u64, PreviewEnd)>>,
}

impl Default for PreviewControl {
    fn default() -> Self {
        Self {
            tx: Arc::new(watch::channel((0, PreviewEnd::Stopped)).0),
        }
    }
}

impl PreviewControl {
    /// Stops the running preview, if any, with `reason`.
    pub fn stop(&self, reason: PreviewEnd) {
        self.tx.send_modify(|(generation, why)| {
            *generation = generation.wrapping_add(1);
            *why = reason;
        });
    }

    /// Stops the running preview (as replaced) and returns a ticket for a new one.
    fn next(&self) -> (u64, watch::Receiver<(u64, PreviewEnd)>) {
        self.stop(PreviewEnd::Replaced);
        let rx = self.tx.subscribe();
        let generation = rx.borrow().0;
        (generation, rx)
    }
}

/// Everything one preview needs, detached from the store (see the module docs).
pub struct PreviewSource {
    input: PreviewInput,
    config: ClientConfig,
    trust: Arc<TrustStore>,
    clock: Arc<dyn Clock>,
    generation: u64,
    stop: watch::Receiver<(u64, PreviewEnd)>,
}

impl std::fmt::Debug for PreviewSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreviewSource")
            .field("part", &self.input.part)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

/// The device a part is captured (and previewed) with: one of its modality offering the part's sub-id,
/// else any of its modality.
pub(crate) fn device_for(devices: &[FoundDevice], part: CapturePart) -> Option<&FoundDevice> {
    devices
        .iter()
        .find(|f| f.bio_type() == part.bio_type() && f.entry.device_sub_id.contains(&part.sub_id()))
        .or_else(|| devices.iter().find(|f| f.bio_type() == part.bio_type()))
}

impl Station {
    /// The handle adapters use to stop this station's preview from outside its thread.
    pub fn preview_control(&self) -> PreviewControl {
        self.previews.clone()
    }

    /// First half of a preview: checks the session and the device trust, stops any preview already
    /// running, and returns the detached [`PreviewSource`] to [`run`](PreviewSource::run).
    pub fn prepare_preview(&mut self, input: PreviewInput) -> Result<PreviewSource> {
        self.session()?;
        let (config, trust) = self.sbi_parts(&input.devices)?;
        let (generation, stop) = self.previews.next();
        Ok(PreviewSource {
            input,
            config,
            trust,
            clock: self.clock.clone(),
            generation,
            stop,
        })
    }
}

fn device_error(part: CapturePart, detail: String) -> PreviewEvent {
    PreviewEvent::Failed {
        error: CommandError::from(StationError::Device {
            context: format!("previewing {part:?}"),
            detail,
        }),
    }
}

impl PreviewSource {
    /// The part previewed.
    pub fn part(&self) -> CapturePart {
        self.input.part
    }

    fn stopped(&self) -> Option<PreviewEnd> {
        let (g, why) = *self.stop.borrow();
        (g != self.generation).then_some(why)
    }

    /// Second half: streams the device's frames to `sink` until the preview ends (see the module docs).
    /// `sink` returns `false` when its consumer is gone, which ends the preview silently. Returns the last
    /// event sent (or that would have been sent).
    pub async fn run(mut self, mut sink: impl FnMut(PreviewEvent) -> bool + Send) -> PreviewEvent {
        let part = self.input.part;
        let secs = self.input.timeout_secs.clamp(1, MAX_PREVIEW_SECS);
        let client = match SbiClient::new(self.config.clone(), self.trust.clone(), self.clock.clone()) {
            Ok(c) => c,
            Err(e) => {
                let ev = device_error(part, e.to_string());
                sink(ev.clone());
                return ev;
            }
        };
        let found = client.discover().await;
        let Some(device) = device_for(&found.devices, part) else {
            let ev = device_error(
                part,
                format!(
                    "no {} device found on ports {}-{}; connect the device and check its service runs",
                    part.bio_type().as_str(),
                    self.config.first_port,
                    self.config.last_port
                ),
            );
            sink(ev.clone());
            return ev;
        };
        if let Some(why) = self.stopped() {
            let ev = PreviewEvent::Ended {
                reason: why,
                frames: 0,
            };
            sink(ev.clone());
            return ev;
        }
        let serial = device.digital_id.serial_no.clone();
        let mut stream = match client
            .stream(device, part.sub_id(), Duration::from_secs(secs))
            .await
        {
            Ok(s) => s,
            Err(e) => {
                info!(device = %serial, ?part, error = %e, "preview refused by the device");
                let ev = device_error(part, format!("device {serial}: {e}"));
                sink(ev.clone());
                return ev;
            }
        };
        if !sink(PreviewEvent::Started {
            part,
            device: crate::capture::view(device),
        }) {
            return PreviewEvent::Ended {
                reason: PreviewEnd::Stopped,
                frames: 0,
            };
        }
        debug!(device = %serial, ?part, "preview started");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        let mut frames = 0u64;
        let end = loop {
            if let Some(why) = self.stopped() {
                break PreviewEvent::Ended { reason: why, frames };
            }
            let next = tokio::select! {
                biased;
                changed = self.stop.changed() => {
                    if changed.is_err() {
                        // The station is gone (closed or logged out for good).
                        break PreviewEvent::Ended { reason: PreviewEnd::Logout, frames };
                    }
                    continue;
                }
                _ = tokio::time::sleep_until(deadline) => {
                    break PreviewEvent::Ended { reason: PreviewEnd::Timeout, frames };
                }
                f = stream.next_frame() => f,
            };
            match next {
                Ok(Some(jpeg)) => {
                    frames += 1;
                    let ev = PreviewEvent::Frame {
                        seq: frames,
                        jpeg_base64: B64.encode(&jpeg),
                    };
                    if !sink(ev) {
                        debug!(frames, "preview consumer gone");
                        return PreviewEvent::Ended {
                            reason: PreviewEnd::Stopped,
                            frames,
                        };
                    }
                }
                Ok(None) => {
                    // The device ends the stream at the timeout it was given: report it as ours.
                    let reason = if tokio::time::Instant::now() + Duration::from_millis(500) >= deadline {
                        PreviewEnd::Timeout
                    } else {
                        PreviewEnd::DeviceEnded
                    };
                    break PreviewEvent::Ended { reason, frames };
                }
                Err(e) => {
                    info!(device = %serial, frames, error = %e, "preview stream failed");
                    break device_error(part, format!("device {serial}: {e}"));
                }
            }
        };
        debug!(frames, "preview ended");
        sink(end.clone());
        end
    }
}
