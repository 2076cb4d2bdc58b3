//! The Groups page: the groups the identity providers provisioned, with member counts and
//! search, and one group in detail with its members, a page at a time.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::use_params_map;
use serde::{Deserialize, Serialize};

use crate::components::{on_filter, page_data, LocalTime, Moment, Pager};
use crate::history::{HistoryItem, Timeline};
use crate::users::{ActiveBadge, DeletedBadge, PAGE_SIZE};
use model::{GroupStatus, GroupSummary, IntegrationKind, ListOrder, Member};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupsView {
    pub total: u64,
    pub groups: Vec<GroupSummary>,
}

/// One page of the organisation's groups. `status`: current, or deleted (the console's
/// records of groups an IdP deleted); `sort`: created, newest (for deleted groups: by time of
/// deletion) or display.
#[server]
pub async fn list_console_groups(
    search: String,
    status: GroupStatus,
    sort: ListOrder,
    page: u64,
) -> Result<GroupsView, ServerFnError> {
    use crate::ssr::{console_error, require_admin};
    use crate::users::{console_page, console_sort};
    let (state, admin) = require_admin().await?;
    if matches!(sort, ListOrder::Name | ListOrder::NameDesc) {
        return Err(crate::ssr::invalid("groups have no user name to sort by"));
    }
    let deleted = status == GroupStatus::Deleted;
    let browse = domain::directory::Browse {
        search: &search,
        active: None,
        deleted,
        created_by: None,
        sort: console_sort(sort),
        page: console_page(page),
    };
    let (total, groups) =
        domain::directory::browse_groups(&state.store, &admin.organisation_id, &browse)
            .await
            .map_err(console_error)?;
    Ok(GroupsView { total, groups })
}

