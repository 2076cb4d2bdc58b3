//! The SCIM 2.0 HTTP API under `/scimapi`: bearer-token authentication, request bodies,
//! query strings and conditional headers in, `application/scim+json` out. Handlers only
//! extract, call the domain and map; [`ApiError`] is the one place a domain error becomes a
//! SCIM error response.

use axum::body::Bytes;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{
    FromRequest, FromRequestParts, OriginalUri, Path, RawPathParams, Request, State,
};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use domain::activity::RequestEntry;
use domain::deadline::Credential;
use domain::groups::Group;
use domain::integrations::TokenOwner;
use domain::provisioning::{Change, ListRequest, User};
use domain::scim_resource::{ScimResource, Scope};
use domain::throttle::{retry_after_secs, ClientAddr};
use domain::token::TokenHash;
use scim::discovery;
use scim::filter::Resource;
use scim::list::{list_response, Page, Sort};
use scim::projection::Projection;
use scim::user::Meta;
use scim::ScimError;
use serde_json::Value;

use crate::telemetry::{self, TokenFailure};
use crate::AppState;

pub const SCIM_CONTENT_TYPE: &str = "application/scim+json";
const SEARCH_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

pub fn router(state: AppState) -> Router<AppState> {
    let protected = Router::new()
        .merge(resource_routes::<User>("/Users"))
        .merge(resource_routes::<Group>("/Groups"))
        .route("/.search", post(search_all))
        .fallback(|| async { ApiError::from(ScimError::not_found("no such SCIM endpoint")) })
        .method_not_allowed_fallback(|| async {
            ApiError::from(ScimError::new(
                405,
                None,
                "method not allowed on this endpoint",
            ))
        })
        .layer(axum::middleware::from_fn_with_state(state, authenticate));
    // Discovery says nothing about any organisation, so IdPs may read it before they have a
    // token.
    Router::new()
        .route("/ServiceProviderConfig", get(service_provider_config))
        .route("/ResourceTypes", get(resource_types))
        .route("/ResourceTypes/{name}", get(resource_type))
        .route("/Schemas", get(schemas))
        .route("/Schemas/{id}", get(schema))
        .merge(protected)
}

/// The endpoints of one resource type under `path`.
fn resource_routes<R: ScimResource>(path: &str) -> Router<AppState> {
    Router::new()
        .route(path, get(list::<R>).post(create::<R>))
        .route(&format!("{path}/.search"), post(search::<R>))
        .route(
            &format!("{path}/{{id}}"),
            get(get_one::<R>)
                .put(write::<R>)
                .patch(write::<R>)
                .delete(delete::<R>),
        )
        .route_layer(axum::middleware::from_fn(touched::<R>))
}

