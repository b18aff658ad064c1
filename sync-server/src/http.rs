//! The HTTP layer: router, handlers (extract, authorise, call one service, map the result), request-id and
//! metrics middleware, and the OpenAPI document.

use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, head, post, put};
use serde::{Deserialize, Serialize};
use tessera_packet::ids::Rid;
use tessera_packet::wire::{
    self, EnrolmentRequest, EnrolmentResponse, MachineStatus, PacketStatusResponse, ServerInfo, SyncKind,
    headers,
};
use tracing::Instrument as _;
use utoipa::OpenApi;

use crate::AppState;
use crate::auth::{Adjudicator, Admin, Role, Signed, server_signature};
use crate::error::{ApiError, REQUEST_ID};
use crate::{adjudication, admin, machines, operators, sync, upload};

/// A JSON body with the server's signature of its exact bytes in [`headers::SERVER_SIGNATURE`].
pub fn signed_body(state: &AppState, status: StatusCode, body: Vec<u8>) -> Response {
    let sig = server_signature(state, &body);
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(v) = HeaderValue::from_str(&sig) {
        h.insert(headers::SERVER_SIGNATURE, v);
    }
    resp
}

/// Serialises `value` and signs it.
pub fn signed_json<T: Serialize>(
    state: &AppState,
    status: StatusCode,
    value: &T,
) -> Result<Response, ApiError> {
    let body = serde_json::to_vec(value).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(signed_body(state, status, body))
}

fn valid_request_id(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?;
    (1..=64).contains(&s.len()).then_some(())?;
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        .then(|| s.to_owned())
}

async fn request_context(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(headers::REQUEST_ID)
        .and_then(valid_request_id)
        .or_else(|| crate::keys::random_hex::<12>().ok())
        .unwrap_or_else(|| "unavailable".to_owned());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let method = req.method().as_str().to_owned();
    let started = Instant::now();
    let span = tracing::info_span!("request", method = %method, route = %route, request_id = %id);
    let mut resp = REQUEST_ID.scope(id.clone(), next.run(req).instrument(span)).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(headers::REQUEST_ID, v);
    }
    let secs = started.elapsed().as_secs_f64();
    let status = resp.status().as_u16();
    state.metrics.observe(&method, &route, status, secs);
    tracing::info!(method = %method, route = %route, status, latency_ms = secs * 1000.0, request_id = %id, "served");
    resp
}

/// Builds the router.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/openapi.json", get(openapi))
        .route("/api/v1/server-info", get(server_info))
        .route("/api/v1/machines/enrol", post(enrol))
        .route("/api/v1/machines/me", get(machine_me))
        .route("/api/v1/sync/{kind}", get(sync_page))
        .route("/api/v1/uploads", post(upload_create).options(upload_options))
        .route("/api/v1/uploads/{id}", head(upload_head).patch(upload_patch))
        .route("/api/v1/packets/{rid}/status", get(packet_status))
        .route("/api/v1/packets/{rid}/receipt", get(packet_receipt))
        .route("/api/v1/admin/machines", get(admin_list_machines))
        .route("/api/v1/admin/machines/{id}/approve", post(admin_approve))
        .route("/api/v1/admin/machines/{id}/suspend", post(admin_suspend))
        .route("/api/v1/admin/uin-pool", get(admin_uin_pool))
        .route("/api/v1/operators/keys", post(operator_key))
        .route("/api/v1/admin/adjudication", get(adjudication_list))
        .route("/api/v1/admin/adjudication/{rid}", get(adjudication_get))
        .route(
            "/api/v1/admin/adjudication/{rid}/decision",
            post(adjudication_decide),
        )
        .route("/api/v1/admin/credentials/{rid}", get(admin_credential))
        .route(
            "/api/v1/admin/operators",
            get(admin_operators).post(admin_publish_operators),
        )
        .route("/api/v1/admin/operators/{id}", delete(admin_revoke_operator))
        .route("/api/v1/admin/certificates", get(admin_certificates))
        .route(
            "/api/v1/admin/certificates/{id}",
            put(admin_publish_certificate).delete(admin_revoke_certificate),
        )
        .route("/api/v1/admin/country-config", post(admin_country_config))
        .route("/api/v1/admin/packet-keys", get(admin_packet_keys))
        .route("/api/v1/admin/packet-keys/rotate", post(admin_rotate_packet_key))
        .route("/api/v1/admin/packets", get(admin_packets))
        .route("/api/v1/admin/packets/{rid}", get(admin_packet))
        .route("/api/v1/admin/packets/{rid}/reprocess", post(admin_reprocess))
        .route(
            "/api/v1/admin/status-history/{kind}/{id}",
            get(admin_status_history),
        )
        .fallback(fallback);
    api.layer(axum::middleware::from_fn_with_state(
        state.clone(),
        request_context,
    ))
    .layer(axum::extract::DefaultBodyLimit::disable())
    .with_state(state)
}

