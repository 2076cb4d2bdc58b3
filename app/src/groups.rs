//! The Groups page.

use leptos::prelude::*;
use leptos_meta::Title;

/// How many groups the identity providers provisioned.
#[server]
pub async fn group_count() -> Result<i64, ServerFnError> {
    use crate::ssr::{console_error, require_admin};
    let (state, admin) = require_admin().await?;
    state
        .store
        .count_groups(&admin.organisation_id)
        .await
        .map_err(console_error)
}

#[component]
pub fn GroupsPage() -> impl IntoView {
    let count = Resource::new(|| (), |_| group_count());
    view! {
        <Title text="Groups"/>
        <h1>"Groups"</h1>
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match count.await {
                    Ok(0) => view! { <p class="empty">"No groups provisioned yet."</p> }.into_any(),
                    Ok(n) => view! { <p>{format!("{n} groups provisioned.")}</p> }.into_any(),
                    Err(e) => view! { <p class="error" role="alert">{crate::error_message(&e)}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
}
