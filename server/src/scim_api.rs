//! The SCIM 2.0 HTTP API under `/scimapi`: bearer-token authentication, request bodies and
//! query strings in, `application/scim+json` out. Handlers only extract, call the domain and
//! map; [`ApiError`] is the one place a domain error becomes a SCIM error response.

use axum::body::Bytes;
use axum::extract::{FromRequest, Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use domain::provisioning::{self, User};
use domain::store::TokenOwner;
use scim::list::{list_response, Page};
use scim::ScimError;
use serde_json::Value;

use crate::AppState;

pub const SCIM_CONTENT_TYPE: &str = "application/scim+json";

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/Users", get(list_users).post(create_user))
        .route(
            "/Users/{id}",
            get(get_user)
                .put(replace_user)
                .patch(patch_user)
                .delete(delete_user),
        )
        .fallback(|| async { ApiError::from(ScimError::not_found("no such SCIM endpoint")) })
        .method_not_allowed_fallback(|| async {
            ApiError::from(ScimError::new(
                405,
                None,
                "method not allowed on this endpoint",
            ))
        })
        .layer(axum::middleware::from_fn_with_state(state, authenticate))
}

/// Resolves the bearer token to its organisation and integration, and records a successful
/// request as the integration's last sync.
async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let owner = match bearer_token(req.headers()) {
        Some(token) => domain::integrations::authenticate(&state.console.store, token).await,
        None => Ok(None),
    };
    match owner {
        Ok(Some(owner)) => {
            let integration_id = owner.integration_id.clone();
            req.extensions_mut().insert(owner);
            let response = next.run(req).await;
            if response.status().is_success() {
                state
                    .console
                    .last_sync
                    .record(&integration_id, domain::time::now_ms());
            }
            response
        }
        Ok(None) => {
            let mut response = ApiError::from(ScimError::new(
                401,
                None,
                "a valid bearer token is required",
            ))
            .into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"SCIM\""),
            );
            response
        }
        Err(e) => ApiError(e).into_response(),
    }
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
        let error = match self.0 {
            Error::Scim(e) => e,
            Error::NotFound => ScimError::not_found("resource not found"),
            Error::Conflict(detail) => ScimError::uniqueness(detail),
            Error::PreconditionFailed => {
                ScimError::new(412, None, "the resource has changed (If-Match failed)")
            }
            Error::InvalidCredentials => {
                ScimError::new(401, None, "a valid bearer token is required")
            }
            Error::Invalid(detail) => ScimError::invalid_value(detail),
            e @ (Error::Database(_) | Error::Migration(_) | Error::PasswordHash(_)) => {
                tracing::error!(error = %e, "SCIM request failed");
                ScimError::new(500, None, "internal server error")
            }
        };
        let status =
            StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        scim_json(status, &error.body())
    }
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

fn user_response(status: StatusCode, user: &User) -> Response {
    let mut response = scim_json(status, &user.resource());
    let headers = response.headers_mut();
    if let Ok(etag) = HeaderValue::from_str(&user.meta.etag()) {
        headers.insert(header::ETAG, etag);
    }
    if status == StatusCode::CREATED {
        if let Ok(location) = HeaderValue::from_str(&user.meta.location) {
            headers.insert(header::LOCATION, location);
        }
    }
    response
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
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            let status = rejection.status();
            ScimError::new(status.as_u16(), None, rejection.body_text())
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ScimError::invalid_syntax("the request body is empty").into());
        }
        serde_json::from_slice(&bytes).map(ScimBody).map_err(|e| {
            ScimError::invalid_syntax(format!("the request body is not valid JSON: {e}")).into()
        })
    }
}

/// Query parameters, looked up case-insensitively.
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(raw: Option<String>) -> Result<Self, ApiError> {
        let raw = raw.unwrap_or_default();
        serde_urlencoded::from_str(&raw)
            .map(Params)
            .map_err(|e| ScimError::invalid_syntax(format!("malformed query string: {e}")).into())
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn base(state: &AppState) -> &str {
    state.console.scim_base_url.trim_end_matches('/')
}

async fn list_users(
    State(state): State<AppState>,
    Extension(owner): Extension<TokenOwner>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(query)?;
    let page = Page::from_query(params.get("startIndex"), params.get("count"))?;
    let filter = params.get("filter");
    let (total, users) =
        provisioning::list_users(&state.console.store, &owner, base(&state), filter, page).await?;
    let resources = users.iter().map(User::resource).collect();
    Ok(scim_json(
        StatusCode::OK,
        &list_response(total, page, resources),
    ))
}

async fn create_user(
    State(state): State<AppState>,
    Extension(owner): Extension<TokenOwner>,
    ScimBody(body): ScimBody,
) -> Result<Response, ApiError> {
    let user = provisioning::create_user(&state.console.store, &owner, base(&state), &body).await?;
    Ok(user_response(StatusCode::CREATED, &user))
}

async fn get_user(
    State(state): State<AppState>,
    Extension(owner): Extension<TokenOwner>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let user = provisioning::get_user(&state.console.store, &owner, base(&state), &id).await?;
    Ok(user_response(StatusCode::OK, &user))
}

async fn replace_user(
    State(state): State<AppState>,
    Extension(owner): Extension<TokenOwner>,
    Path(id): Path<String>,
    ScimBody(body): ScimBody,
) -> Result<Response, ApiError> {
    let user =
        provisioning::replace_user(&state.console.store, &owner, base(&state), &id, &body).await?;
    Ok(user_response(StatusCode::OK, &user))
}

async fn patch_user(
    State(state): State<AppState>,
    Extension(owner): Extension<TokenOwner>,
    Path(id): Path<String>,
    ScimBody(body): ScimBody,
) -> Result<Response, ApiError> {
    let user =
        provisioning::patch_user(&state.console.store, &owner, base(&state), &id, &body).await?;
    Ok(user_response(StatusCode::OK, &user))
}

async fn delete_user(
    State(state): State<AppState>,
    Extension(owner): Extension<TokenOwner>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    provisioning::deactivate_user(&state.console.store, &owner, base(&state), &id).await?;
    Ok(StatusCode::NO_CONTENT)
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
}
