//! Sync activity: every SCIM request the identity providers made, newest first, with what
//! they sent (passwords removed) and, for failures, the error they were answered. Lists carry
//! the request lines only; a row loads its error and body when it is opened.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use serde::{Deserialize, Serialize};

use crate::components::{on_filter, page_data, LocalTime, Moment, NewerOlder};
use model::{IntegrationKind, KindFilter, StatusFilter};

/// Entries per page.
#[cfg(feature = "ssr")]
const PAGE: i64 = 50;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityEntry {
    pub id: i64,
    pub at: Moment,
    pub integration: Option<IntegrationKind>,
    pub method: String,
    pub path: String,
    pub status: i64,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub duration_ms: String,
    /// Whether the row opens to an error, a request id or a request body.
    pub has_detail: bool,
}

/// What a row opens to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityDetail {
    pub error: Option<String>,
    pub request_body: Option<String>,
    /// The `X-Request-Id` the request was answered with (and every SCIM error quotes), to
    /// find it in the server's log.
    pub request_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityView {
    pub entries: Vec<ActivityEntry>,
    /// Pass as `before` for the next (older) page; `None` on the last page.
    pub older: Option<i64>,
    /// Days entries are kept; 0 when the log is off.
    pub retention_days: u32,
}

#[cfg(feature = "ssr")]
pub(crate) fn entry(r: domain::activity::RequestRow) -> ActivityEntry {
    ActivityEntry {
        id: r.id,
        at: domain::time::moment(r.at),
        integration: crate::ssr::kind_of(r.integration_kind),
        method: r.method,
        path: r.path,
        status: r.status,
        resource_type: r.resource_type,
        resource_id: r.resource_id,
        duration_ms: format!("{:.1}", r.duration_us as f64 / 1000.0),
        has_detail: r.has_detail,
    }
}

/// The error and request body of the organisation's recorded request `id`, for its opened
/// row. Any other id, another organisation's included, is "Not found.".
#[server]
pub async fn request_detail(id: i64) -> Result<ActivityDetail, ServerFnError> {
    use crate::ssr::{console_error, require_admin};
    let (state, admin) = require_admin().await?;
    let detail = state
        .store
        .request_detail(&admin.organisation_id, id)
        .await
        .map_err(console_error)?
        .ok_or_else(|| console_error(domain::Error::NotFound))?;
    Ok(ActivityDetail {
        error: detail.error,
        request_body: detail.request_body,
        request_id: detail.request_id,
    })
}

/// One page of the organisation's SCIM requests with the outcome `status` says, by
/// `integration`'s integration, older than `before`.
#[server]
pub async fn activity_log(
    status: StatusFilter,
    integration: KindFilter,
    before: Option<i64>,
) -> Result<ActivityView, ServerFnError> {
    use crate::ssr::{console_error, require_admin};
    let (state, admin) = require_admin().await?;
    let integration = integration.0.map(IntegrationKind::as_str);
    let mut rows = state
        .store
        .requests(
            &admin.organisation_id,
            &domain::activity::RequestQuery {
                status,
                integration_kind: integration,
                resource_id: None,
                before_id: before,
                limit: PAGE + 1,
            },
        )
        .await
        .map_err(console_error)?;
    let older = crate::ssr::newest_first_page(&mut rows, PAGE, |r| r.id);
    Ok(ActivityView {
        older,
        entries: rows.into_iter().map(entry).collect(),
        retention_days: state.activity.retention_days(),
    })
}

