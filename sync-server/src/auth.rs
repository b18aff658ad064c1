//! Authentication extractors: [`Signed`] for station requests (Ed25519 signature by the enrolled machine key
//! over method, target, timestamp, nonce and body digest; expiry and replay protection) and [`Admin`] for the
//! admin API and [`Adjudicator`] for the adjudication API (bearer tokens of two separate roles).
//!
//! Error codes (status): `auth_missing`, `auth_malformed` (401), `request_expired` (401), `machine_unknown`
//! (401), `signature_invalid` (401), `replayed_request` (401), `machine_pending` (403), `machine_suspended`
//! (403), `admin_auth_missing` / `admin_auth_invalid` (401), `body_too_large` (413).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, OriginalUri, Request};
use axum::http::{HeaderMap, StatusCode, request::Parts};
use sha2::Digest as _;
use subtle::ConstantTimeEq as _;
use tessera_packet::ids::MachineId;
use tessera_packet::wire::{self, MachineStatus, RequestAuth, headers};

use crate::AppState;
use crate::error::ApiError;
use crate::store::MachineRecord;

/// A station request whose signature, freshness and nonce checked out. With `ACTIVE = true` (the default)
/// the machine must also be approved and not suspended.
#[derive(Debug, Clone)]
pub struct Signed<const ACTIVE: bool = true> {
    /// The machine that signed.
    pub machine: MachineRecord,
    /// The request body (already hashed into the signature).
    pub body: Bytes,
    /// SHA-256 of the body (computed once for the signature; the upload reuses it).
    pub body_sha256: [u8; 32],
}

impl<const ACTIVE: bool> Signed<ACTIVE> {
    /// Parses the body as JSON of `T`, with a `malformed_body` error naming the problem.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, ApiError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            ApiError::bad_request("malformed_body", format!("the request body is not valid: {e}"))
        })
    }
}

fn header<'a>(h: &'a HeaderMap, name: &'static str) -> Result<&'a str, ApiError> {
    h.get(name)
        .ok_or_else(|| {
            ApiError::unauthorized(
                "auth_missing",
                format!("header {name} is missing; station requests must be signed"),
            )
        })?
        .to_str()
        .map_err(|_| ApiError::unauthorized("auth_malformed", format!("header {name} is not ASCII")))
}

pub(crate) fn parse_auth(h: &HeaderMap) -> Result<RequestAuth, ApiError> {
    let machine_id: MachineId = header(h, headers::MACHINE)?
        .parse()
        .map_err(|e| ApiError::unauthorized("auth_malformed", format!("header {}: {e}", headers::MACHINE)))?;
    let timestamp: i64 = header(h, headers::TIMESTAMP)?.parse().map_err(|_| {
        ApiError::unauthorized(
            "auth_malformed",
            format!("header {} must be Unix seconds", headers::TIMESTAMP),
        )
    })?;
    let nonce = header(h, headers::NONCE)?.to_owned();
    if !(16..=64).contains(&nonce.len()) || !nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::unauthorized(
            "auth_malformed",
            format!("header {} must be 16 to 64 hex characters", headers::NONCE),
        ));
    }
    let signature = header(h, headers::SIGNATURE)?.to_owned();
    Ok(RequestAuth {
        machine_id,
        timestamp,
        nonce,
        signature,
    })
}

/// Checks a station request; returns the machine whatever its status.
pub async fn authenticate(
    state: &AppState,
    method: &str,
    path_and_query: &str,
    h: &HeaderMap,
    body: &[u8],
) -> Result<MachineRecord, ApiError> {
    let digest: [u8; 32] = sha2::Sha256::digest(body).into();
    authenticate_digest(state, method, path_and_query, h, &digest).await
}

/// [`authenticate`] given the body's SHA-256.
pub async fn authenticate_digest(
    state: &AppState,
    method: &str,
    path_and_query: &str,
    h: &HeaderMap,
    body_sha256: &[u8; 32],
) -> Result<MachineRecord, ApiError> {
    let auth = parse_auth(h)?;
    let now = state.clock.now().timestamp();
    let window = i64::try_from(state.settings.request_validity_secs).unwrap_or(i64::MAX);
    let skew = auth.timestamp.saturating_sub(now);
    if skew.abs() > window {
        return Err(ApiError::unauthorized(
            "request_expired",
            format!(
                "the request was signed {skew} s from server time (allowed ±{window} s); sign again with a fresh \
                 timestamp, and correct the station clock using server_time from /api/v1/server-info"
            ),
        ));
    }
    let machine = state.store.machine(&auth.machine_id).await?.ok_or_else(|| {
        ApiError::unauthorized(
            "machine_unknown",
            format!("machine {} is not enrolled; enrol it first", auth.machine_id),
        )
    })?;
    let key = ed25519_dalek::VerifyingKey::from_bytes(&machine.public_key).map_err(|_| {
        ApiError::internal(format!("stored key of machine {} is invalid", machine.machine_id))
    })?;
    auth.verify_digest(&key, method, path_and_query, body_sha256).map_err(|e| {
        ApiError::unauthorized(
            "signature_invalid",
            "the request signature does not match the enrolled machine key, method, path, timestamp, nonce and body",
        )
        .with_detail(e.to_string())
    })?;
    let fresh = state
        .store
        .use_nonce(&machine.machine_id, &auth.nonce, auth.timestamp + window + 1, now)
        .await?;
    if !fresh {
        return Err(ApiError::unauthorized(
            "replayed_request",
            "this nonce was already used; sign each request with a new random nonce",
        ));
    }
    Ok(machine)
}