/// A query string, or `malformed_query` naming what is wrong.
fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(v)| v)
        .map_err(|e| ApiError::bad_request("malformed_query", e.body_text()))
}

/// Largest body of an admin request (operators, certificates, configuration requests).
const ADMIN_BODY_LIMIT: usize = 4 * 1024 * 1024;

/// An admin request body, at most [`ADMIN_BODY_LIMIT`] bytes (`body_too_large`, 413).
fn admin_body(b: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    let b = b.map_err(|e| ApiError::bad_request("malformed_body", e.body_text()))?;
    if b.len() > ADMIN_BODY_LIMIT {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("admin request bodies are limited to {ADMIN_BODY_LIMIT} bytes"),
        ));
    }
    Ok(b)
}

/// A JSON admin body of type `T`, or `malformed_body` with `expected` and the parser's message.
fn admin_json<T: serde::de::DeserializeOwned>(
    b: Result<Bytes, BytesRejection>,
    expected: &str,
) -> Result<T, ApiError> {
    let b = admin_body(b)?;
    serde_json::from_slice(&b)
        .map_err(|e| ApiError::bad_request("malformed_body", format!("expected {expected}: {e}")))
}

async fn fallback() -> ApiError {
    ApiError::not_found("no such endpoint; see /api/openapi.json")
}

#[derive(Debug, Serialize)]
struct Health {
    status: &'static str,
}

/// Liveness: the process serves requests.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, description = "alive")))]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: the database answers.
#[utoipa::path(get, path = "/readyz", tag = "ops",
    responses((status = 200, description = "ready"), (status = 503, description = "database unavailable")))]
async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    state.store.ping().await.map_err(|e| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "the database does not answer",
        )
        .with_detail(e.to_string())
    })?;
    Ok(Json(Health { status: "ready" }))
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(get, path = "/metrics", tag = "ops", responses((status = 200, description = "metrics")))]
async fn metrics(State(state): State<AppState>) -> Response {
    let free = state.store.uins_available().await.map_or(-1.0, |n| n as f64);
    let body = state
        .metrics
        .render(&[("tessera_uin_pool_available", "Free UINs in the pool.", free)]);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// This OpenAPI document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "ops", responses((status = 200, description = "OpenAPI 3.1")))]
async fn openapi() -> Response {
    match ApiDoc::openapi().to_json() {
        Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        Err(e) => ApiError::internal(e.to_string()).into_response(),
    }
}

/// Server time, signing key and limits (`wire::ServerInfo`); signed.
#[utoipa::path(get, path = "/api/v1/server-info", tag = "station", responses((status = 200, description = "wire::ServerInfo")))]
async fn server_info(State(state): State<AppState>) -> Result<Response, ApiError> {
    let info = ServerInfo {
        api_version: wire::API_VERSION.to_owned(),
        server_time: state.clock.now(),
        signing_public_key: wire::encode_b64(state.keys.signing.verifying_key().as_bytes()),
        max_packet_bytes: state.settings.max_packet_bytes,
        request_validity_secs: state.settings.request_validity_secs,
    };
    signed_json(&state, StatusCode::OK, &info)
}

/// Requests enrolment of a machine key (`wire::EnrolmentRequest` → `wire::EnrolmentResponse`).
#[utoipa::path(post, path = "/api/v1/machines/enrol", tag = "station",
    responses((status = 201, description = "enrolment recorded, pending approval"),
              (status = 200, description = "key already enrolled"),
              (status = 400, description = "malformed_body, enrolment_proof_invalid, invalid_machine_name")))]
