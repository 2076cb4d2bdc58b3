//! `console-wasm-split INPUT OUT_DIR`: splits the console's linked wasm (built with
//! `-Clink-args=--emit-relocs`) at its lazy routes, as `cargo leptos build --split` does.
//!
//! Writes into OUT_DIR the main module `console_split.wasm` (for wasm-bindgen, which makes it
//! `console.js` and `console_bg.wasm`), one module per lazy route and per group of code that
//! routes share, the loader `__wasm_split.______________________.js` the wasm imports them
//! through, and `__wasm_split_manifest.json`: which modules each lazy route needs, so that a
//! page the server renders tells the browser to fetch them beside the main module. The names
//! are the ones Leptos' `HydrationScripts` looks for in an unhashed site: the build puts the
//! whole site under a folder named by its content's hash instead (tools/site-pkg.mjs).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, out_dir] = args.as_slice() else {
        eprintln!("usage: console-wasm-split INPUT OUT_DIR");
        return ExitCode::from(2);
    };
    match split(Path::new(input), Path::new(out_dir)) {
        Ok(modules) => {
            println!("split into the main module and {modules} lazily loaded ones");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("console-wasm-split: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn split(input: &Path, out_dir: &Path) -> Result<usize, Box<dyn std::error::Error>> {
    let wasm = std::fs::read(input).map_err(|e| format!("{}: {e}", input.display()))?;
    let main_out: PathBuf = out_dir.join("console_split.wasm");
    let split = wasm_split_cli_support::transform({
        let mut options = wasm_split_cli_support::Options::new(&wasm);
        options.output_dir = out_dir;
        options.main_out_path = &main_out;
        options.main_module = "./console.js";
        options.link_name = "./__wasm_split.______________________.js";
        options
    })
    .map_err(|e| format!("{e:?}"))?;
    std::fs::write(
        out_dir.join("__wasm_split_manifest.json"),
        serde_json::to_string_pretty(&split.prefetch_map)?,
    )?;
    Ok(split.split_modules.len())
}