/// Refuses a machine that is not active.
pub fn require_active(machine: &MachineRecord) -> Result<(), ApiError> {
    match machine.status {
        MachineStatus::Active => Ok(()),
        MachineStatus::Pending => Err(ApiError::forbidden(
            "machine_pending",
            format!(
                "machine {} is waiting for an administrator's approval",
                machine.machine_id
            ),
        )),
        MachineStatus::Suspended => Err(ApiError::forbidden(
            "machine_suspended",
            format!(
                "machine {} is suspended; contact the registration administrator",
                machine.machine_id
            ),
        )),
    }
}

impl<const ACTIVE: bool> FromRequest<AppState> for Signed<ACTIVE> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        let uri = parts
            .extensions
            .get::<OriginalUri>()
            .map_or_else(|| parts.uri.clone(), |u| u.0.clone());
        let target = uri.path_and_query().map_or(uri.path(), |p| p.as_str()).to_owned();
        let limit = usize::try_from(state.settings.max_chunk_bytes).unwrap_or(usize::MAX);
        let body = axum::body::to_bytes(body, limit).await.map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the request body exceeds {limit} bytes; send smaller chunks"),
            )
        })?;
        // A large chunk is hashed off the async threads.
        let (body, body_sha256) = if body.len() > 64 * 1024 {
            tokio::task::spawn_blocking(move || {
                let d: [u8; 32] = sha2::Sha256::digest(&body).into();
                (body, d)
            })
            .await
            .map_err(|e| ApiError::internal(format!("hashing the body: {e}")))?
        } else {
            let d: [u8; 32] = sha2::Sha256::digest(&body).into();
            (body, d)
        };
        let machine = authenticate_digest(
            state,
            parts.method.as_str(),
            &target,
            &parts.headers,
            &body_sha256,
        )
        .await?;
        if ACTIVE {
            require_active(&machine)?;
        }
        Ok(Self {
            machine,
            body,
            body_sha256,
        })
    }
}

/// The role a bearer token grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The admin token (`admin.token`): machines, UIN pool, credentials.
    Admin,
    /// The adjudicator token (`adjudicator.token`): adjudication cases only.
    Adjudicator,
}

impl Role {
    /// Name recorded with decisions.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Adjudicator => "adjudicator",
        }
    }
}

fn bearer_role(parts: &Parts, state: &AppState) -> Result<Role, ApiError> {
    let value = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            ApiError::unauthorized(
                "admin_auth_missing",
                "send the admin or adjudicator token as `Authorization: Bearer <token>`",
            )
        })?;
    let value = value.trim().as_bytes();
    if bool::from(value.ct_eq(state.keys.admin_token.expose().as_bytes())) {
        Ok(Role::Admin)
    } else if bool::from(value.ct_eq(state.keys.adjudicator_token.expose().as_bytes())) {
        Ok(Role::Adjudicator)
    } else {
        Err(ApiError::unauthorized("admin_auth_invalid", "the token is wrong"))
    }
}

/// An admin API caller (bearer token matched in constant time). The adjudicator token is refused with
/// `role_forbidden` (403).
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match bearer_role(parts, state)? {
            Role::Admin => Ok(Admin),
            Role::Adjudicator => Err(ApiError::forbidden(
                "role_forbidden",
                "the adjudicator token cannot use the admin API; use the admin token",
            )),
        }
    }
}

/// An adjudication API caller: the adjudicator token only (separation of duties: the admin token gets
/// `role_forbidden`, 403).
#[derive(Debug, Clone, Copy)]
pub struct Adjudicator;

impl FromRequestParts<AppState> for Adjudicator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match bearer_role(parts, state)? {
            Role::Adjudicator => Ok(Adjudicator),
            Role::Admin => Err(ApiError::forbidden(
                "role_forbidden",
                "adjudication needs the adjudicator token (<data_dir>/adjudicator.token), not the admin token",
            )),
        }
    }
}

/// Signs `body` with the server key for [`headers::SERVER_SIGNATURE`].
pub fn server_signature(state: &AppState, body: &[u8]) -> String {
    use ed25519_dalek::Signer as _;
    wire::encode_b64(&state.keys.signing.sign(body).to_bytes())
}
