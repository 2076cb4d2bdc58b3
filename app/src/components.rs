//! Small pieces shared by pages.

use std::future::Future;

use leptos::prelude::*;
use leptos::server::codee::{Decoder, Encoder};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Data a page loads through a server function: the server renders the page with it and
/// carries it inside the page, and the browser fetches it again when `source` changes. As
/// `Resource::new`, except that the browser reads the page's copy with the reader it reads
/// server functions' answers with (`serde_json::from_slice`; `Resource::new` uses
/// `from_str`), so its wasm carries one JSON deserializer per type instead of two.
pub fn page_data<T, S, Fut>(
    source: impl Fn() -> S + Send + Sync + 'static,
    fetcher: impl Fn(S) -> Fut + Send + Sync + 'static,
) -> Resource<T, JsonAsBytes>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
    S: Send + Sync + Clone + PartialEq + 'static,
    Fut: Future<Output = T> + Send + 'static,
{
    Resource::new_with_options(source, fetcher, false)
}

/// JSON, decoded from bytes: see [`page_data`].
pub struct JsonAsBytes;

impl<T: Serialize> Encoder<T> for JsonAsBytes {
    type Error = serde_json::Error;
    type Encoded = String;

    fn encode(value: &T) -> Result<String, Self::Error> {
        serde_json::to_string(value)
    }
}

impl<T: DeserializeOwned> Decoder<T> for JsonAsBytes {
    type Error = serde_json::Error;
    type Encoded = str;

    fn decode(text: &str) -> Result<T, Self::Error> {
        serde_json::from_slice(text.as_bytes())
    }
}