async fn enrol(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let req: EnrolmentRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(
            "malformed_body",
            format!("the enrolment request is not valid: {e}"),
        )
    })?;
    let (m, new) = machines::enrol(state.store.as_ref(), &req, state.clock.now().timestamp()).await?;
    let status = if new { StatusCode::CREATED } else { StatusCode::OK };
    signed_json(
        &state,
        status,
        &EnrolmentResponse {
            machine_id: m.machine_id,
            status: m.status,
        },
    )
}

/// The calling machine's record, whatever its status (signed request).
#[utoipa::path(get, path = "/api/v1/machines/me", tag = "station", responses((status = 200, description = "wire::MachineInfo")))]
async fn machine_me(State(state): State<AppState>, req: Signed<false>) -> Result<Response, ApiError> {
    signed_json(&state, StatusCode::OK, &machines::info(&req.machine))
}

/// Query of a sync page.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SyncQuery {
    cursor: Option<String>,
    limit: Option<u32>,
}

/// Changes of one kind after a cursor (`wire::SyncPage`; signed request, signed response).
#[utoipa::path(get, path = "/api/v1/sync/{kind}", tag = "station",
    params(("kind" = String, Path, description = "id-schema, ui-spec, master-data, operators, certificates, packet-keys, pre-registrations"),
           ("cursor" = Option<String>, Query, description = "opaque cursor from the previous page"),
           ("limit" = Option<u32>, Query, description = "page size (capped by the server)")),
    responses((status = 200, description = "wire::SyncPage"), (status = 400, description = "unknown_sync_kind, bad_cursor")))]
async fn sync_page(
    State(state): State<AppState>,
    Path(kind): Path<String>,
    q: Result<Query<SyncQuery>, QueryRejection>,
    req: Signed,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let kind = SyncKind::parse(&kind).ok_or_else(|| {
        ApiError::bad_request(
            "unknown_sync_kind",
            format!("{kind:?} is not a sync kind; see SyncKind in the API docs"),
        )
    })?;
    let limit = q
        .limit
        .unwrap_or(state.settings.sync_page_limit)
        .clamp(1, state.settings.sync_page_limit);
    let page = sync::page(
        state.store.as_ref(),
        kind,
        req.machine.center_id.as_str(),
        q.cursor.as_deref(),
        limit,
    )
    .await
    .map_err(|e| match e {
        sync::SyncError::BadCursor(_) => ApiError::bad_request("bad_cursor", e.to_string()),
        sync::SyncError::Store(s) => s.into(),
        other => ApiError::internal(other.to_string()),
    })?;
    signed_json(&state, StatusCode::OK, &page)
}

/// tus discovery.
#[utoipa::path(options, path = "/api/v1/uploads", tag = "upload", responses((status = 204, description = "tus capabilities")))]
async fn upload_options(State(state): State<AppState>) -> Response {
    upload::options(&state)
}

/// tus creation: starts (or finds again) the upload of one packet.
#[utoipa::path(post, path = "/api/v1/uploads", tag = "upload",
    responses((status = 201, description = "created; Location and Upload-Offset"),
              (status = 413, description = "packet_too_large"), (status = 429, description = "quota_exceeded"),
              (status = 409, description = "rid_conflict"), (status = 403, description = "rid_machine_mismatch")))]
async fn upload_create(
    State(state): State<AppState>,
    headers: HeaderMap,
    req: Signed,
) -> Result<Response, ApiError> {
    upload::create(&state, &req.machine, &headers).await
}

/// tus offset query.
#[utoipa::path(head, path = "/api/v1/uploads/{id}", tag = "upload", params(("id" = String, Path, description = "upload id")),
    responses((status = 200, description = "Upload-Offset, Upload-Length")))]
async fn upload_head(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Signed,
) -> Result<Response, ApiError> {
    upload::head(&state, &req.machine, &id).await
}

/// tus append (with the checksum extension). The completing chunk answers 200 with `wire::SignedReceipt`.
#[utoipa::path(patch, path = "/api/v1/uploads/{id}", tag = "upload", params(("id" = String, Path, description = "upload id")),
    responses((status = 204, description = "chunk stored"), (status = 200, description = "packet complete: wire::SignedReceipt"),
              (status = 409, description = "offset_mismatch"), (status = 460, description = "checksum_mismatch, packet_checksum_mismatch"),
              (status = 423, description = "upload_busy"), (status = 413, description = "upload_exceeds_length, body_too_large")))]
async fn upload_patch(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    req: Signed,
) -> Result<Response, ApiError> {
    upload::patch(&state, &req.machine, &id, &headers, req.body, req.body_sha256).await
}

