//! The browser entry point: hydrates the server-rendered console, loading the module of the
//! page shown (its lazy route) before hydrating it.
// The console's nested views make deep types; the default limit (128) is too low for them.
#![recursion_limit = "256"]

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_lazy(app::App);
}