/// Resolves the bearer token to its organisation and integration, records a successful
/// request as the integration's last sync, and every request in the activity log.
///
/// The token's integration usually comes from the cache, so the request's own first store
/// job does its work; that job, like every other of the request, checks the token again in
/// its transaction (`deadline::present`). A request whose token turns out to be gone (reset
/// by another process or instance) is refused exactly like one with an unknown token, and
/// one that reached no store job has its token checked before it is answered.
async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let console = &state.console;
    let client = req.extensions().get::<ClientAddr>().copied();
    let found = match bearer_token(req.headers()) {
        Some(token) => {
            domain::integrations::authenticate_cached(&console.store, &console.tokens, token).await
        }
        None => Ok(None),
    };
    let (owner, credential) = match found {
        Ok(Some(found)) => found,
        Ok(None) if bearer_token(req.headers()).is_none() => {
            return refuse_bad_token(&state, client, TokenFailure::Missing)
        }
        Ok(None) => {
            let token_hash = bearer_token(req.headers()).map(TokenHash::of);
            let token_hash = token_hash.as_ref().map_or("", |h| h.as_str());
            let refused = Refused::of(&req);
            return refuse_presented_token(
                &state,
                client,
                TokenFailure::Unknown,
                token_hash,
                refused,
            )
            .await;
        }
        Err(e) => return ApiError(e).into_response(),
    };
    // From here on, the request's store jobs take its organisation's share and check its
    // token.
    domain::deadline::work_for(&owner.organisation_id);
    domain::deadline::present(credential.clone());
    let integration_id = owner.integration_id.clone();
    let organisation_id = owner.organisation_id.clone();
    let kind = owner.kind.as_str();
    // Kept should the token turn out to be reset meanwhile; cheap copies of what the request
    // already holds.
    let refused = Refused::of(&req);
    // The change history is kept as long as the activity log: not at all when it is off.
    if console.activity.enabled() {
        domain::deadline::keep_history(refused.request_id.clone());
    }
    let activity = console.activity.enabled().then(|| {
        let body = BodySlot::default();
        req.extensions_mut().insert(body.clone());
        (req.method().to_string(), request_path(&req), body)
    });
    req.extensions_mut().insert(owner);
    req.extensions_mut().insert(credential.clone());
    let started = std::time::Instant::now();
    let response = next.run(req).await;
    let still_valid = if response.status() == StatusCode::UNAUTHORIZED {
        // A store job found the token gone.
        false
    } else if domain::deadline::credential_checked() {
        true
    } else {
        match domain::integrations::confirm(&console.store).await {
            Ok(valid) => valid,
            Err(e) => return ApiError(e).into_response(),
        }
    };
    if !still_valid {
        console.tokens.forget(&credential);
        let token_hash = &credential.token_hash;
        return refuse_presented_token(&state, client, TokenFailure::Revoked, token_hash, refused)
            .await;
    }
    telemetry::scim_request(kind, response.status());
    let duration = started.elapsed();
    let at = domain::time::now_ms();
    if response.status().is_success() || response.status() == StatusCode::NOT_MODIFIED {
        console.last_sync.record(&integration_id, at);
    }
    let Some((method, path, body)) = activity else {
        return response;
    };
    let error = response
        .extensions()
        .get::<ScimFailure>()
        .map(|f| f.0.summary());
    let (resource_type, resource_id) = response
        .extensions()
        .get::<Touched>()
        .map_or((None, None), |t| (Some(t.kind), t.id.clone()));
    console.activity.record(
        RequestEntry {
            organisation_id,
            integration_id,
            at,
            method,
            path,
            status: response.status().as_u16(),
            resource_type,
            resource_id,
            duration_us: i64::try_from(duration.as_micros()).unwrap_or(i64::MAX),
            error,
            request_body: None,
            request_id: refused.request_id,
        },
        body.0.get().cloned(),
    );
    response
}

/// The request's path and query as the client sent them (before nesting stripped a prefix).
fn request_path(req: &Request) -> String {
    req.extensions()
        .get::<OriginalUri>()
        .map_or(req.uri(), |o| &o.0)
        .path_and_query()
        .map_or_else(String::new, |p| p.as_str().to_owned())
}

/// The answer to a request with a missing, unknown or no longer valid token. A valid token
/// is never throttled, whoever shares its address; bad ones are counted per address, and
/// past the limit answered with 429 and Retry-After, so an IdP backs off instead of
/// quarantining the app.
fn refuse_bad_token(state: &AppState, client: Option<ClientAddr>, why: TokenFailure) -> Response {
    telemetry::token_failure(why);
    if let Some(client) = client {
        let address = client.throttle_key();
        let throttle = &state.console.throttles.scim_address;
        let now = Instant::now();
        if let Some(wait) = throttle.wait(&address, now) {
            return ApiError(domain::Error::TooManyAttempts(wait)).into_response();
        }
        throttle.fail(&address, now);
        tracing::debug!(%address, "SCIM request without a valid bearer token");
    }
    ApiError(domain::Error::InvalidCredentials).into_response()
}

/// What is kept of a request refused for the token it presented, should that token be one a
/// reset retired: copies of what the request holds (no text is made of it until then).
struct Refused {
    method: Method,
    /// As the client sent it (before nesting stripped a prefix).
    uri: axum::http::Uri,
    user_agent: Option<HeaderValue>,
    request_id: Option<String>,
}

impl Refused {
    fn of(req: &Request) -> Self {
        Self {
            method: req.method().clone(),
            uri: req
                .extensions()
                .get::<OriginalUri>()
                .map_or(req.uri(), |o| &o.0)
                .clone(),
            user_agent: req.headers().get(header::USER_AGENT).cloned(),
            request_id: telemetry::request_id(req),
        }
    }
}

