//! The console's assets under `/pkg`: the wasm, its JS glue and the stylesheet. The build
//! (`tools/site-pkg.mjs`) writes each under a name carrying its content's hash, beside a
//! brotli and a gzip copy, and names the current ones in the site's hash file, which the
//! pages' hydration scripts and stylesheet link read. A hashed name always holds the same
//! bytes, so browsers keep such a file for a year without asking again: a new build brings
//! new names, and the pages (never stored) name them at once.

use std::path::Path;

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use leptos::prelude::LeptosOptions;
use tower_http::services::ServeDir;

/// The file in the site root naming the current assets (`wasm: <hash>` per line).
pub const HASH_FILE: &str = "hash.txt";

/// What a hashed name is sent with: it never changes, so it is never asked for again.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// What any other file in `pkg/` is sent with (a site built before names were hashed): kept,
/// but checked with the server (`If-Modified-Since`) on each use.
const REVALIDATE: &str = "no-cache";

/// `options` naming the site's hashed assets in the pages it renders, when the site has a
/// hash file; otherwise the plain names (`console.wasm`).
pub fn hashed_names(mut options: LeptosOptions) -> LeptosOptions {
    let hash_file = Path::new(&*options.site_root).join(HASH_FILE);
    // Leptos reads the hash file relative to the server binary's directory (where
    // cargo-leptos puts it) unless the path is absolute; the site root is where ours lives.
    let hash_file = std::path::absolute(&hash_file).unwrap_or(hash_file);
    options.hash_files = hash_file.is_file();
    options.hash_file = hash_file.to_string_lossy().into();
    options
}

/// Serves `pkg/` of the site, precompressed where the client accepts it (brotli before gzip).
/// Outside the console's session layer: an asset needs no session, so its request costs no
/// session lookup.
pub fn router<S: Clone + Send + Sync + 'static>(options: &LeptosOptions) -> Router<S> {
    let pkg_dir = &*options.site_pkg_dir;
    let files = ServeDir::new(Path::new(&*options.site_root).join(pkg_dir))
        .precompressed_br()
        .precompressed_gzip();
    Router::new()
        .nest_service(&format!("/{pkg_dir}"), files)
        .layer(axum::middleware::from_fn(cache_headers))
}

async fn cache_headers(req: Request, next: Next) -> Response {
    let hashed = is_hashed(req.uri().path().rsplit('/').next().unwrap_or_default());
    let mut response = next.run(req).await;
    if matches!(response.status(), StatusCode::OK | StatusCode::NOT_MODIFIED) {
        let headers = response.headers_mut();
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(if hashed { IMMUTABLE } else { REVALIDATE }),
        );
        // The body depends on Accept-Encoding: a shared cache must not hand a brotli body
        // to a client that asked for none.
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    response
}

/// Whether `name` carries its content's hash as the build writes it: `<stem>.<16 or more
/// hexadecimal digits>.<extension>`, e.g. `console.3f2a9c01d4b7e865.wasm`.
fn is_hashed(name: &str) -> bool {
    let mut parts = name.rsplit('.');
    let (Some(_extension), Some(hash), Some(stem)) = (parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    !stem.is_empty() && hash.len() >= 16 && hash.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::is_hashed;

    #[test]
    fn only_names_with_a_content_hash_count_as_hashed() {
        for (name, hashed) in [
            ("console.3f2a9c01d4b7e865.wasm", true),
            ("console.3F2A9C01D4B7E865.js", true),
            ("console.min.3f2a9c01d4b7e86512.css", true),
            ("console.wasm", false),
            ("console_bg.wasm", false),
            ("console.3f2a9c01.wasm", false),
            ("console.3f2a9c01d4b7e86z.wasm", false),
            (".3f2a9c01d4b7e865.wasm", false),
            ("3f2a9c01d4b7e865.wasm", false),
            ("", false),
        ] {
            assert_eq!(is_hashed(name), hashed, "{name}");
        }
    }
}
