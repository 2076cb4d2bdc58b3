// Publishes the console's assets into a site: `node tools/site-pkg.mjs FROM SITE_ROOT`.
//
// FROM holds one build's files as the build made them: console.js, console.wasm (the main
// module), console.css, and, from tools/wasm-split, the lazily loaded wasm modules of the
// pages, their loader (`__wasm_split.<placeholder>.js`) and `__wasm_split_manifest.json`.
// They name each other, so they are published together, unchanged, into SITE_ROOT/pkg/<hash>,
// a folder named by the hash of all their content: a file's URL changes whenever any content
// of its build does, so browsers may keep it for good. Each JS, wasm and CSS file gets a
// brotli (.br) and a gzip (.gz) copy that the server sends to browsers accepting them.
//
// Then SITE_ROOT/hash.txt, which the server reads to name the current build's folder in its
// pages, is replaced in one step. The build before stays, for pages still open in browsers
// that load a page's module after the switch; older builds are removed. The sizes are
// printed.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

const [from, siteRoot] = process.argv.slice(2);
if (!from || !siteRoot) {
  console.error('usage: node tools/site-pkg.mjs FROM SITE_ROOT');
  process.exit(2);
}
const files = readdirSync(from, { recursive: true, withFileTypes: true })
  .filter((entry) => entry.isFile())
  .map((entry) => join(entry.parentPath, entry.name).slice(from.length).replace(/^\/+/, ''))
  .sort();
for (const needed of ['console.js', 'console.wasm', 'console.css']) {
  if (!files.includes(needed)) {
    console.error(`site-pkg: ${join(from, needed)} is missing`);
    process.exit(1);
  }
}

// 64 bits of SHA-256 over every file's name and content: names stay short, and a collision
// between two builds is not a concern.
const digest = createHash('sha256');
for (const file of files) {
  digest.update(`${file}\0`).update(readFileSync(join(from, file))).update('\0');
}
const build = digest.digest('hex').slice(0, 16);

const pkg = join(siteRoot, 'pkg');
const dir = join(pkg, build);
rmSync(`${dir}.new`, { recursive: true, force: true });
const rows = [];
for (const file of files) {
  const content = readFileSync(join(from, file));
  const target = join(`${dir}.new`, file);
  mkdirSync(join(target, '..'), { recursive: true });
  writeFileSync(target, content);
  const kind = file.split('.').pop();
  if (!['js', 'wasm', 'css'].includes(kind)) continue;
  const br = brotliCompressSync(content, {
    params: {
      [constants.BROTLI_PARAM_QUALITY]: constants.BROTLI_MAX_QUALITY,
      [constants.BROTLI_PARAM_SIZE_HINT]: content.length,
      [constants.BROTLI_PARAM_MODE]: kind === 'wasm' ? constants.BROTLI_MODE_GENERIC : constants.BROTLI_MODE_TEXT,
    },
  });
  const gz = gzipSync(content, { level: 9 });
  writeFileSync(`${target}.br`, br);
  writeFileSync(`${target}.gz`, gz);
  rows.push([file, content.length, gz.length, br.length]);
}
rmSync(dir, { recursive: true, force: true });
renameSync(`${dir}.new`, dir);

const hashFile = join(siteRoot, 'hash.txt');
const previous = existsSync(hashFile) ? readFileSync(hashFile, 'utf8').trim() : '';
writeFileSync(`${hashFile}.new`, `${build}\n`);
renameSync(`${hashFile}.new`, hashFile);
for (const entry of readdirSync(pkg)) {
  if (entry !== build && entry !== previous) rmSync(join(pkg, entry), { recursive: true, force: true });
}

// The main module first: a page load fetches it (with the JS and CSS) and the modules of the
// page shown; the other modules come when their pages do.
const order = (name) => ['console.wasm', 'console.js', 'console.css'].indexOf(name) >>> 0;
rows.sort((a, b) => order(a[0]) - order(b[0]) || b[1] - a[1]);
const total = rows.filter(([name]) => name.endsWith('.wasm')).reduce(
  (sum, [, raw, gz, br]) => [sum[0] + raw, sum[1] + gz, sum[2] + br],
  [0, 0, 0],
);
rows.push(['all wasm modules together', ...total]);
const width = Math.max(...rows.map(([name]) => name.length));
const bytes = (n) => n.toLocaleString('en-US').padStart(10);
console.log(`pkg/${build}/`);
console.log(`${'file'.padEnd(width)}  ${'raw'.padStart(10)}  ${'gzip -9'.padStart(10)}  ${'brotli'.padStart(10)}`);
for (const [name, raw, gz, br] of rows) {
  console.log(`${name.padEnd(width)}  ${bytes(raw)}  ${bytes(gz)}  ${bytes(br)}`);
}