/// The longest user agent kept of a request with a retired token.
const MAX_USER_AGENT: usize = 256;

/// The answer to a request whose token no integration has (or had, when its request began).
/// A token that a reset retired, and that is still kept, is attributed to its integration:
/// the request is counted and listed in the organisation's activity log with no body, then
/// refused exactly like an unknown token. A throttled client is refused before any lookup.
async fn refuse_presented_token(
    state: &AppState,
    client: Option<ClientAddr>,
    why: TokenFailure,
    token_hash: &str,
    refused: Refused,
) -> Response {
    let console = &state.console;
    let throttled = client.is_some_and(|client| {
        console
            .throttles
            .scim_address
            .wait(&client.throttle_key(), Instant::now())
            .is_some()
    });
    if throttled {
        return refuse_bad_token(state, client, why);
    }
    let retired = match domain::integrations::retired(&console.store, token_hash).await {
        Ok(retired) => retired,
        Err(e) => {
            tracing::warn!(error = %domain::error::chain(&e), "could not look for a retired token");
            None
        }
    };
    let Some(retired) = retired else {
        return refuse_bad_token(state, client, why);
    };
    let at = domain::time::now_ms();
    let address = client.map(|c| c.0.to_string());
    let user_agent = refused
        .user_agent
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(MAX_USER_AGENT).collect());
    console
        .retired_uses
        .record(&retired, at, address, user_agent);
    console.activity.record(
        RequestEntry {
            organisation_id: retired.organisation_id,
            integration_id: retired.integration_id,
            at,
            method: refused.method.to_string(),
            path: refused
                .uri
                .path_and_query()
                .map_or_else(String::new, |p| p.as_str().to_owned()),
            status: StatusCode::UNAUTHORIZED.as_u16(),
            resource_type: None,
            resource_id: None,
            duration_us: 0,
            error: Some(domain::activity::RETIRED_TOKEN.into()),
            request_body: None,
            request_id: refused.request_id,
        },
        None,
    );
    refuse_bad_token(state, client, TokenFailure::Retired)
}

/// Where the body extractor leaves the request body for the activity log (a shared
/// reference, not a copy).
#[derive(Clone, Default)]
struct BodySlot(Arc<OnceLock<Bytes>>);

/// The SCIM error a failed response carries: put on the response by [`ApiError`], which
/// made it, for the activity log ("scimType: detail") and for the request id its detail
/// quotes (`telemetry`), so nothing reads the body back.
#[derive(Clone, Debug)]
pub struct ScimFailure(pub ScimError);

/// The users or groups a request touched, and the one by id when there is one: put on the
/// response by [`resource_response`] from the resource's typed `meta` (one it created, read
/// or changed), or else by [`touched`] from the route's `{id}` (a failure, a deletion).
#[derive(Clone, Debug)]
struct Touched {
    kind: &'static str,
    id: Option<String>,
}