#[component]
pub fn GroupsPage() -> impl IntoView {
    let search = RwSignal::new(String::new());
    let status = RwSignal::new(GroupStatus::Current);
    let sort = RwSignal::new(ListOrder::Display);
    let page = RwSignal::new(1u64);
    let restart = move || page.set(1);
    let data = page_data(
        move || (search.get(), status.get(), sort.get(), page.get()),
        |(search, status, sort, page)| list_console_groups(search, status, sort, page),
    );
    view! {
        <Title text="Groups"/>
        <h1>"Groups"</h1>
        <form class="filters" role="search" on:submit=|ev| ev.prevent_default()>
            <label>"Search "
                <input type="search" name="search" placeholder="Group name"
                    on:change=on_filter(search, restart)/>
            </label>
            <label>"Status "
                <select name="status" on:change=on_filter(status, restart)>
                    <option value="current" selected=true>"Current"</option>
                    <option value="deleted">"Deleted"</option>
                </select>
            </label>
            <label>"Sort "
                <select name="sort" on:change=on_filter(sort, restart)>
                    <option value="display" selected=true>"Name"</option>
                    <option value="created">"Oldest first"</option>
                    <option value="newest">"Newest first"</option>
                </select>
            </label>
        </form>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let searching = !search.get_untracked().trim().is_empty();
                match data.await {
                    Ok(v) if v.total == 0 && status.get_untracked() == GroupStatus::Deleted => view! {
                        <p class="empty">"No deleted groups match."</p>
                    }.into_any(),
                    Ok(v) if v.total == 0 && !searching => view! {
                        <p class="empty">"No groups provisioned yet."</p>
                    }.into_any(),
                    Ok(v) if v.total == 0 => view! { <p class="empty">"No groups match."</p> }.into_any(),
                    Ok(v) => view! {
                        <div class="table-scroll">
                            <table class="grid" data-testid="groups">
                                <thead><tr>
                                    <th scope="col">"Name"</th>
                                    <th scope="col">"Members"</th>
                                    <th scope="col">"Created"</th>
                                    {(status.get_untracked() == GroupStatus::Deleted).then(|| view! { <th scope="col">"Deleted"</th> })}
                                </tr></thead>
                                <tbody>
                                    {v.groups.into_iter().map(|g| view! {
                                        <tr data-group-id=g.id.clone()>
                                            <td><A href=format!("/groups/{}", g.id)>{g.display_name}</A></td>
                                            <td class="number">{g.members}</td>
                                            <td><LocalTime moment=g.created/></td>
                                            {g.deleted.map(|d| view! { <td><DeletedBadge deleted=d/></td> })}
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </div>
                        <Pager page total=v.total page_size=PAGE_SIZE noun="groups"/>
                    }.into_any(),
                    Err(e) => view! { <p class="error" role="alert">{crate::error_message(&e)}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupDetailView {
    pub group: GroupSummary,
    pub updated: Moment,
    pub source: Option<IntegrationKind>,
    pub members: Vec<Member>,
    /// What SCIM writes changed, newest first.
    pub history: Vec<HistoryItem>,
}

/// One group, or the record of a deleted one, a page of its members (of a deleted group: as
/// they were when it was deleted), and what SCIM writes changed.
#[server]
pub async fn console_group(id: String, page: u64) -> Result<GroupDetailView, ServerFnError> {
    use crate::ssr::{console_error, require_admin};
    let (state, admin) = require_admin().await?;
    let detail = domain::directory::group_detail(
        &state.store,
        &admin.organisation_id,
        &id,
        crate::users::console_page(page),
    )
    .await
    .map_err(console_error)?
    .ok_or_else(|| console_error(domain::Error::NotFound))?;
    let history = domain::history::group_history(&state.store, &admin.organisation_id, &id)
        .await
        .map_err(console_error)?;
    let now = domain::time::now_ms();
    Ok(GroupDetailView {
        group: detail.summary,
        updated: domain::time::moment(detail.updated_at),
        source: crate::ssr::kind_of(detail.created_by),
        members: detail.members,
        history: history
            .into_iter()
            .map(|e| HistoryItem::of(e, &id, now))
            .collect(),
    })
}

#[component]
pub fn GroupPage() -> impl IntoView {
    let params = use_params_map();
    let page = RwSignal::new(1u64);
    let data = page_data(
        move || (params.with(|p| p.get("id").unwrap_or_default()), page.get()),
        |(id, page)| console_group(id, page),
    );
    view! {
        <Title text="Group"/>
        <p><A href="/groups">"← All groups"</A></p>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(d) => view! {
                        <h1>{d.group.display_name.clone()}</h1>
                        {d.group.deleted.clone().map(|del| view! {
                            <p class="notice" role="note" data-testid="deleted-notice">
                                <DeletedBadge deleted=del/>
                                ". This is the console's read-only record: the group no longer exists for SCIM. Its members are listed as they were when it was deleted."
                            </p>
                        })}
                        <section class="card">
                            <dl class="facts">
                                <dt>"Members"</dt><dd data-testid="member-count">{d.group.members}</dd>
                                <dt>"Source"</dt><dd>{d.source.map_or("—", IntegrationKind::label)}</dd>
                                <dt>"Created"</dt><dd><LocalTime moment=d.group.created.clone()/></dd>
                                <dt>"Last modified"</dt><dd><LocalTime moment=d.updated.clone()/></dd>
                                <dt>"Id"</dt><dd><code>{d.group.id.clone()}</code></dd>
                            </dl>
                        </section>
                        <section class="card">
                            <h2>"Members"</h2>
                            {if d.members.is_empty() {
                                view! { <p class="empty">"This group has no members."</p> }.into_any()
                            } else {
                                view! {
                                    <div class="table-scroll">
                                        <table class="grid" data-testid="members">
                                            <thead><tr>
                                                <th scope="col">"User name"</th>
                                                <th scope="col">"Name"</th>
                                                <th scope="col">"Status"</th>
                                            </tr></thead>
                                            <tbody>
                                                {d.members.into_iter().map(|m| view! {
                                                    <tr>
                                                        <td><A href=format!("/users/{}", m.id)>{m.user_name}</A></td>
                                                        <td>{m.display_name.unwrap_or_default()}</td>
                                                        <td><ActiveBadge active=m.active/></td>
                                                    </tr>
                                                }).collect_view()}
                                            </tbody>
                                        </table>
                                    </div>
                                    <Pager page total=d.group.members as u64 page_size=PAGE_SIZE noun="members"/>
                                }.into_any()
                            }}
                        </section>
                        <section class="card">
                            <h2>"History"</h2>
                            <Timeline items=d.history noun="group"/>
                        </section>
                    }.into_any(),
                    Err(e) => view! { <p class="error" role="alert">{crate::error_message(&e)}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}
