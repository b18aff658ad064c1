//! Machine onboarding: enrolment requests, approval, suspension. Used by the HTTP handlers and the CLI.

use tessera_packet::wire::{self, EnrolmentRequest, MachineInfo, MachineStatus};

use crate::error::ApiError;
use crate::store::{MachineRecord, NewMachine, Store};

/// Checks and stores an enrolment request. Returns the machine and whether it is new.
pub async fn enrol(
    store: &dyn Store,
    req: &EnrolmentRequest,
    now: i64,
) -> Result<(MachineRecord, bool), ApiError> {
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "invalid_machine_name",
            "the machine name must be 1 to 100 characters without control characters",
        ));
    }
    let key = req.verify().map_err(|e| {
        ApiError::bad_request(
            "enrolment_proof_invalid",
            format!("the enrolment proof does not check: {e}"),
        )
    })?;
    let (m, new) = store
        .enrol_machine(NewMachine {
            center_id: req.center_id.clone(),
            name: req.name.clone(),
            public_key: key.to_bytes(),
            at: now,
        })
        .await?;
    tracing::info!(machine = %m.machine_id, center = %m.center_id, "enrolment requested");
    Ok((m, new))
}

/// Sets a machine's status (approve = `Active`, suspend = `Suspended` with a reason).
pub async fn set_status(
    store: &dyn Store,
    id: &str,
    status: MachineStatus,
    reason: Option<String>,
    now: i64,
) -> Result<MachineRecord, ApiError> {
    let id = id
        .parse()
        .map_err(|e| ApiError::bad_request("invalid_machine_id", format!("{e}")))?;
    if status == MachineStatus::Suspended && reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
        return Err(ApiError::bad_request(
            "reason_required",
            "give a reason when suspending a machine",
        ));
    }
    let m = store.set_machine_status(&id, status, reason, now).await?;
    tracing::info!(machine = %m.machine_id, status = m.status.as_str(), "machine status changed");
    Ok(m)
}

/// The wire view of a machine.
pub fn info(m: &MachineRecord) -> MachineInfo {
    MachineInfo {
        machine_id: m.machine_id.clone(),
        center_id: m.center_id.clone(),
        name: m.name.clone(),
        public_key: wire::encode_b64(&m.public_key),
        status: m.status,
        requested_at: chrono::DateTime::from_timestamp(m.requested_at, 0).unwrap_or_default(),
        status_reason: m.status_reason.clone(),
    }
}