/// Notes on a response of `R`'s routes which of them it touched, unless the response says
/// already: the route's `{id}`, as the router matched it.
async fn touched<R: ScimResource>(params: RawPathParams, req: Request, next: Next) -> Response {
    let id = params
        .iter()
        .find(|(name, _)| *name == "id")
        .map(|(_, id)| id.to_owned());
    let mut response = next.run(req).await;
    if response.extensions().get::<Touched>().is_none() {
        response
            .extensions_mut()
            .insert(Touched { kind: R::KIND, id });
    }
    response
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// A domain error on its way out as a SCIM error response.
#[derive(Debug)]
pub struct ApiError(pub domain::Error);

impl From<domain::Error> for ApiError {
    fn from(e: domain::Error) -> Self {
        Self(e)
    }
}

impl From<ScimError> for ApiError {
    fn from(e: ScimError) -> Self {
        Self(domain::Error::Scim(e))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        use domain::Error;
        let retry_after = match &self.0 {
            Error::TooManyAttempts(wait) | Error::Busy(wait) => Some(retry_after_secs(*wait)),
            _ => None,
        };
        let challenge = matches!(self.0, Error::InvalidCredentials);
        let error = match self.0 {
            Error::Scim(e) => e,
            Error::NotFound => ScimError::not_found("resource not found"),
            e @ Error::Conflict { .. } => ScimError::uniqueness(e.to_string()),
            Error::Refused(detail) => ScimError::new(409, None, detail),
            Error::PreconditionFailed => ScimError::new(
                412,
                None,
                "the resource has changed: its version does not match If-Match",
            ),
            Error::InvalidCredentials => {
                ScimError::new(401, None, "a valid bearer token is required")
            }
            Error::Invalid { detail } => ScimError::invalid_value(detail),
            Error::Forbidden(detail) => ScimError::new(403, None, detail),
            Error::StepUpRequired => ScimError::new(403, None, "a recent login is required"),
            Error::TooManyAttempts(wait) => ScimError::new(
                429,
                None,
                format!(
                    "too many requests without a valid bearer token; retry in {} s",
                    retry_after_secs(wait)
                ),
            ),
            Error::Timeout => timed_out(),
            Error::Busy(wait) => ScimError::new(
                503,
                None,
                format!(
                    "the service cannot take this request now (this organisation has more requests \
                     in progress than it takes on at once, or the database is busy); nothing of \
                     it was done; retry in {} s",
                    retry_after_secs(wait)
                ),
            ),
            e @ (Error::Database(_) | Error::Migration(_) | Error::Internal { .. }) => {
                tracing::error!(error = %domain::error::chain(&e), "SCIM request failed");
                ScimError::new(500, None, "internal server error")
            }
        };
        let status =
            StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = scim_json(status, &error.body());
        response.extensions_mut().insert(ScimFailure(error));
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"SCIM\""),
            );
        }
        response
    }
}

/// The SCIM error of a request that did not finish by its deadline (nothing of it was
/// written).
pub fn timed_out() -> ScimError {
    ScimError::new(
        408,
        None,
        "the request took longer than the service allows; nothing of it was done",
    )
}

fn scim_json(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(SCIM_CONTENT_TYPE),
        )],
        body.to_string(),
    )
        .into_response()
}

/// One resource, projected, with its `ETag` (and `Location` when created), from its meta.
fn resource_response<R: ScimResource>(
    status: StatusCode,
    resource: &R,
    projection: &Projection,
) -> Response {
    let meta = resource.meta();
    let mut body = resource.body();
    projection.apply(&mut body);
    let mut response = scim_json(status, &body);
    let headers = response.headers_mut();
    if let Ok(etag) = HeaderValue::from_str(&meta.etag()) {
        headers.insert(header::ETAG, etag);
    }
    if status == StatusCode::CREATED {
        if let Ok(location) = HeaderValue::from_str(&meta.location) {
            headers.insert(header::LOCATION, location);
        }
    }
    response.extensions_mut().insert(Touched {
        kind: R::KIND,
        id: Some(meta.id.clone()),
    });
    response
}

fn list_json(total: u64, page: Page, resources: Vec<Value>, projection: &Projection) -> Response {
    let resources = resources
        .into_iter()
        .map(|mut r| {
            projection.apply(&mut r);
            r
        })
        .collect();
    scim_json(StatusCode::OK, &list_response(total, page, resources))
}

/// A JSON request body. Accepts `application/scim+json`, `application/json` or no content
/// type at all; anything else is 415. Unparseable JSON is 400 `invalidSyntax`.
pub struct ScimBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for ScimBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(content_type) = req.headers().get(header::CONTENT_TYPE) {
            let essence = content_type
                .to_str()
                .unwrap_or_default()
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            if essence != "application/json" && essence != SCIM_CONTENT_TYPE {
                return Err(ScimError::new(
                    415,
                    None,
                    format!("Content-Type must be {SCIM_CONTENT_TYPE} or application/json"),
                )
                .into());
            }
        }
        let slot = req.extensions().get::<BodySlot>().cloned();
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            let status = rejection.status();
            ScimError::new(status.as_u16(), None, rejection.body_text())
        })?;
        if let Some(slot) = slot {
            let _ = slot.0.set(bytes.clone());
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ScimError::invalid_syntax("the request body is empty").into());
        }
        serde_json::from_slice(&bytes).map(ScimBody).map_err(|e| {
            ScimError::invalid_syntax(format!("the request body is not valid JSON: {e}")).into()
        })
    }
}