fn own_rid(req: &Signed, rid: &str) -> Result<Rid, ApiError> {
    let rid: Rid = rid
        .parse()
        .map_err(|e| ApiError::bad_request("invalid_rid", format!("{e}")))?;
    if rid.machine_id() != req.machine.machine_id {
        return Err(ApiError::not_found(format!(
            "packet {rid} not found for this machine"
        )));
    }
    Ok(rid)
}

/// Status of one packet (`wire::PacketStatusResponse`).
#[utoipa::path(get, path = "/api/v1/packets/{rid}/status", tag = "station", params(("rid" = String, Path, description = "RID")),
    responses((status = 200, description = "wire::PacketStatusResponse"), (status = 404, description = "not received")))]
async fn packet_status(
    State(state): State<AppState>,
    Path(rid): Path<String>,
    req: Signed,
) -> Result<Response, ApiError> {
    let rid = own_rid(&req, &rid)?;
    let p = state.store.packet(&rid).await?.ok_or_else(|| {
        ApiError::not_found(format!(
            "packet {rid} has not been completely received; upload it"
        ))
    })?;
    let resp = PacketStatusResponse {
        rid,
        status: p.status,
        reason: p.reason,
        updated_at: chrono::DateTime::from_timestamp(p.updated_at, 0).unwrap_or_default(),
    };
    signed_json(&state, StatusCode::OK, &resp)
}

/// The signed receipt of a received packet (`wire::SignedReceipt`).
#[utoipa::path(get, path = "/api/v1/packets/{rid}/receipt", tag = "station", params(("rid" = String, Path, description = "RID")),
    responses((status = 200, description = "wire::SignedReceipt"), (status = 404, description = "not received")))]
async fn packet_receipt(
    State(state): State<AppState>,
    Path(rid): Path<String>,
    req: Signed,
) -> Result<Response, ApiError> {
    let rid = own_rid(&req, &rid)?;
    upload::receipt_response(&state, &rid).await
}

/// Query of the admin machine list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MachineQuery {
    status: Option<String>,
}

/// Machines, optionally by status (admin token).
#[utoipa::path(get, path = "/api/v1/admin/machines", tag = "admin",
    params(("status" = Option<String>, Query, description = "PENDING, ACTIVE or SUSPENDED")),
    responses((status = 200, description = "array of wire::MachineInfo")))]
async fn admin_list_machines(
    State(state): State<AppState>,
    _admin: Admin,
    q: Result<Query<MachineQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let status = q
        .status
        .map(|s| {
            MachineStatus::parse(&s).ok_or_else(|| {
                ApiError::bad_request("invalid_status", "status must be PENDING, ACTIVE or SUSPENDED")
            })
        })
        .transpose()?;
    let list: Vec<_> = state
        .store
        .list_machines(status)
        .await?
        .iter()
        .map(machines::info)
        .collect();
    Ok(Json(list).into_response())
}

/// Approves (or reactivates) a machine (admin token).
#[utoipa::path(post, path = "/api/v1/admin/machines/{id}/approve", tag = "admin", params(("id" = String, Path, description = "machine id")),
    responses((status = 200, description = "wire::MachineInfo"), (status = 404, description = "not_found")))]
async fn admin_approve(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let m = machines::set_status(
        state.store.as_ref(),
        &id,
        MachineStatus::Active,
        None,
        state.clock.now().timestamp(),
    )
    .await?;
    Ok(Json(machines::info(&m)).into_response())
}

/// Body of a suspension.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SuspendBody {
    reason: String,
}

/// Suspends a machine with a reason (admin token).
#[utoipa::path(post, path = "/api/v1/admin/machines/{id}/suspend", tag = "admin", params(("id" = String, Path, description = "machine id")),
    responses((status = 200, description = "wire::MachineInfo"), (status = 400, description = "reason_required")))]
async fn admin_suspend(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let b: SuspendBody = admin_json(body, "{\"reason\": \"...\"}")?;
    let m = machines::set_status(
        state.store.as_ref(),
        &id,
        MachineStatus::Suspended,
        Some(b.reason),
        state.clock.now().timestamp(),
    )
    .await?;
    Ok(Json(machines::info(&m)).into_response())
}

#[derive(Debug, Serialize)]
struct PoolInfo {
    available: u64,
}

