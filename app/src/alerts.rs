//! Settings > Alerts: where the organisation's alerts go (webhooks, email) and what raises
//! them. Adding or removing a destination and changing a rule need a recent login: each
//! decides who learns that provisioning, tokens or admins changed.

use leptos::prelude::*;
use leptos_meta::Title;
use serde::{Deserialize, Serialize};

use crate::components::{needs_step_up, page_data, LocalTime, Moment, StepUp};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestinationEntry {
    pub id: String,
    /// `webhook` or `email`.
    pub kind: String,
    /// A webhook by its host and the end of its URL; an email address.
    pub shown_as: String,
    pub added: Moment,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleEntry {
    pub rule: String,
    pub enabled: bool,
    /// `None` for rules without a threshold.
    pub threshold: Option<i64>,
    pub min: i64,
    pub max: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertsView {
    pub destinations: Vec<DestinationEntry>,
    pub rules: Vec<RuleEntry>,
    /// Whether the operator set up SMTP: email destinations need it.
    pub smtp: bool,
    pub max_destinations: usize,
}

/// What a rule is, in the console's words, and the unit of its threshold.
fn rule_text(rule: &str) -> (&'static str, &'static str) {
    match rule {
        "failure_rate" => (
            "SCIM failure rate of an integration over 15 minutes is above",
            "%",
        ),
        "no_sync" => (
            "No successful sync, on an integration that has synced, for more than",
            "hours",
        ),
        "retired_token" => (
            "An identity provider still sends a token that was reset",
            "",
        ),
        "token_changed" => ("A provisioning token is created or reset", ""),
        "admin_changed" => ("An admin is added, or a second factor removed", ""),
        _ => ("Unknown rule", ""),
    }
}

#[server]
pub async fn alert_settings() -> Result<AlertsView, ServerFnError> {
    use crate::ssr::{console_error, require_admin};
    let (state, admin) = require_admin().await?;
    let org = &admin.organisation_id;
    let destinations = domain::alerts::destinations(&state.store, org)
        .await
        .map_err(console_error)?;
    let rules = domain::alerts::rules(&state.store, org)
        .await
        .map_err(console_error)?;
    Ok(AlertsView {
        destinations: destinations
            .into_iter()
            .map(|d| DestinationEntry {
                id: d.id,
                kind: d.kind.as_str().into(),
                shown_as: d.shown_as,
                added: domain::time::moment(d.created_at),
            })
            .collect(),
        rules: rules
            .into_iter()
            .map(|s| {
                let range = s.rule.threshold().map(|(_, r)| r);
                RuleEntry {
                    rule: s.rule.as_str().into(),
                    enabled: s.enabled,
                    threshold: s.threshold,
                    min: range.as_ref().map_or(0, |r| *r.start()),
                    max: range.as_ref().map_or(0, |r| *r.end()),
                }
            })
            .collect(),
        smtp: state.smtp,
        max_destinations: domain::alerts::MAX_DESTINATIONS,
    })
}

/// Adds a webhook; its signing secret, shown this once.
#[server]
pub async fn add_alert_webhook(url: String) -> Result<String, ServerFnError> {
    use crate::ssr::{console_error, require_recent_login};
    let (state, admin) = require_recent_login().await?;
    let (_, secret) = domain::alerts::add_webhook(
        &state.store,
        &admin,
        state.secret_key.as_ref(),
        state.webhooks,
        &url,
    )
    .await
    .map_err(console_error)?;
    Ok(secret)
}

#[server]
pub async fn add_alert_email(address: String) -> Result<String, ServerFnError> {
    use crate::ssr::{console_error, require_recent_login};
    let (state, admin) = require_recent_login().await?;
    let added = domain::alerts::add_email(&state.store, &admin, state.smtp, &address)
        .await
        .map_err(console_error)?;
    Ok(added.shown_as)
}

#[server]
pub async fn remove_alert_destination(id: String) -> Result<(), ServerFnError> {
    use crate::ssr::{console_error, require_recent_login};
    let (state, admin) = require_recent_login().await?;
    domain::alerts::remove_destination(&state.store, &admin, &id)
        .await
        .map_err(console_error)
}

#[server]
pub async fn send_test_alert(id: String) -> Result<(), ServerFnError> {
    use crate::ssr::{console_error, require_admin};
    let (state, admin) = require_admin().await?;
    domain::alerts::send_test(&state.store, &admin, &id)
        .await
        .map_err(console_error)
}

/// Turns a rule on or off, with its threshold (empty: the default).
#[server]
pub async fn set_alert_rule(
    rule: String,
    enabled: bool,
    threshold: Option<i64>,
) -> Result<(), ServerFnError> {
    use crate::ssr::{console_error, invalid, require_recent_login};
    let parsed = domain::alerts::Rule::parse(&rule)
        .ok_or_else(|| invalid(format!("unknown alert rule {rule:?}")))?;
    let (state, admin) = require_recent_login().await?;
    domain::alerts::set_rule(&state.store, &admin, parsed, enabled, threshold)
        .await
        .map_err(console_error)
}

/// An action's error for the page, unless it is a step-up the page asks for.
fn refusal<T: Clone + Send + Sync + 'static>(
    result: Option<Result<T, ServerFnError>>,
) -> Option<impl IntoView> {
    result
        .filter(|r| !needs_step_up(&Some(r.clone())))
        .and_then(|r| r.err())
        .map(|e| view! { <p class="error" role="alert">{crate::error_message(&e)}</p> })
}

#[component]
pub fn AlertsPage() -> impl IntoView {
    let webhook = ServerAction::<AddAlertWebhook>::new();
    let email = ServerAction::<AddAlertEmail>::new();
    let remove = ServerAction::<RemoveAlertDestination>::new();
    let test = ServerAction::<SendTestAlert>::new();
    let rule = ServerAction::<SetAlertRule>::new();
    let data = page_data(
        move || {
            (
                webhook.version().get(),
                email.version().get(),
                remove.version().get(),
                rule.version().get(),
            )
        },
        |_| alert_settings(),
    );
    let last_webhook = RwSignal::new(None::<AddAlertWebhook>);
    let last_email = RwSignal::new(None::<AddAlertEmail>);
    let last_remove = RwSignal::new(None::<RemoveAlertDestination>);
    let last_rule = RwSignal::new(None::<SetAlertRule>);
    let step_up = |pending: Signal<bool>, value: Signal<bool>| {
        Signal::derive(move || !pending.get() && value.get())
    };
    let webhook_step_up = step_up(
        webhook.pending().into(),
        Signal::derive(move || needs_step_up(&webhook.value().get())),
    );
    let email_step_up = step_up(
        email.pending().into(),
        Signal::derive(move || needs_step_up(&email.value().get())),
    );
    let remove_step_up = step_up(
        remove.pending().into(),
        Signal::derive(move || needs_step_up(&remove.value().get())),
    );
    let rule_step_up = step_up(
        rule.pending().into(),
        Signal::derive(move || needs_step_up(&rule.value().get())),
    );
    let retry_webhook = Callback::new(move |()| {
        if let Some(r) = last_webhook.get_untracked() {
            webhook.dispatch(r);
        }
    });
    let retry_email = Callback::new(move |()| {
        if let Some(r) = last_email.get_untracked() {
            email.dispatch(r);
        }
    });
    let retry_remove = Callback::new(move |()| {
        if let Some(r) = last_remove.get_untracked() {
            remove.dispatch(r);
        }
    });
    let retry_rule = Callback::new(move |()| {
        if let Some(r) = last_rule.get_untracked() {
            rule.dispatch(r);
        }
    });
    let secret = move || {
        webhook.value().get().and_then(|r| r.ok()).map(|secret| {
            view! {
                <div class="notice" role="status" data-testid="webhook-secret">
                    <p>"The webhook's signing secret. Copy it now: it will not be shown again."</p>
                    <pre class="body"><code data-testid="secret">{secret}</code></pre>
                    <p class="muted">"Each alert's body is signed with it: the "<code>"X-Signature"</code>
                        " header holds "<code>"sha256="</code>" and the hex HMAC-SHA256 of the body, keyed with this whole secret."</p>
                </div>
            }
        })
    };
    let tested = move || {
        test.value().get().map(|r| match r {
            Ok(()) => view! { <p class="success" role="status">"Test alert queued: it is sent within seconds."</p> }.into_any(),
            Err(e) => view! { <p class="error" role="alert">{crate::error_message(&e)}</p> }.into_any(),
        })
    };
    view! {
        <Title text="Alerts"/>
        <h1>"Alerts"</h1>
        <p class="muted">"Alerts tell you, in a Slack channel, another webhook or an email, that provisioning broke and why, without opening the console. Each condition sends one alert when it starts and one when it clears. Every delivery attempt is in the audit log."</p>
        <section class="card">
            <h2>"Destinations"</h2>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Ok(v) if v.destinations.is_empty() => view! {
                            <p class="empty">"No destination yet: add a webhook or an email address below."</p>
                        }.into_any(),
                        Ok(v) => view! {
                            <ul class="plain" data-testid="destinations">
                                {v.destinations.into_iter().map(|d| {
                                    let (test_id, remove_id) = (d.id.clone(), d.id.clone());
                                    view! {
                                        <li>
                                            <strong>{if d.kind == "email" { "Email " } else { "Webhook " }}</strong>
                                            <code>{d.shown_as}</code>
                                            <span class="muted">" added " <LocalTime moment=d.added/></span>
                                            " "
                                            <button type="button" disabled=move || test.pending().get()
                                                on:click=move |_| { test.dispatch(SendTestAlert { id: test_id.clone() }); }>
                                                "Send test alert"
                                            </button>
                                            <button type="button" class="danger" disabled=move || remove.pending().get()
                                                on:click=move |_| {
                                                    let request = RemoveAlertDestination { id: remove_id.clone() };
                                                    last_remove.set(Some(request.clone()));
                                                    remove.dispatch(request);
                                                }>
                                                "Remove"
                                            </button>
                                        </li>
                                    }
                                }).collect_view()}
                            </ul>
                        }.into_any(),
                        Err(e) => view! { <p class="error" role="alert">{crate::error_message(&e)}</p> }.into_any(),
                    }
                })}
            </Transition>
            {tested}
            <StepUp needed=remove_step_up retry=retry_remove/>
            {move || refusal(remove.value().get())}
        </section>
        <section class="card">
            <h2>"Add a webhook"</h2>
            <form class="stacked" on:submit=move |ev| {
                ev.prevent_default();
                if let Ok(request) = AddAlertWebhook::from_event(&ev) {
                    last_webhook.set(Some(request.clone()));
                    webhook.dispatch(request);
                }
            }>
                <label for="webhook-url">"HTTPS URL (a Slack incoming webhook works as is)"</label>
                <input id="webhook-url" type="url" name="url" required autocomplete="off"
                    placeholder="https://hooks.slack.com/services/…"/>
                <button type="submit" class="primary" disabled=move || webhook.pending().get()>"Add webhook"</button>
            </form>
            <StepUp needed=webhook_step_up retry=retry_webhook/>
            {move || refusal(webhook.value().get())}
            {secret}
        </section>
        <section class="card">
            <h2>"Add an email address"</h2>
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    let smtp = data.await.map(|v| v.smtp).unwrap_or(false);
                    if smtp {
                        view! {
                            <form class="stacked" on:submit=move |ev| {
                                ev.prevent_default();
                                if let Ok(request) = AddAlertEmail::from_event(&ev) {
                                    last_email.set(Some(request.clone()));
                                    email.dispatch(request);
                                }
                            }>
                                <label for="alert-email">"Email"</label>
                                <input id="alert-email" type="email" name="address" required autocomplete="off"/>
                                <button type="submit" class="primary" disabled=move || email.pending().get()>"Add email"</button>
                            </form>
                        }.into_any()
                    } else {
                        view! {
                            <p class="muted" data-testid="no-smtp">"Email alerts need an SMTP server, which the operator has not set up (SMTP_URL)."</p>
                        }.into_any()
                    }
                })}
            </Transition>
            <StepUp needed=email_step_up retry=retry_email/>
            {move || refusal(email.value().get())}
        </section>
        <section class="card">
            <h2>"Rules"</h2>
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    data.await.ok().map(|v| view! {
                        <ul class="plain rules" data-testid="rules">
                            {v.rules.into_iter().map(|r| {
                                let (text, unit) = rule_text(&r.rule);
                                let name = r.rule.clone();
                                let enabled = RwSignal::new(r.enabled);
                                let threshold = RwSignal::new(r.threshold.map(|t| t.to_string()).unwrap_or_default());
                                let has_threshold = r.threshold.is_some();
                                view! {
                                    <li data-rule=r.rule.clone()>
                                        <form class="rule" on:submit=move |ev| {
                                            ev.prevent_default();
                                            let request = SetAlertRule {
                                                rule: name.clone(),
                                                enabled: enabled.get_untracked(),
                                                threshold: threshold.get_untracked().trim().parse().ok(),
                                            };
                                            last_rule.set(Some(request.clone()));
                                            rule.dispatch(request);
                                        }>
                                            <label>
                                                <input type="checkbox" prop:checked=move || enabled.get()
                                                    on:change=move |ev| enabled.set(event_target_checked(&ev))/>
                                                " " {text}
                                            </label>
                                            {has_threshold.then(|| view! {
                                                " "
                                                <input type="number" class="threshold" min=r.min max=r.max required
                                                    aria-label=format!("Threshold ({unit})")
                                                    prop:value=move || threshold.get()
                                                    on:input=move |ev| threshold.set(event_target_value(&ev))/>
                                                " " {unit}
                                            })}
                                            " "
                                            <button type="submit" disabled=move || rule.pending().get()>"Save"</button>
                                        </form>
                                    </li>
                                }
                            }).collect_view()}
                        </ul>
                    })
                })}
            </Transition>
            <StepUp needed=rule_step_up retry=retry_rule/>
            {move || refusal(rule.value().get())}
            <p class="muted">"The failure rate counts an integration's requests answered with an error other than 404 (IdPs look up users that are gone), once it made at least 10 in the 15 minutes; it needs the Sync activity log."</p>
        </section>
    }
}
