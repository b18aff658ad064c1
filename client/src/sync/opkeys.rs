//! Operator key registration. The server accepts an officer's or supervisor's sign-off only when that
//! operator's public key was registered by an active machine of the center (`POST /api/v1/operators/keys`,
//! see `docs/api.md`). The registration carries a proof of possession signed by the operator key, so it is
//! made while the key is unlocked (at sign-off, see [`Station::note_operator_key`]) and kept in the store until
//! a sync round delivers it: an officer working offline for weeks signs packets that the server will accept
//! once the station is back online.

use rusqlite::params;
use tessera_packet::wire::OperatorKeyRegistration;
use tracing::{info, warn};

use super::http::ServerClient;
use crate::error::{Result, StationError};
use crate::station::Station;

impl Station {
    /// Records the logged-in operator's key registration (idempotent), to be sent at the next sync.
    pub(crate) fn note_operator_key(&mut self) -> Result<()> {
        let machine = self.machine_id.clone();
        let session = self.session()?;
        let reg = OperatorKeyRegistration::new(&session.signing_key, &machine, &session.operator.id);
        let body = serde_json::to_string(&reg).map_err(|e| StationError::Server {
            context: "encoding an operator key registration".into(),
            detail: e.to_string(),
            code: None,
        })?;
        let now = self.clock.now().to_rfc3339();
        self.store.tx(|tx| {
            tx.execute(
                "INSERT OR IGNORE INTO operator_keys (operator_id, public_key, body, created_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![reg.operator_id, reg.public_key, body, now],
            )
            .map_err(StationError::db("recording an operator key registration"))?;
            Ok(())
        })
    }

    /// Operator keys recorded but not yet accepted by the server.
    pub fn pending_operator_keys(&self) -> Result<u64> {
        self.store
            .conn()
            .query_row(
                "SELECT COUNT(*) FROM operator_keys WHERE registered_at IS NULL",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| u64::try_from(n).unwrap_or(0))
            .map_err(StationError::db("counting operator key registrations"))
    }

    /// Sends every pending registration. Returns how many the server accepted; a failure of one is logged
    /// and retried at the next round (packets signed with that key would be rejected until then).
    pub(crate) async fn register_operator_keys(
        &mut self,
        client: &ServerClient,
    ) -> Result<(u64, Option<String>)> {
        let pending: Vec<(String, String, String)> = {
            let mut stmt = self
                .store
                .conn()
                .prepare(
                    "SELECT operator_id, public_key, body FROM operator_keys WHERE registered_at IS NULL",
                )
                .map_err(StationError::db("reading operator key registrations"))?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(StationError::db("reading operator key registrations"))?;
            rows.collect::<std::result::Result<_, _>>()
                .map_err(StationError::db("reading operator key registrations"))?
        };
        let mut accepted = 0u64;
        let mut error = None;
        for (operator, key, body) in pending {
            let what = "registering an operator key";
            let headers = [("content-type", "application/json".to_owned())];
            match client
                .send(
                    what,
                    "POST",
                    "/api/v1/operators/keys",
                    &headers,
                    body.into_bytes(),
                    true,
                )
                .await
            {
                Ok(_) => {
                    let now = self.clock.now().to_rfc3339();
                    self.store.tx(|tx| {
                        tx.execute(
                            "UPDATE operator_keys SET registered_at = ?3 WHERE operator_id = ?1 AND public_key = ?2",
                            params![operator, key, now],
                        )
                        .map_err(StationError::db("recording an operator key registration"))?;
                        Ok(())
                    })?;
                    accepted += 1;
                    info!("operator key registered with the server");
                }
                Err(e) => {
                    warn!(error = %e, "operator key registration failed; retried at the next sync");
                    error = Some(e.to_string());
                }
            }
        }
        Ok((accepted, error))
    }
}