#[component]
pub fn ActivityPage() -> impl IntoView {
    let status = RwSignal::new(StatusFilter::All);
    let integration = RwSignal::new(KindFilter::default());
    let before = RwSignal::new(None::<i64>);
    let restart = move || before.set(None);
    // Every filter change starts again from the newest entry.
    let data = page_data(
        move || (status.get(), integration.get(), before.get()),
        |(status, integration, before)| activity_log(status, integration, before),
    );
    view! {
        <Title text="Sync activity"/>
        <h1>"Sync activity"</h1>
        <p class="muted">"Every SCIM request your identity providers made, newest first. Passwords in request bodies are never stored."</p>
        <form class="filters" on:submit=|ev| ev.prevent_default()>
            <label>"Status "
                <select name="status" on:change=on_filter(status, restart)>
                    <option value="all" selected=true>"All requests"</option>
                    <option value="failures">"Failures only"</option>
                    <option value="retired">"Retired token"</option>
                </select>
            </label>
            <label>"Integration "
                <select name="integration" on:change=on_filter(integration, restart)>
                    <option value="" selected=true>"All integrations"</option>
                    {IntegrationKind::ALL.iter().map(|k| view! { <option value=k.as_str()>{k.label()}</option> }).collect_view()}
                </select>
            </label>
        </form>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(v) if v.retention_days == 0 => view! {
                        <p class="empty">"The activity log is switched off on this server (ACTIVITY_RETENTION_DAYS=0)."</p>
                    }.into_any(),
                    Ok(v) if v.entries.is_empty() && before.get_untracked().is_none() => view! {
                        <p class="empty">"No SCIM requests recorded yet. They appear here as soon as an identity provider connects."</p>
                    }.into_any(),
                    Ok(v) => {
                        let older = v.older;
                        view! {
                            <ActivityTable entries=v.entries/>
                            <p class="muted">{format!("Requests are kept for {} days.", v.retention_days)}</p>
                            <NewerOlder before older noun="requests"/>
                        }.into_any()
                    }
                    Err(e) => view! { <p class="error" role="alert">{crate::error_message(&e)}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// Requests as a table; each row opens to show the error, the request id and the request
/// body, loaded then.
#[component]
pub fn ActivityTable(entries: Vec<ActivityEntry>) -> impl IntoView {
    view! {
        <div class="table-scroll">
            <table class="grid activity" data-testid="activity">
                <thead><tr>
                    <th scope="col">"Time"</th>
                    <th scope="col">"Integration"</th>
                    <th scope="col">"Request"</th>
                    <th scope="col">"Status"</th>
                    <th scope="col">"Resource"</th>
                    <th scope="col">"Duration"</th>
                </tr></thead>
                <tbody>
                    {entries.into_iter().map(|e| view! { <ActivityRow e/> }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

#[component]
fn ActivityRow(e: ActivityEntry) -> impl IntoView {
    let failed = e.status >= 400;
    let status_class = if failed { "status bad" } else { "status good" };
    let resource = match (e.resource_type.as_deref(), e.resource_id.clone()) {
        (Some("User"), Some(id)) => view! { <A href=format!("/users/{id}")>"User"</A> }.into_any(),
        (Some("Group"), Some(id)) => {
            view! { <A href=format!("/groups/{id}")>"Group"</A> }.into_any()
        }
        _ => "".into_any(),
    };
    let details = e
        .has_detail
        .then(|| view! { <RequestDetails id=e.id failed/> });
    view! {
        <tr data-status=e.status class:failed=failed>
            <td><LocalTime moment=e.at/></td>
            <td>{e.integration.map_or("—", IntegrationKind::label)}</td>
            <td class="request">
                <code>{e.method}" "{e.path}</code>
                {details}
            </td>
            <td><span class=status_class>{e.status}</span></td>
            <td>{resource}</td>
            <td class="number">{e.duration_ms}" ms"</td>
        </tr>
    }
}

/// A request's error, id and body, loaded the first time its row is opened (again on opening
/// it after a failed attempt).
#[component]
fn RequestDetails(id: i64, failed: bool) -> impl IntoView {
    let load = ServerAction::<RequestDetail>::new();
    let details = NodeRef::<leptos::html::Details>::new();
    let load_if_open = move || {
        let open = details.get_untracked().is_some_and(|d| d.open());
        let loaded = matches!(load.value().get_untracked(), Some(Ok(_)));
        if open && !loaded && !load.pending().get_untracked() {
            load.dispatch(RequestDetail { id });
        }
    };
    // A row opened before the page came to life.
    Effect::new(move |_| {
        if details.get().is_some() {
            load_if_open();
        }
    });
    view! {
        <details node_ref=details on:toggle=move |_| load_if_open()>
            <summary>{if failed { "Error and request" } else { "Details" }}</summary>
            {move || match load.value().get() {
                None => view! { <p class="loading">"Loading…"</p> }.into_any(),
                Some(Ok(d)) => view! {
                    {d.error.map(|m| view! { <p class="error-detail">{m}</p> })}
                    {d.request_id.map(|id| view! {
                        <p class="request-id muted">"Request id "<code>{id}</code></p>
                    })}
                    {d.request_body.map(|b| view! { <pre class="body">{b}</pre> })}
                }
                .into_any(),
                Some(Err(e)) => view! {
                    <p class="error" role="alert">{crate::error_message(&e)}</p>
                }
                .into_any(),
            }}
        </details>
    }
}
