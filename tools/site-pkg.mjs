// Publishes the console's assets into a site: `node tools/site-pkg.mjs FROM SITE_ROOT`.
//
// FROM holds console.js, console.wasm and console.css as the build made them. Each is written
// to SITE_ROOT/pkg under a name carrying its content's hash (console.<hash>.wasm), beside a
// brotli (.br) and a gzip (.gz) copy that the server sends to browsers accepting them, so a
// file's name changes whenever its content does and browsers may keep it for good. Then
// SITE_ROOT/hash.txt, which the server reads to name the current files in its pages, is
// replaced in one step, files of earlier builds are removed, and the sizes are printed.
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

const NAME = 'console';
const KINDS = ['js', 'wasm', 'css'];

const [from, siteRoot] = process.argv.slice(2);
if (!from || !siteRoot) {
  console.error('usage: node tools/site-pkg.mjs FROM SITE_ROOT');
  process.exit(2);
}
const pkg = join(siteRoot, 'pkg');
mkdirSync(pkg, { recursive: true });

const written = new Set();
const hashes = [];
const rows = [];
for (const kind of KINDS) {
  const content = readFileSync(join(from, `${NAME}.${kind}`));
  // 64 bits of SHA-256: names stay short, and a collision between two builds is not a concern.
  const hash = createHash('sha256').update(content).digest('hex').slice(0, 16);
  const name = `${NAME}.${hash}.${kind}`;
  const br = brotliCompressSync(content, {
    params: {
      [constants.BROTLI_PARAM_QUALITY]: constants.BROTLI_MAX_QUALITY,
      [constants.BROTLI_PARAM_SIZE_HINT]: content.length,
      [constants.BROTLI_PARAM_MODE]:
        kind === 'wasm' ? constants.BROTLI_MODE_GENERIC : constants.BROTLI_MODE_TEXT,
    },
  });
  const gz = gzipSync(content, { level: 9 });
  writeFileSync(join(pkg, name), content);
  writeFileSync(join(pkg, `${name}.br`), br);
  writeFileSync(join(pkg, `${name}.gz`), gz);
  for (const file of [name, `${name}.br`, `${name}.gz`]) written.add(file);
  hashes.push(`${kind}: ${hash}\n`);
  rows.push([name, content.length, gz.length, br.length]);
}

const hashFile = join(siteRoot, 'hash.txt');
writeFileSync(`${hashFile}.new`, hashes.join(''));
renameSync(`${hashFile}.new`, hashFile);

for (const file of readdirSync(pkg)) {
  if (!written.has(file)) rmSync(join(pkg, file), { recursive: true, force: true });
}

const width = Math.max(...rows.map(([name]) => name.length));
const bytes = (n) => n.toLocaleString('en-US').padStart(10);
console.log(`${'file'.padEnd(width)}  ${'raw'.padStart(10)}  ${'gzip -9'.padStart(10)}  ${'brotli'.padStart(10)}`);
for (const [name, raw, gz, br] of rows) {
  console.log(`${name.padEnd(width)}  ${bytes(raw)}  ${bytes(gz)}  ${bytes(br)}`);
}