/// Query parameters, looked up case-insensitively.
pub struct Params(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        serde_urlencoded::from_str(parts.uri.query().unwrap_or_default())
            .map(Params)
            .map_err(|e| ScimError::invalid_syntax(format!("malformed query string: {e}")).into())
    }
}

impl Params {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn projection(&self) -> Result<Projection, ScimError> {
        Projection::from_query(self.get("attributes"), self.get("excludedAttributes"))
    }

    fn list(&self, resource: Resource) -> Result<ListRequest<'_>, ScimError> {
        Ok(ListRequest {
            filter: self.get("filter"),
            sort: Sort::from_query(resource, self.get("sortBy"), self.get("sortOrder"))?,
            page: Page::from_query(self.get("startIndex"), self.get("count"))?,
        })
    }
}

/// `If-Match` as stored versions: `None` when absent or `*`; weak and strong tags alike
/// (`W/"3"`, `"3"`). A tag that is not one of ours matches nothing.
pub struct IfMatch(Option<Vec<i64>>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(header::IF_MATCH) else {
            return Ok(Self(None));
        };
        let value = value.to_str().unwrap_or_default();
        if value.trim() == "*" {
            return Ok(Self(None));
        }
        Ok(Self(Some(
            value.split(',').filter_map(version_of_tag).collect(),
        )))
    }
}

impl IfMatch {
    fn versions(&self) -> Option<&[i64]> {
        self.0.as_deref()
    }

    /// The change a write makes to resource `id` under this condition.
    fn change<'a>(&'a self, id: &'a str, with_related: bool) -> Change<'a> {
        Change {
            id,
            if_match: self.versions(),
            with_related,
        }
    }
}

fn version_of_tag(tag: &str) -> Option<i64> {
    let tag = tag.trim();
    let tag = tag.strip_prefix("W/").unwrap_or(tag);
    tag.strip_prefix('"')?.strip_suffix('"')?.parse().ok()
}

/// Whether a GET's `If-None-Match` names the resource's current version (answer 304).
fn not_modified(headers: &HeaderMap, meta: &Meta) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim() == "*"
                || v.split(',')
                    .filter_map(version_of_tag)
                    .any(|t| t == meta.version)
        })
}

/// 304 for a resource, with its `ETag`.
fn not_modified_response<R: ScimResource>(resource: &R) -> Response {
    let mut response = StatusCode::NOT_MODIFIED.into_response();
    if let Ok(v) = HeaderValue::from_str(&resource.meta().etag()) {
        response.headers_mut().insert(header::ETAG, v);
    }
    response.extensions_mut().insert(Touched {
        kind: R::KIND,
        id: Some(resource.meta().id.clone()),
    });
    response
}

fn base(state: &AppState) -> &str {
    state.console.scim_base_url.trim_end_matches('/')
}

// --- Users and groups ----------------------------------------------------------------------

/// The scope of a request with `owner`'s token.
fn scope<'a>(state: &'a AppState, owner: &'a TokenOwner) -> Scope<'a> {
    Scope {
        store: &state.console.store,
        owner,
        base_url: base(state),
    }
}

/// `GET /Users`, `GET /Groups`.
async fn list<R: ScimResource>(
    State(state): State<AppState>,
    Extension(owner): Extension<TokenOwner>,
    params: Params,
) -> Result<Response, ApiError> {
    let projection = params.projection()?;
    let request = params.list(R::RESOURCE)?;
    let scope = scope(&state, &owner);
    let (total, found) = R::list(scope, &request, !projection.omits(R::RELATED)).await?;
    Ok(list_json(
        total,
        request.page,
        found.iter().map(R::body).collect(),
        &projection,
    ))
}

/// `POST /Users`, `POST /Groups`.
async fn create<R: ScimResource>(
    State(state): State<AppState>,
    Extension(owner): Extension<TokenOwner>,
    params: Params,
    ScimBody(body): ScimBody,
) -> Result<Response, ApiError> {
    let projection = params.projection()?;
    let scope = scope(&state, &owner);
    let created = R::create(scope, &body, !projection.omits(R::RELATED)).await?;
    Ok(resource_response(
        StatusCode::CREATED,
        &created,
        &projection,
    ))
}