/// Free UINs in the pool (admin token).
#[utoipa::path(get, path = "/api/v1/admin/uin-pool", tag = "admin", responses((status = 200, description = "{\"available\": n}")))]
async fn admin_uin_pool(State(state): State<AppState>, _admin: Admin) -> Result<Json<PoolInfo>, ApiError> {
    Ok(Json(PoolInfo {
        available: state.store.uins_available().await?,
    }))
}

#[derive(Debug, Serialize)]
struct OperatorKeyResponse {
    operator_id: String,
    new: bool,
}

/// Registers an operator's sign-off key (`wire::OperatorKeyRegistration`; signed request, signed response).
#[utoipa::path(post, path = "/api/v1/operators/keys", tag = "station",
    responses((status = 201, description = "registered"), (status = 200, description = "already registered"),
              (status = 400, description = "malformed_body, invalid_operator_id, operator_key_proof_invalid")))]
async fn operator_key(State(state): State<AppState>, req: Signed) -> Result<Response, ApiError> {
    let body: wire::OperatorKeyRegistration = req.json()?;
    let new = operators::register(
        state.store.as_ref(),
        &req.machine,
        &body,
        state.clock.now().timestamp(),
    )
    .await?;
    let status = if new { StatusCode::CREATED } else { StatusCode::OK };
    signed_json(
        &state,
        status,
        &OperatorKeyResponse {
            operator_id: body.operator_id,
            new,
        },
    )
}

/// Query of the adjudication list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseQuery {
    status: Option<String>,
}

/// Adjudication cases, oldest first (adjudicator token).
#[utoipa::path(get, path = "/api/v1/admin/adjudication", tag = "adjudication",
    params(("status" = Option<String>, Query, description = "PENDING (default), DUPLICATE, NOT_DUPLICATE or ALL")),
    responses((status = 200, description = "array of cases: rid, status, candidates [{uin, kind, score, fingers_compared}]"),
              (status = 403, description = "role_forbidden")))]
async fn adjudication_list(
    State(state): State<AppState>,
    _who: Adjudicator,
    q: Result<Query<CaseQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let status = match q.status.as_deref() {
        None => Some(crate::store::case_status::PENDING.to_owned()),
        Some("ALL") => None,
        Some(s) => Some(adjudication::parse_status(s)?),
    };
    Ok(Json(state.store.adjudication_cases(status).await?).into_response())
}

fn parse_rid(rid: &str) -> Result<Rid, ApiError> {
    rid.parse()
        .map_err(|e| ApiError::bad_request("invalid_rid", format!("{e}")))
}

/// One adjudication case (adjudicator token).
#[utoipa::path(get, path = "/api/v1/admin/adjudication/{rid}", tag = "adjudication", params(("rid" = String, Path, description = "RID")),
    responses((status = 200, description = "the case"), (status = 404, description = "not_found")))]
async fn adjudication_get(
    State(state): State<AppState>,
    _who: Adjudicator,
    Path(rid): Path<String>,
) -> Result<Response, ApiError> {
    let rid = parse_rid(&rid)?;
    let case = state
        .store
        .adjudication_case(&rid)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no adjudication case for packet {rid}")))?;
    Ok(Json(case).into_response())
}

/// Decides a case: NEW packets `{"decision": "DUPLICATE", "duplicate_of": "<candidate UIN>"}` or
/// `{"decision": "NOT_DUPLICATE"}`; LOST packets held `lost:ambiguous` `{"decision": "FOUND", "uin":
/// "<candidate UIN>"}` or `{"decision": "NOT_FOUND"}` (adjudicator token).
#[utoipa::path(post, path = "/api/v1/admin/adjudication/{rid}/decision", tag = "adjudication", params(("rid" = String, Path, description = "RID")),
    responses((status = 200, description = "the decided case; the packet is queued to finish"),
              (status = 400, description = "malformed_body, invalid_decision, not_a_candidate"),
              (status = 404, description = "not_found"), (status = 409, description = "already_decided")))]
