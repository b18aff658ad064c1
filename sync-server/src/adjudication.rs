//! Manual adjudication: packets with dedupe candidates are held (`ON_HOLD`, job parked) until an
//! adjudicator decides `DUPLICATE` (the packet ends `DUPLICATE`, linked to the existing UIN) or
//! `NOT_DUPLICATE` (the packet proceeds to UIN issuance). The decision puts the job back in the queue; the
//! pipeline finishes the packet, so the outcome, notification and credential come from one code path.
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
    /// `DUPLICATE` or `NOT_DUPLICATE`.
    pub decision: String,
    /// For `DUPLICATE`: which candidate UIN it duplicates (defaults to the best candidate).
    #[serde(default)]
    pub duplicate_of: Option<String>,
}

/// Parses a case status filter.
pub fn parse_status(s: &str) -> Result<String, ApiError> {
    match s {
        case_status::PENDING | case_status::DUPLICATE | case_status::NOT_DUPLICATE => Ok(s.to_owned()),
        _ => Err(ApiError::bad_request(
            "invalid_status",
            "status must be PENDING, DUPLICATE or NOT_DUPLICATE",
        )),
    }
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
    let (status, duplicate_of) = match req.decision.as_str() {
        case_status::DUPLICATE => {
            let of = match &req.duplicate_of {
                Some(u) => {
                    if !case.candidates.iter().any(|c| &c.uin == u) {
                        return Err(ApiError::bad_request(
                            "not_a_candidate",
                            format!("{u} is not a candidate of packet {rid}; choose one of the listed UINs"),
                        ));
                    }
                    u.clone()
                }
                None => {
                    case.candidates.first().map(|c| c.uin.clone()).ok_or_else(|| {
                        ApiError::bad_request("not_a_candidate", "the case has no candidate")
                    })?
                }
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
    };
    let case = store
        .decide_adjudication(rid, status, duplicate_of, who, now)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::Conflict { .. } => ApiError::new(
                axum::http::StatusCode::CONFLICT,
                "already_decided",
                format!("packet {rid} was already decided"),
            ),
            other => other.into(),
        })?;
    tracing::info!(%rid, decision = status, by = who, "adjudication decided");
    Ok(case)
}