/// `GET /Users/{id}`, `GET /Groups/{id}`; `304` when `If-None-Match` names its version.
async fn get_one<R: ScimResource>(
    State(state): State<AppState>,
    Extension(owner): Extension<TokenOwner>,
    Path(id): Path<String>,
    params: Params,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let projection = params.projection()?;
    let scope = scope(&state, &owner);
    let found = R::get(scope, &id, !projection.omits(R::RELATED)).await?;
    if not_modified(&headers, found.meta()) {
        return Ok(not_modified_response(&found));
    }
    Ok(resource_response(StatusCode::OK, &found, &projection))
}

/// `PUT` (replace) and `PATCH` of `/Users/{id}` and `/Groups/{id}`.
async fn write<R: ScimResource>(
    method: Method,
    State(state): State<AppState>,
    Extension(owner): Extension<TokenOwner>,
    Path(id): Path<String>,
    params: Params,
    if_match: IfMatch,
    ScimBody(body): ScimBody,
) -> Result<Response, ApiError> {
    let projection = params.projection()?;
    let scope = scope(&state, &owner);
    let change = if_match.change(&id, !projection.omits(R::RELATED));
    let written = if method == Method::PATCH {
        R::patch(scope, &change, &body).await?
    } else {
        R::replace(scope, &change, &body).await?
    };
    Ok(resource_response(StatusCode::OK, &written, &projection))
}

/// `DELETE /Users/{id}`, `DELETE /Groups/{id}`.
async fn delete<R: ScimResource>(
    State(state): State<AppState>,
    Extension(credential): Extension<Credential>,
    Path(id): Path<String>,
    if_match: IfMatch,
) -> Result<StatusCode, ApiError> {
    // What the console keeps is the integration's setting as it is now, not as cached.
    let owner = domain::integrations::current_owner(&state.console.store, &credential).await?;
    R::delete(scope(&state, &owner), &id, if_match.versions()).await?;
    Ok(StatusCode::NO_CONTENT)
}

// --- Searching with POST (RFC 7644 §3.4.3) -------------------------------------------------