async fn adjudication_decide(
    State(state): State<AppState>,
    _who: Adjudicator,
    Path(rid): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let rid = parse_rid(&rid)?;
    let body = admin_body(body)?;
    let req: adjudication::DecisionRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(
            "malformed_body",
            format!("expected {{\"decision\": \"DUPLICATE\" | \"NOT_DUPLICATE\", \"duplicate_of\"?: \"<UIN>\"}} or, for a LOST case, {{\"decision\": \"FOUND\" | \"NOT_FOUND\", \"uin\"?: \"<UIN>\"}}: {e}"),
        )
    })?;
    let case = adjudication::decide(
        state.store.as_ref(),
        &rid,
        &req,
        Role::Adjudicator.as_str(),
        state.clock.now().timestamp(),
    )
    .await?;
    Ok(Json(case).into_response())
}

/// The signed credential issued for a packet (admin token; it holds personal data).
#[utoipa::path(get, path = "/api/v1/admin/credentials/{rid}", tag = "admin", params(("rid" = String, Path, description = "RID")),
    responses((status = 200, description = "the W3C VC-style credential"), (status = 404, description = "not_found")))]
async fn admin_credential(
    State(state): State<AppState>,
    _admin: Admin,
    Path(rid): Path<String>,
) -> Result<Response, ApiError> {
    let rid = parse_rid(&rid)?;
    let (_, body) = state
        .store
        .credential(&rid)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no credential for packet {rid}")))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// Query of the operator list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OperatorQuery {
    center: Option<String>,
}

/// Published operators, optionally of one center, without their password hashes (admin token).
#[utoipa::path(get, path = "/api/v1/admin/operators", tag = "admin",
    params(("center" = Option<String>, Query, description = "5-digit center id")),
    responses((status = 200, description = "array of {id, center_id, roles, active, version}"),
              (status = 400, description = "invalid_center_id, malformed_query")))]
async fn admin_operators(
    State(state): State<AppState>,
    _admin: Admin,
    q: Result<Query<OperatorQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let list = admin::list_operators(state.store.as_ref(), q.center.as_deref()).await?;
    Ok(Json(list).into_response())
}

/// Publishes operators to the stations of their centers, in one transaction: one operator record
/// (`{"id", "name", "roles", "centerId", "active", "passwordHash"}`), a list of them, or a station bundle
/// `{"version", "operators": [...]}` (admin token).
#[utoipa::path(post, path = "/api/v1/admin/operators", tag = "admin",
    responses((status = 200, description = "array of {id, center_id, changed, moved_from?}"),
              (status = 400, description = "malformed_body, invalid_operator_id, invalid_operator_name, invalid_roles, invalid_center_id, invalid_password_hash, duplicate_operator, unknown_center"),
              (status = 413, description = "body_too_large")))]
async fn admin_publish_operators(
    State(state): State<AppState>,
    _admin: Admin,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let ops = admin::parse_operators(&admin_body(body)?)?;
    Ok(Json(admin::publish_operators(state.store.as_ref(), ops).await?).into_response())
}

#[derive(Debug, Serialize)]
struct Revoked {
    id: String,
    revoked_from: Vec<String>,
}

/// Revokes an operator: stations of every center drop the account at their next sync (admin token).
#[utoipa::path(delete, path = "/api/v1/admin/operators/{id}", tag = "admin", params(("id" = String, Path, description = "operator id")),
    responses((status = 200, description = "{id, revoked_from: [center ids]}"),
              (status = 400, description = "invalid_operator_id"), (status = 404, description = "not_found")))]
async fn admin_revoke_operator(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let revoked_from = admin::revoke_operator(state.store.as_ref(), &id).await?;
    Ok(Json(Revoked { id, revoked_from }).into_response())
}

/// Published device-provider CA certificates (admin token).
#[utoipa::path(get, path = "/api/v1/admin/certificates", tag = "admin",
    responses((status = 200, description = "array of {id, subjects, version}")))]
async fn admin_certificates(State(state): State<AppState>, _admin: Admin) -> Result<Response, ApiError> {
    Ok(Json(admin::list_certificates(state.store.as_ref()).await?).into_response())
}

/// Body of a certificate publication.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CertificateBody {
    pem: String,
}

/// Publishes (or replaces) a device-provider CA certificate `{"pem": "-----BEGIN CERTIFICATE-----..."}`;
/// the server and stations then accept biometrics signed by that provider's devices (admin token).
#[utoipa::path(put, path = "/api/v1/admin/certificates/{id}", tag = "admin", params(("id" = String, Path, description = "certificate id")),
    responses((status = 200, description = "{id, subjects, version}"),
              (status = 400, description = "malformed_body, invalid_certificate_id, invalid_certificate"),
              (status = 413, description = "body_too_large")))]
