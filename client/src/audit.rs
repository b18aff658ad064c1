//! The hash-chained audit log of everything operators do on the station.
//!
//! Each entry's `hash` is the SHA-256 of the previous entry's hash and this entry's fields, so deleting,
//! reordering or editing any entry breaks the chain from that point on; [`verify`] finds the first break.
//! Entries hold ids and action codes only, never personal data.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::crypto::sha256;
use crate::error::{Result, StationError};

/// The hash before the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audit entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// Sequence number, from 1.
    pub seq: i64,
    /// When (station clock).
    pub at: DateTime<Utc>,
    /// Operator id or `system`.
    pub actor: String,
    /// Action code, e.g. `LOGIN`, `PACKET_SEALED`.
    pub action: String,
    /// What it concerned (RID, draft id, operator id), or empty.
    pub subject: String,
    /// Non-personal detail.
    pub detail: String,
    /// Hash of the previous entry.
    pub prev_hash: String,
    /// This entry's hash.
    pub hash: String,
}

fn entry_hash(
    prev: &str,
    seq: i64,
    at: &str,
    actor: &str,
    action: &str,
    subject: &str,
    detail: &str,
) -> String {
    let canonical = serde_json::json!([prev, seq, at, actor, action, subject, detail]).to_string();
    hex::encode(sha256(canonical.as_bytes()))
}

/// Appends an entry inside the caller's transaction.
pub fn append(
    conn: &Connection,
    at: DateTime<Utc>,
    actor: &str,
    action: &str,
    subject: &str,
    detail: &str,
) -> Result<i64> {
    let last: Option<(i64, String)> = conn
        .query_row("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()
        .map_err(StationError::db("reading the last audit entry"))?;
    let (prev_seq, prev_hash) = last.unwrap_or((0, GENESIS.to_owned()));
    let seq = prev_seq + 1;
    let at_s = at.to_rfc3339();
    let hash = entry_hash(&prev_hash, seq, &at_s, actor, action, subject, detail);
    conn.execute(
        "INSERT INTO audit (seq, at, actor, action, subject, detail, prev_hash, hash) VALUES (?1,?2,?3,?4,?5,?6,?7,?8)",
        params![seq, at_s, actor, action, subject, detail, prev_hash, hash],
    )
    .map_err(StationError::db("appending to the audit log"))?;
    Ok(seq)
}

/// Reads entries after `after_seq`, at most `limit`.
pub fn list(conn: &Connection, after_seq: i64, limit: u32) -> Result<Vec<AuditEntry>> {
    let mut st = conn
        .prepare_cached(
            "SELECT seq, at, actor, action, subject, detail, prev_hash, hash FROM audit WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )
        .map_err(StationError::db("reading the audit log"))?;
    let rows = st
        .query_map(params![after_seq, limit], |r| {
            let at: String = r.get(1)?;
            Ok(AuditEntry {
                seq: r.get(0)?,
                at: DateTime::parse_from_rfc3339(&at)
                    .map(|d| d.with_timezone(&Utc))
                    .unwrap_or_default(),
                actor: r.get(2)?,
                action: r.get(3)?,
                subject: r.get(4)?,
                detail: r.get(5)?,
                prev_hash: r.get(6)?,
                hash: r.get(7)?,
            })
        })
        .map_err(StationError::db("reading the audit log"))?;
    rows.collect::<rusqlite::Result<Vec<_>>>()
        .map_err(StationError::db("reading the audit log"))
}

/// Checks the whole chain; returns the number of entries.
pub fn verify(conn: &Connection) -> Result<i64> {
    let mut st = conn
        .prepare("SELECT seq, at, actor, action, subject, detail, prev_hash, hash FROM audit ORDER BY seq")
        .map_err(StationError::db("reading the audit log"))?;
    let mut rows = st.query([]).map_err(StationError::db("reading the audit log"))?;
    let mut expected_prev = GENESIS.to_owned();
    let mut expected_seq = 1i64;
    while let Some(r) = rows.next().map_err(StationError::db("reading the audit log"))? {
        let get =
            |i: usize| -> Result<String> { r.get(i).map_err(StationError::db("reading the audit log")) };
        let seq: i64 = r.get(0).map_err(StationError::db("reading the audit log"))?;
        let (at, actor, action, subject, detail, prev, hash) =
            (get(1)?, get(2)?, get(3)?, get(4)?, get(5)?, get(6)?, get(7)?);
        if seq != expected_seq {
            return Err(StationError::AuditChain {
                seq,
                detail: format!("expected entry {expected_seq}: entries are missing"),
            });
        }
        if prev != expected_prev {
            return Err(StationError::AuditChain {
                seq,
                detail: "previous-hash link does not match".into(),
            });
        }
        if entry_hash(&prev, seq, &at, &actor, &action, &subject, &detail) != hash {
            return Err(StationError::AuditChain {
                seq,
                detail: "entry content does not match its hash".into(),
            });
        }
        expected_prev = hash;
        expected_seq += 1;
    }
    Ok(expected_seq - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(
            "CREATE TABLE audit (seq INTEGER PRIMARY KEY, at TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
             subject TEXT NOT NULL, detail TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);",
        )
        .unwrap();
        c
    }

    #[test]
    fn chain_verifies_and_detects_edit_delete_and_reorder() {
        let c = db();
        let t = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap();
        for i in 0..5 {
            append(&c, t, "officer1", "ACTION", &format!("s{i}"), "").unwrap();
        }
        assert_eq!(verify(&c).unwrap(), 5);
        assert_eq!(list(&c, 2, 10).unwrap().len(), 3);

        c.execute("UPDATE audit SET actor = 'mallory' WHERE seq = 3", [])
            .unwrap();
        assert!(matches!(verify(&c), Err(StationError::AuditChain { seq: 3, .. })));
        c.execute("UPDATE audit SET actor = 'officer1' WHERE seq = 3", [])
            .unwrap();
        assert_eq!(verify(&c).unwrap(), 5);

        c.execute("DELETE FROM audit WHERE seq = 2", []).unwrap();
        assert!(matches!(verify(&c), Err(StationError::AuditChain { seq: 3, .. })));
    }
}
