//! Operator sign-off keys. An operator's Ed25519 key lives on the station (unlocked by the operator's
//! password); the station registers its public half with `POST /api/v1/operators/keys`, signed by the
//! approved machine and with a proof of possession by the operator key. The validation stage accepts a
//! sign-off only when its key is registered for that operator by a machine of the packet's center.

use tessera_packet::wire::OperatorKeyRegistration;

use crate::error::ApiError;
use crate::store::{MachineRecord, OperatorKeyRecord, Store};

fn valid_operator_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"._-".contains(&c))
}

/// Checks and records a registration from `machine`. Returns whether the key is new.
pub async fn register(
    store: &dyn Store,
    machine: &MachineRecord,
    req: &OperatorKeyRegistration,
    now: i64,
) -> Result<bool, ApiError> {
    if !valid_operator_id(&req.operator_id) {
        return Err(ApiError::bad_request(
            "invalid_operator_id",
            "the operator id must be 1 to 64 of A-Z, a-z, 0-9, '.', '_', '-'",
        ));
    }
    let key = req.verify(&machine.machine_id).map_err(|e| {
        ApiError::bad_request(
            "operator_key_proof_invalid",
            format!("the proof of possession does not check: {e}"),
        )
    })?;
    let new = store
        .register_operator_key(OperatorKeyRecord {
            operator_id: req.operator_id.clone(),
            public_key: key.to_bytes(),
            machine_id: machine.machine_id.clone(),
            center_id: machine.center_id.clone(),
            registered_at: now,
        })
        .await?;
    if new {
        tracing::info!(operator = %req.operator_id, machine = %machine.machine_id, "operator key registered");
    }
    Ok(new)
}