/// A SearchRequest body, read into the same shape as query parameters.
fn search_params(body: &Value) -> Result<Params, ApiError> {
    let Value::Object(map) = body else {
        return Err(ScimError::invalid_syntax("a SearchRequest must be a JSON object").into());
    };
    if let Some(schemas) = map
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("schemas"))
        .map(|(_, v)| v)
    {
        let listed = schemas.as_array().is_some_and(|s| {
            s.iter().any(|u| {
                u.as_str()
                    .is_some_and(|u| u.eq_ignore_ascii_case(SEARCH_REQUEST))
            })
        });
        if !listed {
            return Err(ScimError::invalid_syntax(format!(
                "schemas must contain {SEARCH_REQUEST}"
            ))
            .into());
        }
    }
    let mut pairs = Vec::new();
    for (key, value) in map {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Array(items)
                if key.eq_ignore_ascii_case("attributes")
                    || key.eq_ignore_ascii_case("excludedAttributes") =>
            {
                items
                    .iter()
                    .map(|i| {
                        i.as_str().map(str::to_owned).ok_or_else(|| {
                            ScimError::invalid_value(format!("{key} must list attribute names"))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?
                    .join(",")
            }
            Value::Null => continue,
            _ if key.eq_ignore_ascii_case("schemas") => continue,
            _ => return Err(ScimError::invalid_value(format!("{key} has the wrong type")).into()),
        };
        pairs.push((key.clone(), text));
    }
    Ok(Params(pairs))
}

/// `POST /Users/.search`, `POST /Groups/.search`: a list request in a body.
async fn search<R: ScimResource>(
    state: State<AppState>,
    owner: Extension<TokenOwner>,
    ScimBody(body): ScimBody,
) -> Result<Response, ApiError> {
    list::<R>(state, owner, search_params(&body)?).await
}

/// `POST /.search` across Users and then Groups. The filter must make sense for both (e.g.
/// `id`, `externalId`, `displayName`); paging spans the combined result.
async fn search_all(
    State(state): State<AppState>,
    Extension(owner): Extension<TokenOwner>,
    ScimBody(body): ScimBody,
) -> Result<Response, ApiError> {
    let params = search_params(&body)?;
    let projection = params.projection()?;
    let page = Page::from_query(params.get("startIndex"), params.get("count"))?;
    if params.get("sortBy").is_some() {
        return Err(
            ScimError::invalid_value("sortBy is not supported across resource types").into(),
        );
    }
    let scope = scope(&state, &owner);
    let filter = params.get("filter");
    // Count users first, then take the page's share from each list.
    let count_only = ListRequest {
        filter,
        sort: None,
        page: Page {
            start_index: 1,
            count: 0,
        },
    };
    let (user_total, _) = User::list(scope, &count_only, false).await?;
    let user_page = ListRequest {
        filter,
        sort: None,
        page,
    };
    let (_, users) = User::list(scope, &user_page, !projection.omits(User::RELATED)).await?;
    let offset_in_groups = page.offset().saturating_sub(user_total);
    let room = u64::from(page.count).saturating_sub(users.len() as u64) as u32;
    let group_page = ListRequest {
        filter,
        sort: None,
        page: Page {
            start_index: offset_in_groups + 1,
            count: room,
        },
    };
    let (group_total, found) =
        Group::list(scope, &group_page, !projection.omits(Group::RELATED)).await?;
    let resources = users
        .iter()
        .map(User::body)
        .chain(found.iter().map(Group::body))
        .collect();
    Ok(list_json(
        user_total + group_total,
        page,
        resources,
        &projection,
    ))
}

// --- Discovery -----------------------------------------------------------------------------

async fn service_provider_config(State(state): State<AppState>) -> Response {
    scim_json(
        StatusCode::OK,
        &discovery::service_provider_config(base(&state)),
    )
}

async fn resource_types(State(state): State<AppState>) -> Response {
    listed(
        discovery::RESOURCE_TYPES
            .iter()
            .filter_map(|n| discovery::resource_type(n, base(&state))),
    )
}

async fn resource_type(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    found(
        discovery::resource_type(&name, base(&state)),
        "resource type",
        &name,
    )
}

async fn schemas(State(state): State<AppState>) -> Response {
    listed(
        discovery::SCHEMA_IDS
            .iter()
            .filter_map(|id| discovery::schema(id, base(&state))),
    )
}

async fn schema(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    found(discovery::schema(&id, base(&state)), "schema", &id)
}

/// A discovery list: all of it on one page.
fn listed(all: impl Iterator<Item = Value>) -> Response {
    let all: Vec<Value> = all.collect();
    let page = Page {
        start_index: 1,
        count: all.len() as u32,
    };
    scim_json(StatusCode::OK, &list_response(all.len() as u64, page, all))
}

/// One discovery resource, or 404 naming what was asked for.
fn found(resource: Option<Value>, what: &str, name: &str) -> Result<Response, ApiError> {
    resource
        .map(|r| scim_json(StatusCode::OK, &r))
        .ok_or_else(|| ScimError::not_found(format!("no {what} {name:?}")).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer_token(&h), None);
        for (value, expected) in [
            ("Bearer abc", Some("abc")),
            ("bearer  abc ", Some("abc")),
            ("BEARER abc", Some("abc")),
            ("Basic abc", None),
            ("Bearer ", None),
            ("Bearer", None),
        ] {
            h.insert(header::AUTHORIZATION, HeaderValue::from_static(value));
            assert_eq!(bearer_token(&h), expected, "{value}");
        }
    }

    #[test]
    fn entity_tags() {
        assert_eq!(version_of_tag("W/\"3\""), Some(3));
        assert_eq!(version_of_tag(" \"12\" "), Some(12));
        for bad in ["3", "W/3", "\"x\"", "", "W/\"\""] {
            assert_eq!(version_of_tag(bad), None, "{bad}");
        }
        let mut h = HeaderMap::new();
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("W/\"1\", W/\"2\""),
        );
        let meta = |version| Meta {
            id: "u".into(),
            created: String::new(),
            last_modified: String::new(),
            location: String::new(),
            version,
        };
        assert!(not_modified(&h, &meta(2)));
        assert!(!not_modified(&h, &meta(3)));
    }
}
