//! Settings > Admins: who can use this organisation's console, and adding another admin.

use leptos::prelude::*;
use leptos_meta::Title;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminsView {
    pub emails: Vec<String>,
    pub me: String,
}

#[server]
pub async fn list_admins() -> Result<AdminsView, ServerFnError> {
    use crate::ssr::{console_error, require_admin};
    let (state, admin) = require_admin().await?;
    let admins = domain::accounts::admins(&state.store, &admin.organisation_id)
        .await
        .map_err(console_error)?;
    Ok(AdminsView {
        emails: admins.into_iter().map(|a| a.email).collect(),
        me: admin.email,
    })
}

/// Adds an admin to the caller's own organisation, with an initial password the caller
/// passes on to them.
#[server]
pub async fn add_admin(email: String, password: String) -> Result<String, ServerFnError> {
    use crate::ssr::{console_error, require_admin};
    let (state, admin) = require_admin().await?;
    let added = domain::accounts::add_admin(&state.store, &admin, &email, &password)
        .await
        .map_err(console_error)?;
    Ok(added.email)
}

#[component]
pub fn AdminsPage() -> impl IntoView {
    let add = ServerAction::<AddAdmin>::new();
    let data = Resource::new(move || add.version().get(), |_| list_admins());
    let outcome = move || {
        add.value().get().map(|r| match r {
            Ok(email) => {
                view! { <p class="success" role="status">{format!("{email} can now log in.")}</p> }
                    .into_any()
            }
            Err(e) => {
                view! { <p class="error" role="alert">{crate::error_message(&e)}</p> }.into_any()
            }
        })
    };
    view! {
        <Title text="Admins"/>
        <h1>"Admins"</h1>
        <section class="card">
            <h2>"Admins of this organisation"</h2>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Ok(v) => view! {
                            <ul class="plain" data-testid="admins">
                                {v.emails.into_iter().map(|email| {
                                    let me = email == v.me;
                                    view! { <li>{email}{me.then_some(" (you)")}</li> }
                                }).collect_view()}
                            </ul>
                        }.into_any(),
                        Err(e) => view! { <p class="error" role="alert">{crate::error_message(&e)}</p> }.into_any(),
                    }
                })}
            </Transition>
        </section>
        <section class="card">
            <h2>"Add an admin"</h2>
            <ActionForm action=add attr:class="stacked">
                <label for="admin-email">"Email"</label>
                <input id="admin-email" type="email" name="email" required autocomplete="off"/>
                <label for="admin-password">"Initial password (12 characters or more)"</label>
                <input id="admin-password" type="password" name="password" required minlength="12" autocomplete="new-password"/>
                <button type="submit" class="primary" disabled=move || add.pending().get()>"Add admin"</button>
            </ActionForm>
            {outcome}
            <p class="muted">"Give the new admin their password through a safe channel. Adding an admin is recorded in the audit log."</p>
        </section>
    }
}
