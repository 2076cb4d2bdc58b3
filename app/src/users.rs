//! The Users page: who the identity providers provisioned, with search, filters, sorting and
//! paging, and one user in detail with their SCIM activity.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::use_params_map;
use serde::{Deserialize, Serialize};

use crate::activity::{ActivityEntry, ActivityTable};
use crate::components::{on_filter, page_data, LocalTime, Moment, Pager};
use crate::history::{HistoryItem, Timeline};
use model::{Deleted, IntegrationKind, KindFilter, ListOrder, UserStatus, UserSummary};

/// Users per page.
pub const PAGE_SIZE: u32 = 50;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsersView {
    /// Users matching the search and filters.
    pub total: u64,
    pub users: Vec<UserSummary>,
}

/// The SCIM sort of a console list order (`None`: oldest first).
#[cfg(feature = "ssr")]
pub(crate) fn console_sort(order: ListOrder) -> Option<scim::list::Sort> {
    use scim::list::{Sort, SortKey};
    let (key, descending) = match order {
        ListOrder::Created => return None,
        ListOrder::Newest => (SortKey::Created, true),
        ListOrder::Name => (SortKey::UserName, false),
        ListOrder::NameDesc => (SortKey::UserName, true),
        ListOrder::Display => (SortKey::DisplayName, false),
    };
    Some(Sort { key, descending })
}

#[cfg(feature = "ssr")]
pub(crate) fn console_page(page: u64) -> scim::list::Page {
    scim::list::Page {
        start_index: page.max(1).saturating_sub(1) * u64::from(PAGE_SIZE) + 1,
        count: PAGE_SIZE,
    }
}

/// The integration id of `source` in the organisation (`None`: all). A kind never
/// connected matches nothing.
#[cfg(feature = "ssr")]
async fn source_filter(
    state: &crate::ssr::ConsoleState,
    organisation_id: &str,
    source: KindFilter,
) -> Result<Option<String>, ServerFnError> {
    let Some(kind) = source.0 else {
        return Ok(None);
    };
    let status = domain::integrations::status(&state.store, organisation_id, kind)
        .await
        .map_err(crate::ssr::console_error)?;
    Ok(Some(status.integration_id.unwrap_or_default()))
}

/// One page of the organisation's users (the records of deleted ones when `status` says),
/// created by `source`'s integration, in `sort` order; `page` from 1.
#[server]
pub async fn list_console_users(
    search: String,
    status: UserStatus,
    source: KindFilter,
    sort: ListOrder,
    page: u64,
) -> Result<UsersView, ServerFnError> {
    use crate::ssr::{console_error, require_admin};
    let (state, admin) = require_admin().await?;
    let (active, deleted) = match status {
        UserStatus::All => (None, false),
        UserStatus::Active => (Some(true), false),
        UserStatus::Deactivated => (Some(false), false),
        UserStatus::Deleted => (None, true),
    };
    let created_by = source_filter(&state, &admin.organisation_id, source).await?;
    let browse = domain::directory::Browse {
        search: &search,
        active,
        deleted,
        created_by: created_by.as_deref(),
        sort: console_sort(sort),
        page: console_page(page),
    };
    let (total, users) =
        domain::directory::browse_users(&state.store, &admin.organisation_id, &browse)
            .await
            .map_err(console_error)?;
    Ok(UsersView { total, users })
}