/// A button that copies `text` to the clipboard and says so.
#[component]
pub fn CopyButton(
    #[prop(into)] text: Signal<String>,
    #[prop(into)] label: String,
) -> impl IntoView {
    let copied = RwSignal::new(false);
    let copy = move |_| {
        #[cfg(feature = "hydrate")]
        {
            if let Some(window) = web_sys::window() {
                let _ = window
                    .navigator()
                    .clipboard()
                    .write_text(&text.get_untracked());
                copied.set(true);
            }
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = text;
    };
    view! {
        <button type="button" class="copy" on:click=copy aria-label=label>
            {move || if copied.get() { "Copied" } else { "Copy" }}
        </button>
    }
}

pub use model::Moment;

/// Renders a moment as "March 24, 2020 at 10:40:37 AM GMT+1" in the browser's time zone. The server
/// renders UTC; after hydration the browser replaces it with local time.
#[component]
pub fn LocalTime(moment: Moment) -> impl IntoView {
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    let Moment {
        at_ms,
        utc_text,
        rfc3339,
    } = moment;
    let text = move || {
        if hydrated.get() {
            local_text(at_ms).unwrap_or_else(|| utc_text.clone())
        } else {
            utc_text.clone()
        }
    };
    view! { <time datetime=rfc3339>{text}</time> }
}

#[cfg(feature = "hydrate")]
fn local_text(at_ms: i64) -> Option<String> {
    use wasm_bindgen::JsValue;
    let date = js_sys::Date::new(&JsValue::from_f64(at_ms as f64));
    let options = js_sys::Object::new();
    js_sys::Reflect::set(&options, &"dateStyle".into(), &"long".into()).ok()?;
    // "long" names the time zone, as the server's UTC rendering does, so that the text keeps
    // its width when the browser replaces it (no layout shift where the browser is in UTC).
    js_sys::Reflect::set(&options, &"timeStyle".into(), &"long".into()).ok()?;
    Some(date.to_locale_string("en-US", &options).into())
}

#[cfg(not(feature = "hydrate"))]
fn local_text(_at_ms: i64) -> Option<String> {
    None
}

/// The `on:change` of a list's filter: sets `signal` to the value chosen and `restart`s the
/// list (back to its first page). A value that does not parse (the page offers none)
/// changes nothing.
pub fn on_filter<T>(
    signal: RwSignal<T>,
    restart: impl Fn() + Copy + 'static,
) -> impl Fn(leptos::ev::Event) + Copy
where
    T: std::str::FromStr + Send + Sync + 'static,
{
    move |ev| {
        if let Ok(value) = event_target_value(&ev).parse() {
            restart();
            signal.set(value);
        }
    }
}

/// "Showing 51–100 of 1234 users" with Previous and Next buttons driving `page` (from 1).
#[component]
pub fn Pager(page: RwSignal<u64>, total: u64, page_size: u32, noun: &'static str) -> impl IntoView {
    let size = u64::from(page_size);
    let current = page.get_untracked().max(1);
    let first = (current - 1) * size + 1;
    let last = (current * size).min(total);
    let pages = total.div_ceil(size).max(1);
    view! {
        <nav class="pager" aria-label="Pages">
            <span class="muted" role="status">
                {if total == 0 { format!("No {noun}") } else { format!("Showing {first}–{last} of {total} {noun}") }}
            </span>
            <button type="button" disabled={current <= 1} on:click=move |_| page.set(current - 1)>"Previous"</button>
            <button type="button" disabled={current >= pages} on:click=move |_| page.set(current + 1)>"Next"</button>
        </nav>
    }
}

/// Buttons for a newest-first list read in pages by id: back to the newest, and the next
/// older page (`older` is `None` on the last one).
#[component]
pub fn NewerOlder(
    before: RwSignal<Option<i64>>,
    older: Option<i64>,
    noun: &'static str,
) -> impl IntoView {
    view! {
        <div class="pager">
            {before.get_untracked().is_some().then(|| view! {
                <button type="button" on:click=move |_| before.set(None)>"Newest"</button>
            })}
            {older.map(|id| view! {
                <button type="button" on:click=move |_| before.set(Some(id))>{format!("Older {noun}")}</button>
            })}
        </div>
    }
}

/// Whether an action's outcome is a refusal for want of a recent login ([`crate::STEP_UP`]).
pub fn needs_step_up<T>(outcome: &Option<Result<T, ServerFnError>>) -> bool {
    matches!(outcome, Some(Err(e)) if crate::error_message(e) == crate::STEP_UP)
}

/// Asks for the admin's password while `needed` (an action was refused for want of a recent
/// login), confirms it, then runs `retry`: the action goes through without the admin
/// starting it over.
#[component]
pub fn StepUp(#[prop(into)] needed: Signal<bool>, retry: Callback<()>) -> impl IntoView {
    let confirm = ServerAction::<crate::auth::ConfirmIdentity>::new();
    Effect::new(move |_| {
        if matches!(confirm.value().get(), Some(Ok(()))) {
            retry.run(());
        }
    });
    // Or the password and a passkey, in place of a code.
    let password = NodeRef::<leptos::html::Input>::new();
    let passkey_error = RwSignal::new(None::<String>);
    let with_passkey = move |_| {
        let password = password.get().map(|i| i.value()).unwrap_or_default();
        passkey_error.set(None);
        leptos::task::spawn_local(async move {
            let outcome = async {
                let challenge = crate::auth::start_passkey_step_up()
                    .await
                    .map_err(|e| crate::error_message(&e))?;
                let credential = crate::webauthn::get(challenge).await?;
                crate::auth::confirm_identity_with_passkey(password, credential)
                    .await
                    .map_err(|e| crate::error_message(&e))
            }
            .await;
            match outcome {
                Ok(()) => retry.run(()),
                Err(e) => passkey_error.set(Some(e)),
            }
        });
    };
    let error = move || {
        confirm
            .value()
            .get()
            .and_then(|r| r.err())
            .map(|e| crate::error_message(&e))
            .or_else(|| passkey_error.get())
    };
    view! {
        <Show when=move || needed.get()>
            <div class="step-up" role="dialog" aria-labelledby="step-up-title" data-testid="step-up">
                <p id="step-up-title">{crate::STEP_UP}</p>
                <ActionForm action=confirm attr:class="stacked">
                    <label for="step-up-password">"Password"</label>
                    <input id="step-up-password" type="password" name="password"
                        autocomplete="current-password" required node_ref=password/>
                    <label for="step-up-code">"Code from your authenticator app (if you use one)"</label>
                    <input id="step-up-code" type="text" name="code" autocomplete="one-time-code"
                        inputmode="numeric"/>
                    {move || error().map(|e| view! { <p class="error" role="alert">{e}</p> })}
                    <button type="submit" class="primary" disabled=move || confirm.pending().get()>
                        "Confirm and continue"
                    </button>
                    <button type="button" class="link" on:click=with_passkey>
                        "Confirm with a passkey instead of a code"
                    </button>
                </ActionForm>
            </div>
        </Show>
    }
}
