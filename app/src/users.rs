//! The Users page: who the identity providers provisioned.

use leptos::prelude::*;
use leptos_meta::Title;
use serde::{Deserialize, Serialize};

use crate::components::{LocalTime, Moment};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRow {
    pub id: String,
    pub user_name: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub active: bool,
    pub created: Moment,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsersView {
    pub total: u64,
    pub users: Vec<UserRow>,
}

/// The first page of the organisation's users.
#[server]
pub async fn list_console_users() -> Result<UsersView, ServerFnError> {
    use crate::ssr::{console_error, require_admin};
    let (state, admin) = require_admin().await?;
    let page = scim::list::Page {
        start_index: 1,
        count: scim::list::DEFAULT_COUNT,
    };
    let (total, users) =
        domain::provisioning::browse_users(&state.store, &admin.organisation_id, page)
            .await
            .map_err(console_error)?;
    Ok(UsersView {
        total,
        users: users
            .into_iter()
            .map(|u| UserRow {
                id: u.id,
                user_name: u.user_name,
                display_name: u.display_name,
                email: u.email,
                active: u.active,
                created: Moment::new(u.created_at),
            })
            .collect(),
    })
}

#[component]
pub fn UsersPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| list_console_users());
    view! {
        <Title text="Users"/>
        <h1>"Users"</h1>
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(v) if v.users.is_empty() => view! {
                        <p class="empty">"No users provisioned yet. Connect an identity provider under Settings > Directory integrations."</p>
                    }.into_any(),
                    Ok(v) => view! {
                        <p class="muted">{format!("Showing {} of {} users", v.users.len(), v.total)}</p>
                        <table class="grid">
                            <thead><tr>
                                <th scope="col">"User name"</th>
                                <th scope="col">"Name"</th>
                                <th scope="col">"Email"</th>
                                <th scope="col">"Status"</th>
                                <th scope="col">"Created"</th>
                            </tr></thead>
                            <tbody>
                                {v.users.into_iter().map(|u| view! {
                                    <tr data-user-id=u.id>
                                        <td>{u.user_name}</td>
                                        <td>{u.display_name.unwrap_or_default()}</td>
                                        <td>{u.email.unwrap_or_default()}</td>
                                        <td>{if u.active { "Active" } else { "Deactivated" }}</td>
                                        <td><LocalTime moment=u.created/></td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                    Err(e) => view! { <p class="error" role="alert">{crate::error_message(&e)}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
}