async fn admin_publish_certificate(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let b: CertificateBody = admin_json(body, "{\"pem\": \"-----BEGIN CERTIFICATE-----...\"}")?;
    let view = admin::publish_certificate(state.store.as_ref(), &id, &b.pem).await?;
    *state.rules.write().await = None;
    Ok(Json(view).into_response())
}

/// Revokes a device-provider CA certificate: biometrics signed under it are refused from now on (admin
/// token).
#[utoipa::path(delete, path = "/api/v1/admin/certificates/{id}", tag = "admin", params(("id" = String, Path, description = "certificate id")),
    responses((status = 200, description = "{id, revoked_from: []}"), (status = 404, description = "not_found")))]
async fn admin_revoke_certificate(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    admin::revoke_certificate(state.store.as_ref(), &id).await?;
    *state.rules.write().await = None;
    Ok(Json(Revoked {
        id,
        revoked_from: Vec::new(),
    })
    .into_response())
}

/// Body of a country-configuration reload.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigBody {
    #[serde(default)]
    folder: Option<std::path::PathBuf>,
    #[serde(default)]
    dry_run: bool,
}

/// Reloads the country configuration (ID schema, UI specs, master data) from a folder on the server
/// (`{"folder": "/etc/tessera/country", "dry_run": false}`; default: the `country_config` setting). The
/// folder is checked completely (references between files, published ID-schema versions unchanged, a new
/// `configVersion`) before anything is written, then applied in one transaction (admin token).
#[utoipa::path(post, path = "/api/v1/admin/country-config", tag = "admin",
    responses((status = 200, description = "{folder, config_version, id_schema_versions, changes, applied}"),
              (status = 400, description = "malformed_body, country_config_unset, country_config_unreadable, invalid_country_config"),
              (status = 409, description = "id_schema_version_frozen, config_version_unchanged")))]
async fn admin_country_config(
    State(state): State<AppState>,
    _admin: Admin,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let b = admin_body(body)?;
    let req: ConfigBody = if b.iter().all(u8::is_ascii_whitespace) {
        ConfigBody::default()
    } else {
        serde_json::from_slice(&b).map_err(|e| {
            ApiError::bad_request(
                "malformed_body",
                format!("expected {{\"folder\"?: \"/path\", \"dry_run\"?: bool}}: {e}"),
            )
        })?
    };
    let folder = req
        .folder
        .or_else(|| state.settings.country_config.clone())
        .ok_or_else(|| {
            ApiError::bad_request(
                "country_config_unset",
                "give {\"folder\": \"/path\"} or set country_config (TESSERA_COUNTRY_CONFIG)",
            )
        })?;
    let report = admin::reload_country_config(state.store.as_ref(), &folder, req.dry_run).await?;
    if report.applied {
        *state.rules.write().await = None;
    }
    Ok(Json(report).into_response())
}

/// The packet-recipient keys, newest (the one stations encrypt to) first (admin token).
#[utoipa::path(get, path = "/api/v1/admin/packet-keys", tag = "admin",
    responses((status = 200, description = "array of {key_id, recipient, published}")))]
async fn admin_packet_keys(State(state): State<AppState>, _admin: Admin) -> Result<Response, ApiError> {
    let view = admin::list_packet_keys(state.store.as_ref(), &state.packet_keys()).await?;
    Ok(Json(view).into_response())
}

/// Rotates the packet-recipient key: a new key is created and published as the only one stations encrypt
/// to; older keys stay on the server to open packets made before (admin token).
#[utoipa::path(post, path = "/api/v1/admin/packet-keys/rotate", tag = "admin",
    responses((status = 200, description = "array of {key_id, recipient, published}, newest first")))]
async fn admin_rotate_packet_key(State(state): State<AppState>, _admin: Admin) -> Result<Response, ApiError> {
    let keys = admin::rotate_packet_key(state.store.as_ref(), &state.settings.data_dir).await?;
    let view = admin::list_packet_keys(state.store.as_ref(), &keys).await?;
    state.set_packet_keys(keys);
    Ok(Json(view).into_response())
}

/// Query of the packet list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PacketQuery {
    status: Option<String>,
    limit: Option<u32>,
}

