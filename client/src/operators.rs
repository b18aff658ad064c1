//! Operators (registration officers and supervisors), their roles and password hashes, as synced from the
//! server or, until sync exists, loaded from a local bundle of the same shape:
//!
//! ```json
//! { "version": "1", "operators": [
//!   { "id": "officer1", "name": "A. Officer", "roles": ["officer"], "centerId": "10001", "active": true,
//!     "passwordHash": "$argon2id$v=19$m=19456,t=2,p=1$..." } ] }
//! ```
//! Password hashes are Argon2id PHC strings; the station never stores a password.

use argon2::{Argon2, PasswordVerifier};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::error::{Result, StationError};

/// An operator role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Registers residents.
    Officer,
    /// Approves or rejects packets (and may register too).
    Supervisor,
}

impl Role {
    /// Name as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Officer => "officer",
            Self::Supervisor => "supervisor",
        }
    }
}

/// One operator account.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Operator {
    /// Login id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Roles.
    pub roles: Vec<Role>,
    /// The operator's center.
    pub center_id: String,
    /// Whether the account is active.
    pub active: bool,
    /// Argon2id PHC hash of the password.
    pub password_hash: String,
}

impl std::fmt::Debug for Operator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Operator")
            .field("id", &self.id)
            .field("roles", &self.roles)
            .field("center_id", &self.center_id)
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

impl Operator {
    /// Whether the operator has `role`.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Checks `password` against the synced hash.
    pub fn password_matches(&self, password: &str) -> bool {
        Argon2::default()
            .verify_password(password.as_bytes(), self.password_hash.as_str())
            .is_ok()
    }
}

/// The operator list as delivered by sync (or a local bundle).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OperatorBundle {
    /// Version of the list.
    pub version: String,
    /// Operators.
    pub operators: Vec<Operator>,
}

const MAX_BUNDLE: usize = 4 * 1024 * 1024;

impl OperatorBundle {
    /// Parses and checks a bundle.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_BUNDLE {
            return Err(StationError::Bundle {
                detail: format!("{} bytes is more than {MAX_BUNDLE}", bytes.len()),
            });
        }
        let b: Self = serde_json::from_slice(bytes).map_err(|e| StationError::Bundle {
            detail: e.to_string(),
        })?;
        let mut ids = std::collections::BTreeSet::new();
        for o in &b.operators {
            if o.id.is_empty()
                || o.id.len() > 64
                || !o
                    .id
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"._-".contains(&c))
            {
                return Err(StationError::Bundle {
                    detail: format!("operator id {:?} is not 1-64 of [A-Za-z0-9._-]", o.id),
                });
            }
            if !ids.insert(o.id.as_str()) {
                return Err(StationError::Bundle {
                    detail: format!("operator {} appears twice", o.id),
                });
            }
            if o.roles.is_empty() {
                return Err(StationError::Bundle {
                    detail: format!("operator {} has no role", o.id),
                });
            }
            if !o.password_hash.starts_with("$argon2id$") {
                return Err(StationError::Bundle {
                    detail: format!("operator {}: password hash is not an Argon2id PHC string", o.id),
                });
            }
        }
        Ok(b)
    }

    /// The operator with this id.
    pub fn get(&self, id: &str) -> Option<&Operator> {
        self.operators.iter().find(|o| o.id == id)
    }
}

/// Hashes a password as an Argon2id PHC string (for bundles made by tools and tests).
pub fn hash_password(password: &str) -> Result<String> {
    use argon2::PasswordHasher;
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| StationError::Crypto {
            context: "hashing a password",
            detail: e.to_string(),
        })
}

/// Replaces the stored operator list with `bundle` (inside the caller's transaction).
pub fn store_bundle(conn: &Connection, bundle: &OperatorBundle, now: DateTime<Utc>) -> Result<()> {
    for o in &bundle.operators {
        let roles: Vec<&str> = o.roles.iter().map(|r| r.as_str()).collect();
        conn.execute(
            "INSERT INTO operators (id, name, roles, center_id, active, password_hash, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT(id) DO UPDATE SET name = ?2, roles = ?3, center_id = ?4, active = ?5, password_hash = ?6, updated_at = ?7",
            params![o.id, o.name, roles.join(","), o.center_id, o.active, o.password_hash, now.to_rfc3339()],
        )
        .map_err(StationError::db("storing operators"))?;
    }
    // Operators no longer in the list are deactivated, never deleted (their sign-offs stay attributable).
    let ids: Vec<&str> = bundle.operators.iter().map(|o| o.id.as_str()).collect();
    let mut st = conn
        .prepare("SELECT id FROM operators")
        .map_err(StationError::db("listing operators"))?;
    let existing: Vec<String> = st
        .query_map([], |r| r.get(0))
        .and_then(|rows| rows.collect())
        .map_err(StationError::db("listing operators"))?;
    for id in existing.iter().filter(|id| !ids.contains(&id.as_str())) {
        conn.execute(
            "UPDATE operators SET active = 0, updated_at = ?2 WHERE id = ?1",
            params![id, now.to_rfc3339()],
        )
        .map_err(StationError::db("deactivating an operator"))?;
    }
    Ok(())
}

/// Reads one operator.
pub fn get(conn: &Connection, id: &str) -> Result<Option<Operator>> {
    conn.query_row(
        "SELECT id, name, roles, center_id, active, password_hash FROM operators WHERE id = ?1",
        [id],
        |r| {
            let roles: String = r.get(2)?;
            Ok(Operator {
                id: r.get(0)?,
                name: r.get(1)?,
                roles: roles
                    .split(',')
                    .filter_map(|s| match s {
                        "officer" => Some(Role::Officer),
                        "supervisor" => Some(Role::Supervisor),
                        _ => None,
                    })
                    .collect(),
                center_id: r.get(3)?,
                active: r.get(4)?,
                password_hash: r.get(5)?,
            })
        },
    )
    .optional()
    .map_err(StationError::db("reading an operator"))
}

/// Records an operator's public signing key.
pub fn set_public_key(conn: &Connection, id: &str, public_key_hex: &str) -> Result<()> {
    conn.execute(
        "UPDATE operators SET public_key = ?2 WHERE id = ?1",
        params![id, public_key_hex],
    )
    .map_err(StationError::db("recording an operator's public key"))?;
    Ok(())
}
