//! Settings > Admins: who can use this organisation's console; adding, disabling, enabling
//! and removing admins. Each change but enabling needs a recent login (a step-up), and none
//! may leave the organisation without an active admin.

use leptos::prelude::*;
use leptos_meta::Title;
use serde::{Deserialize, Serialize};

use crate::components::{needs_step_up, page_data, StepUp};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminEntry {
    pub id: String,
    pub email: String,
    pub disabled: bool,
    /// Whether they have a second factor.
    pub second_factor: bool,
    /// The admin looking at the page.
    pub me: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminsView {
    pub admins: Vec<AdminEntry>,
    /// Whether every admin must use a second factor.
    pub factor_required: bool,
}

#[server]
pub async fn list_admins() -> Result<AdminsView, ServerFnError> {
    use crate::ssr::{console_error, require_admin};
    let (state, admin) = require_admin().await?;
    let admins = state
        .store
        .admins_of(&admin.organisation_id)
        .await
        .map_err(console_error)?;
    Ok(AdminsView {
        factor_required: admins.iter().any(|a| a.factor_required),
        admins: admins
            .into_iter()
            .map(|a| AdminEntry {
                me: a.id == admin.id,
                disabled: a.disabled_at.is_some(),
                second_factor: a.second_factor,
                id: a.id,
                email: a.email,
            })
            .collect(),
    })
}

/// Adds an admin to the caller's own organisation, with an initial password the caller
/// passes on to them.
#[server]
pub async fn add_admin(email: String, password: String) -> Result<String, ServerFnError> {
    use crate::ssr::{console_error, require_recent_login};
    let (state, admin) = require_recent_login().await?;
    let added = domain::accounts::add_admin(&state.store, &admin, &email, &password)
        .await
        .map_err(console_error)?;
    Ok(added.email)
}

/// Disables, enables or removes another admin of the caller's organisation. `change`:
/// disable, enable or remove.
#[server]
pub async fn change_admin(id: String, change: String) -> Result<(), ServerFnError> {
    use crate::ssr::{console_error, invalid, require_admin, require_recent_login};
    use domain::accounts::AdminChange;
    let change = match change.as_str() {
        "disable" => AdminChange::Disable,
        "enable" => AdminChange::Enable,
        "remove" => AdminChange::Remove,
        other => return Err(invalid(format!("unknown change {other:?}"))),
    };
    let (state, admin) = if change == AdminChange::Enable {
        require_admin().await?
    } else {
        require_recent_login().await?
    };
    domain::accounts::change_admin(&state.store, &admin, &id, change)
        .await
        .map_err(console_error)
}

/// Sets whether every admin of the organisation must use a second factor (needs a recent
/// login, and a factor of one's own to require one).
#[server]
pub async fn set_factor_policy(required: bool) -> Result<(), ServerFnError> {
    use crate::ssr::{console_error, require_recent_login};
    let (state, admin) = require_recent_login().await?;
    domain::factors::set_policy(&state.store, &admin, required)
        .await
        .map_err(console_error)
}

#[component]
pub fn AdminsPage() -> impl IntoView {
    let add = ServerAction::<AddAdmin>::new();
    let change = ServerAction::<ChangeAdmin>::new();
    let policy = ServerAction::<SetFactorPolicy>::new();
    let data = page_data(
        move || {
            (
                add.version().get(),
                change.version().get(),
                policy.version().get(),
            )
        },
        |_| list_admins(),
    );
    let policy_step_up =
        Signal::derive(move || !policy.pending().get() && needs_step_up(&policy.value().get()));
    let last_policy = RwSignal::new(None::<SetFactorPolicy>);
    let retry_policy = Callback::new(move |()| {
        if let Some(request) = last_policy.get_untracked() {
            policy.dispatch(request);
        }
    });
    let policy_error = move || {
        policy
            .value()
            .get()
            .filter(|r| !needs_step_up(&Some(r.clone())))
            .and_then(|r| r.err())
            .map(|e| view! { <p class="error" role="alert">{crate::error_message(&e)}</p> })
    };
    let add_step_up =
        Signal::derive(move || !add.pending().get() && needs_step_up(&add.value().get()));
    let change_step_up =
        Signal::derive(move || !change.pending().get() && needs_step_up(&change.value().get()));
    // The last form values and change asked for, to send again after a step-up.
    let last_add = RwSignal::new(None::<AddAdmin>);
    let last_change = RwSignal::new(None::<ChangeAdmin>);
    let retry_add = Callback::new(move |()| {
        if let Some(request) = last_add.get_untracked() {
            add.dispatch(request);
        }
    });
    let retry_change = Callback::new(move |()| {
        if let Some(request) = last_change.get_untracked() {
            change.dispatch(request);
        }
    });
    let outcome = move || {
        add.value()
            .get()
            .filter(|r| !needs_step_up(&Some(r.clone())))
            .map(|r| match r {
                Ok(email) => view! { <p class="success" role="status">{format!("{email} can now log in.")}</p> }
                    .into_any(),
                Err(e) => view! { <p class="error" role="alert">{crate::error_message(&e)}</p> }.into_any(),
            })
    };
    let change_error = move || {
        change
            .value()
            .get()
            .filter(|r| !needs_step_up(&Some(r.clone())))
            .and_then(|r| r.err())
            .map(|e| view! { <p class="error" role="alert">{crate::error_message(&e)}</p> })
    };
    let act = move |id: String, what: &'static str| {
        let request = ChangeAdmin {
            id,
            change: what.into(),
        };
        last_change.set(Some(request.clone()));
        change.dispatch(request);
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
                            <div class="table-scroll">
                                <table class="grid admins" data-testid="admins">
                                    <thead><tr>
                                        <th scope="col">"Email"</th>
                                        <th scope="col">"Status"</th>
                                        <th scope="col">"Second factor"</th>
                                        <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                                    </tr></thead>
                                    <tbody>
                                        {v.admins.into_iter().map(|a| {
                                            let (disable_id, remove_id) = (a.id.clone(), a.id.clone());
                                            view! {
                                                <tr data-email=a.email.clone()>
                                                    <td>{a.email.clone()}{a.me.then_some(" (you)")}</td>
                                                    <td>{if a.disabled {
                                                        view! { <span class="status muted">"Disabled"</span> }
                                                    } else {
                                                        view! { <span class="status good">"Active"</span> }
                                                    }}</td>
                                                    <td>{if a.second_factor { "Yes" } else { "No" }}</td>
                                                    <td>{(!a.me).then(|| view! {
                                                        <button type="button" disabled=move || change.pending().get()
                                                            on:click=move |_| act(disable_id.clone(), if a.disabled { "enable" } else { "disable" })>
                                                            {if a.disabled { "Enable" } else { "Disable" }}
                                                        </button>
                                                        <button type="button" class="danger" disabled=move || change.pending().get()
                                                            on:click=move |_| act(remove_id.clone(), "remove")>
                                                            "Remove"
                                                        </button>
                                                    })}</td>
                                                </tr>
                                            }
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            </div>
                        }.into_any(),
                        Err(e) => view! { <p class="error" role="alert">{crate::error_message(&e)}</p> }.into_any(),
                    }
                })}
            </Transition>
            <StepUp needed=change_step_up retry=retry_change/>
            {change_error}
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    data.await.ok().map(|v| {
                        let required = v.factor_required;
                        view! {
                            <label class="policy">
                                <input type="checkbox" name="factor-policy" checked=required
                                    disabled=move || policy.pending().get()
                                    on:change=move |ev| {
                                        let request = SetFactorPolicy { required: event_target_checked(&ev) };
                                        last_policy.set(Some(request.clone()));
                                        policy.dispatch(request);
                                    }/>
                                " Every admin must use a second factor"
                            </label>
                        }
                    })
                })}
            </Transition>
            <StepUp needed=policy_step_up retry=retry_policy/>
            {policy_error}
            <p class="muted">"A disabled admin cannot log in, and their sessions end at once. The organisation always keeps one active admin."</p>
        </section>
        <section class="card">
            <h2>"Add an admin"</h2>
            <form class="stacked" on:submit=move |ev| {
                ev.prevent_default();
                if let Ok(request) = AddAdmin::from_event(&ev) {
                    last_add.set(Some(request.clone()));
                    add.dispatch(request);
                }
            }>
                <label for="admin-email">"Email"</label>
                <input id="admin-email" type="email" name="email" required autocomplete="off"/>
                <label for="admin-password">"Initial password (12 characters or more)"</label>
                <input id="admin-password" type="password" name="password" required minlength="12" autocomplete="new-password"/>
                <button type="submit" class="primary" disabled=move || add.pending().get()>"Add admin"</button>
            </form>
            <StepUp needed=add_step_up retry=retry_add/>
            {outcome}
            <p class="muted">"Give the new admin their password through a safe channel. Adding an admin is recorded in the audit log."</p>
        </section>
    }
}