/// Received packets, optionally by status (e.g. `QUARANTINED`), least recently changed first (admin token).
#[utoipa::path(get, path = "/api/v1/admin/packets", tag = "admin",
    params(("status" = Option<String>, Query, description = "a packet status, e.g. QUARANTINED"),
           ("limit" = Option<u32>, Query, description = "at most this many (default 100, at most 1000)")),
    responses((status = 200, description = "array of {rid, machine_id, status, reason, size, sha256, received_at, updated_at}"),
              (status = 400, description = "invalid_status, malformed_query")))]
async fn admin_packets(
    State(state): State<AppState>,
    _admin: Admin,
    q: Result<Query<PacketQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let status = q.status.as_deref().map(admin::parse_packet_status).transpose()?;
    let list = admin::list_packets(state.store.as_ref(), status, q.limit.unwrap_or(100)).await?;
    Ok(Json(list).into_response())
}

/// One packet with its status history (admin token).
#[utoipa::path(get, path = "/api/v1/admin/packets/{rid}", tag = "admin", params(("rid" = String, Path, description = "RID")),
    responses((status = 200, description = "the packet and history [{status, reason, at}]"),
              (status = 400, description = "invalid_rid"), (status = 404, description = "not_found")))]
async fn admin_packet(
    State(state): State<AppState>,
    _admin: Admin,
    Path(rid): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(admin::packet_detail(state.store.as_ref(), &rid).await?).into_response())
}

/// The status history of a center, machine or operator, oldest first: what the validation stage reads to
/// decide whether they were active when a packet was created (admin token).
#[utoipa::path(get, path = "/api/v1/admin/status-history/{kind}/{id}", tag = "admin",
    params(("kind" = String, Path, description = "center, machine or operator"), ("id" = String, Path, description = "its id")),
    responses((status = 200, description = "[{status, from}] oldest first (from: Unix seconds; 0 = before history was kept)"),
              (status = 400, description = "invalid_kind"), (status = 404, description = "not_found")))]
async fn admin_status_history(
    State(state): State<AppState>,
    _admin: Admin,
    Path((kind, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    use crate::store::status_kind;
    if ![status_kind::CENTER, status_kind::MACHINE, status_kind::OPERATOR].contains(&kind.as_str()) {
        return Err(ApiError::bad_request(
            "invalid_kind",
            "kind must be center, machine or operator",
        ));
    }
    let history = state.store.status_history(&kind, &id).await?;
    if history.is_empty() {
        return Err(ApiError::not_found(format!("no status recorded for {kind} {id}")));
    }
    Ok(Json(history).into_response())
}

/// Puts a quarantined packet back in the processing queue after a fix; it is verified again from the
/// start (admin token).
#[utoipa::path(post, path = "/api/v1/admin/packets/{rid}/reprocess", tag = "admin", params(("rid" = String, Path, description = "RID")),
    responses((status = 202, description = "queued: the packet as it was"),
              (status = 400, description = "invalid_rid"), (status = 404, description = "not_found"),
              (status = 409, description = "not_quarantined")))]
async fn admin_reprocess(
    State(state): State<AppState>,
    _admin: Admin,
    Path(rid): Path<String>,
) -> Result<Response, ApiError> {
    let view = admin::reprocess(state.store.as_ref(), &rid, state.clock.now().timestamp()).await?;
    Ok((StatusCode::ACCEPTED, Json(view)).into_response())
}

/// The OpenAPI document of the server.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "Tessera sync server",
        description = "Station sync API, packet upload (tus 1.0), admin API. Wire types: tessera_packet::wire."
    ),
    paths(
        healthz,
        readyz,
        metrics,
        openapi,
        server_info,
        enrol,
        machine_me,
        sync_page,
        upload_options,
        upload_create,
        upload_head,
        upload_patch,
        packet_status,
        packet_receipt,
        admin_list_machines,
        admin_approve,
        admin_suspend,
        admin_uin_pool,
        operator_key,
        adjudication_list,
        adjudication_get,
        adjudication_decide,
        admin_credential,
        admin_operators,
        admin_publish_operators,
        admin_revoke_operator,
        admin_certificates,
        admin_publish_certificate,
        admin_revoke_certificate,
        admin_country_config,
        admin_packet_keys,
        admin_rotate_packet_key,
        admin_packets,
        admin_packet,
        admin_reprocess,
        admin_status_history
    )
)]
pub struct ApiDoc;