#[component]
pub fn UsersPage() -> impl IntoView {
    let search = RwSignal::new(String::new());
    let status = RwSignal::new(UserStatus::All);
    let source = RwSignal::new(KindFilter::default());
    let sort = RwSignal::new(ListOrder::Created);
    let page = RwSignal::new(1u64);
    let data = page_data(
        move || {
            (
                search.get(),
                status.get(),
                source.get(),
                sort.get(),
                page.get(),
            )
        },
        |(search, status, source, sort, page)| {
            list_console_users(search, status, source, sort, page)
        },
    );
    let restart = move || page.set(1);
    view! {
        <Title text="Users"/>
        <h1>"Users"</h1>
        <form class="filters" role="search" on:submit=|ev| ev.prevent_default()>
            <label>"Search "
                <input type="search" name="search" placeholder="Name, email or user name"
                    on:change=on_filter(search, restart)/>
            </label>
            <label>"Status "
                <select name="status" on:change=on_filter(status, restart)>
                    <option value="all" selected=true>"All"</option>
                    <option value="active">"Active"</option>
                    <option value="deactivated">"Deactivated"</option>
                    <option value="deleted">"Deleted"</option>
                </select>
            </label>
            <label>"Source "
                <select name="source" on:change=on_filter(source, restart)>
                    <option value="" selected=true>"All integrations"</option>
                    {IntegrationKind::ALL.iter().map(|k| view! { <option value=k.as_str()>{k.label()}</option> }).collect_view()}
                </select>
            </label>
            <label>"Sort "
                <select name="sort" on:change=on_filter(sort, restart)>
                    <option value="created" selected=true>"Oldest first"</option>
                    <option value="newest">"Newest first"</option>
                    <option value="name">"User name A–Z"</option>
                    <option value="name-desc">"User name Z–A"</option>
                    <option value="display">"Display name"</option>
                </select>
            </label>
        </form>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let filtered = !search.get_untracked().trim().is_empty()
                    || status.get_untracked() != UserStatus::All
                    || source.get_untracked() != KindFilter::default();
                match data.await {
                    Ok(v) if v.total == 0 && status.get_untracked() == UserStatus::Deleted => view! {
                        <p class="empty">"No deleted users match. An identity provider's deletions are kept here when its integration is set to keep a record."</p>
                    }.into_any(),
                    Ok(v) if v.total == 0 && !filtered => view! {
                        <p class="empty">"No users provisioned yet. Connect an identity provider under "
                            <A href="/settings/directory-integrations">"Settings > Directory integrations"</A>"."</p>
                    }.into_any(),
                    Ok(v) if v.total == 0 => view! {
                        <p class="empty">"No users match."</p>
                    }.into_any(),
                    Ok(v) => view! {
                        <div class="table-scroll">
                            <table class="grid" data-testid="users">
                                <thead><tr>
                                    <th scope="col">"User name"</th>
                                    <th scope="col">"Name"</th>
                                    <th scope="col">"Email"</th>
                                    <th scope="col">"Status"</th>
                                    <th scope="col">"Created"</th>
                                </tr></thead>
                                <tbody>
                                    {v.users.into_iter().map(|u| view! {
                                        <tr data-user-id=u.id.clone()>
                                            <td><A href=format!("/users/{}", u.id)>{u.user_name}</A></td>
                                            <td>{u.display_name.unwrap_or_default()}</td>
                                            <td>{u.email.unwrap_or_default()}</td>
                                            <td>{match u.deleted {
                                                Some(d) => view! { <DeletedBadge deleted=d/> }.into_any(),
                                                None => view! { <ActiveBadge active=u.active/> }.into_any(),
                                            }}</td>
                                            <td><LocalTime moment=u.created/></td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </div>
                        <Pager page total=v.total page_size=PAGE_SIZE noun="users"/>
                    }.into_any(),
                    Err(e) => view! { <p class="error" role="alert">{crate::error_message(&e)}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
pub fn ActiveBadge(active: bool) -> impl IntoView {
    view! {
        <span class=if active { "status good" } else { "status muted" }>
            {if active { "Active" } else { "Deactivated" }}
        </span>
    }
}

/// "Deleted by OneLogin on <time>".
#[component]
pub fn DeletedBadge(deleted: Deleted) -> impl IntoView {
    let by = deleted
        .by
        .map_or("a removed integration", IntegrationKind::label);
    view! {
        <span class="status bad">"Deleted"</span>
        {format!(" by {by} on ")}
        <LocalTime moment=deleted.at/>
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserDetailView {
    pub user: UserSummary,
    pub attributes: String,
    pub updated: Moment,
    pub source: Option<IntegrationKind>,
    pub groups: Vec<(String, String)>,
    pub activity: Vec<ActivityEntry>,
    /// What SCIM writes changed, newest first.
    pub history: Vec<HistoryItem>,
    /// Records of (other) deleted users who had this userName: id and time of deletion.
    pub deleted_before: Vec<(String, Moment)>,
    /// For a deleted user: the user who has their userName now, and since when.
    pub recreated_as: Option<(String, Moment)>,
}

/// One user, or the record of a deleted one, with every stored attribute, their groups and
/// the last 20 SCIM requests that changed them or failed on them, and what SCIM writes
/// changed.
#[server]
pub async fn console_user(id: String) -> Result<UserDetailView, ServerFnError> {
    use crate::ssr::{console_error, require_admin};
    let (state, admin) = require_admin().await?;
    let org = &admin.organisation_id;
    let detail = domain::directory::user_detail(&state.store, org, &id)
        .await
        .map_err(console_error)?
        .ok_or_else(|| console_error(domain::Error::NotFound))?;
    let activity = state
        .store
        .requests(
            org,
            &domain::activity::RequestQuery {
                resource_id: Some(&id),
                limit: 20,
                ..Default::default()
            },
        )
        .await
        .map_err(console_error)?;
    let history = domain::history::user_history(&state.store, org, &id)
        .await
        .map_err(console_error)?;
    let now = domain::time::now_ms();
    Ok(UserDetailView {
        user: detail.summary,
        attributes: detail.attributes,
        updated: domain::time::moment(detail.updated_at),
        source: crate::ssr::kind_of(detail.created_by),
        groups: detail.groups,
        activity: activity.into_iter().map(crate::activity::entry).collect(),
        history: history
            .into_iter()
            .map(|e| HistoryItem::of(e, &id, now))
            .collect(),
        deleted_before: detail
            .deleted_before
            .into_iter()
            .map(|(id, at)| (id, domain::time::moment(at)))
            .collect(),
        recreated_as: detail
            .recreated_as
            .map(|(id, at)| (id, domain::time::moment(at))),
    })
}

#[component]
pub fn UserPage() -> impl IntoView {
    let params = use_params_map();
    let data = page_data(
        move || params.with(|p| p.get("id").unwrap_or_default()),
        console_user,
    );
    view! {
        <Title text="User"/>
        <p><A href="/users">"← All users"</A></p>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(d) => {
                        let title = d.user.display_name.clone().unwrap_or_else(|| d.user.user_name.clone());
                        let deleted = d.user.deleted.is_some();
                        view! {
                            <h1>{title}</h1>
                            <UserLinks deleted=d.user.deleted.clone() deleted_before=d.deleted_before.clone()
                                recreated_as=d.recreated_as.clone()/>
                            <section class="card">
                                <dl class="facts" data-testid="user-facts">
                                    <dt>"User name"</dt><dd>{d.user.user_name.clone()}</dd>
                                    <dt>"Email"</dt><dd>{d.user.email.clone().unwrap_or_default()}</dd>
                                    <dt>"Status"</dt><dd>{match d.user.deleted.clone() {
                                        Some(del) => view! {
                                            <DeletedBadge deleted=del/>
                                            {format!(" (was {})", if d.user.active { "active" } else { "deactivated" })}
                                        }.into_any(),
                                        None => view! { <ActiveBadge active=d.user.active/> }.into_any(),
                                    }}</dd>
                                    <dt>"Source"</dt><dd>{d.source.map_or("—", IntegrationKind::label)}</dd>
                                    <dt>"Created"</dt><dd><LocalTime moment=d.user.created.clone()/></dd>
                                    <dt>"Last modified"</dt><dd><LocalTime moment=d.updated.clone()/></dd>
                                    <dt>"Id"</dt><dd><code>{d.user.id.clone()}</code></dd>
                                </dl>
                            </section>
                            <section class="card">
                                <h2>{if deleted { "Groups when deleted" } else { "Groups" }}</h2>
                                {if d.groups.is_empty() {
                                    view! { <p class="empty">"Not a member of any group."</p> }.into_any()
                                } else {
                                    view! {
                                        <ul class="plain" data-testid="user-groups">
                                            {d.groups.into_iter().map(|(id, name)| view! {
                                                <li><A href=format!("/groups/{id}")>{name}</A></li>
                                            }).collect_view()}
                                        </ul>
                                    }.into_any()
                                }}
                            </section>
                            <section class="card">
                                <h2>"History"</h2>
                                <Timeline items=d.history noun="user"/>
                            </section>
                            <section class="card">
                                <h2>"SCIM attributes"</h2>
                                <pre class="body" data-testid="attributes">{d.attributes}</pre>
                            </section>
                            <section class="card">
                                <h2>"Recent SCIM changes"</h2>
                                {if d.activity.is_empty() {
                                    view! { <p class="empty">"No SCIM request has changed this user, or failed on it, lately."</p> }.into_any()
                                } else {
                                    view! { <ActivityTable entries=d.activity/> }.into_any()
                                }}
                            </section>
                        }.into_any()
                    }
                    Err(e) => view! { <p class="error" role="alert">{crate::error_message(&e)}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// What links a user's record to others with the same userName: for a deleted user, who
/// deleted them and the user created since with their userName; for any, the records of
/// users deleted before with it.
#[component]
fn UserLinks(
    deleted: Option<Deleted>,
    deleted_before: Vec<(String, Moment)>,
    recreated_as: Option<(String, Moment)>,
) -> impl IntoView {
    view! {
        {deleted.map(|d| view! {
            <p class="notice" role="note" data-testid="deleted-notice">
                <DeletedBadge deleted=d/>
                ". This is the console's read-only record: the user no longer exists for SCIM, and their user name may be provisioned again."
            </p>
        })}
        {recreated_as.map(|(id, at)| view! {
            <p class="notice" data-testid="recreated-as">
                "Provisioned again as a new user on " <LocalTime moment=at/> ": "
                <A href=format!("/users/{id}")>"see the current user"</A> "."
            </p>
        })}
        {(!deleted_before.is_empty()).then(|| view! {
            <p class="notice" data-testid="previously-deleted">
                "A user with this user name was previously deleted on "
                {deleted_before.into_iter().enumerate().map(|(i, (id, at))| view! {
                    {(i > 0).then_some(", ")}
                    <A href=format!("/users/{id}")><LocalTime moment=at/></A>
                }).collect_view()}
                "."
            </p>
        })}
    }
}
