//! Manual adjudication: packets with dedupe candidates are held (`ON_HOLD`, job parked) until an
//! adjudicator decides `DUPLICATE` (the packet ends `DUPLICATE`, linked to the existing UIN) or
//! `NOT_DUPLICATE` (the packet proceeds to UIN issuance). The decision puts the job back in the queue; the
//! pipeline finishes the packet, so the outcome, notification and credential come from one code path.
//!
//! LOST packets whose fingers match several identities are held the same way (`ON_HOLD`, `lost:ambiguous`);
//! their case is decided `FOUND` with the candidate UIN that is the resident (the UIN then goes to the
//! resident through the outbox, the packet ends `PROCESSED`, `lost:found`) or `NOT_FOUND` (the packet ends
//! `REJECTED`, `lost:not_found`, resident notified). NEW decisions are refused on LOST cases and the other
//! way round (`invalid_decision`).
//!
//! Responses show the RID, the candidate UINs, their kind and scores: what an adjudicator needs to open
//! the records side by side in the ID repository. No demographics or biometrics are returned or logged.

use serde::Deserialize;
use tessera_packet::ids::Rid;

use crate::error::ApiError;
use crate::store::{AdjudicationCase, Store, case_status};

/// A decision as posted to `POST /api/v1/admin/adjudication/{rid}/decision`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    /// NEW cases: `DUPLICATE` or `NOT_DUPLICATE`; LOST cases: `FOUND` or `NOT_FOUND`.
    pub decision: String,
    /// For `DUPLICATE`: which candidate UIN it duplicates (defaults to the best candidate).
    #[serde(default)]
    pub duplicate_of: Option<String>,
    /// For `FOUND`: which candidate UIN is the resident's (required).
    #[serde(default)]
    pub uin: Option<String>,
}

/// Decisions of LOST cases (stored as the case status; the found UIN in `duplicate_of`).
pub mod lost_status {
    /// The resident is the identity with the chosen candidate UIN.
    pub const FOUND: &str = "FOUND";
    /// None of the candidates is the resident.
    pub const NOT_FOUND: &str = "NOT_FOUND";
}

/// The hold reason of LOST packets with several matching identities.
pub const LOST_AMBIGUOUS: &str = "lost:ambiguous";

/// Parses a case status filter.
pub fn parse_status(s: &str) -> Result<String, ApiError> {
    match s {
        case_status::PENDING
        | case_status::DUPLICATE
        | case_status::NOT_DUPLICATE
        | lost_status::FOUND
        | lost_status::NOT_FOUND => Ok(s.to_owned()),
        _ => Err(ApiError::bad_request(
            "invalid_status",
            "status must be PENDING, DUPLICATE, NOT_DUPLICATE, FOUND or NOT_FOUND",
        )),
    }
}

fn candidate(case: &AdjudicationCase, rid: &Rid, uin: &str) -> Result<String, ApiError> {
    if case.candidates.iter().any(|c| c.uin == uin) {
        Ok(uin.to_owned())
    } else {
        Err(ApiError::bad_request(
            "not_a_candidate",
            format!("{uin} is not a candidate of packet {rid}; choose one of the listed UINs"),
        ))
    }
}

/// The stored status and UIN of a LOST case's decision.
fn lost_decision(
    case: &AdjudicationCase,
    rid: &Rid,
    req: &DecisionRequest,
) -> Result<(&'static str, Option<String>), ApiError> {
    if req.duplicate_of.is_some() {
        return Err(ApiError::bad_request(
            "malformed_body",
            "a LOST case is decided with {\"decision\": \"FOUND\", \"uin\": \"<candidate UIN>\"} or {\"decision\": \"NOT_FOUND\"}",
        ));
    }
    match req.decision.as_str() {
        lost_status::FOUND => {
            let uin = req.uin.as_deref().ok_or_else(|| {
                ApiError::bad_request(
                    "malformed_body",
                    "FOUND needs the resident's UIN: {\"uin\": \"<candidate UIN>\"}",
                )
            })?;
            Ok((lost_status::FOUND, Some(candidate(case, rid, uin)?)))
        }
        lost_status::NOT_FOUND if req.uin.is_none() => Ok((lost_status::NOT_FOUND, None)),
        lost_status::NOT_FOUND => Err(ApiError::bad_request(
            "malformed_body",
            "uin goes with FOUND only",
        )),
        _ => Err(ApiError::bad_request(
            "invalid_decision",
            format!(
                "packet {rid} is a LOST request held with several matching identities: decide FOUND (with uin) or NOT_FOUND"
            ),
        )),
    }
}

fn already_decided(rid: &Rid) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::CONFLICT,
        "already_decided",
        format!("packet {rid} was already decided"),
    )
}

/// Records a decision by `who` (the role of the token).
pub async fn decide(
    store: &dyn Store,
    rid: &Rid,
    req: &DecisionRequest,
    who: &str,
    now: i64,
) -> Result<AdjudicationCase, ApiError> {
    let case = store
        .adjudication_case(rid)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no adjudication case for packet {rid}")))?;
    if case.status != case_status::PENDING {
        return Err(already_decided(rid));
    }
    let held_reason = store.packet(rid).await?.and_then(|p| p.reason);
    let (status, duplicate_of) = if held_reason.as_deref() == Some(LOST_AMBIGUOUS) {
        lost_decision(&case, rid, req)?
    } else {
        if req.uin.is_some() {
            return Err(ApiError::bad_request(
                "malformed_body",
                "uin goes with a LOST case's FOUND decision; a NEW case takes duplicate_of",
            ));
        }
        match req.decision.as_str() {
            case_status::DUPLICATE => {
                let of = match &req.duplicate_of {
                    Some(u) => candidate(&case, rid, u)?,
                    None => case.candidates.first().map(|c| c.uin.clone()).ok_or_else(|| {
                        ApiError::bad_request("not_a_candidate", "the case has no candidate")
                    })?,
                };
                (case_status::DUPLICATE, Some(of))
            }
            case_status::NOT_DUPLICATE => {
                if req.duplicate_of.is_some() {
                    return Err(ApiError::bad_request(
                        "malformed_body",
                        "duplicate_of goes with DUPLICATE only",
                    ));
                }
                (case_status::NOT_DUPLICATE, None)
            }
            _ => {
                return Err(ApiError::bad_request(
                    "invalid_decision",
                    "decision must be DUPLICATE or NOT_DUPLICATE",
                ));
            }
        }
    };
    let case = store
        .decide_adjudication(rid, status, duplicate_of, who, now)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::Conflict { .. } => already_decided(rid),
            other => other.into(),
        })?;
    tracing::info!(%rid, decision = status, by = who, "adjudication decided");
    Ok(case)
}
