#!/usr/bin/env node
// Assembles the demo chat's web root, for `roomsync --web OUTDIR`:
//
//   node clients/js/scripts/build-web.mjs OUTDIR
//
//   OUTDIR/                         clients/demo/ (index.html, app.js, ...)
//   OUTDIR/lib/roomsync/            clients/js/src/ (@roomsync/client)
//   OUTDIR/vendor/tinybase/store.js       tinybase/min/store/index.js
//   OUTDIR/vendor/tinybase/persisters.js  tinybase/min/persisters/index.js
//
// and, in OUTDIR/index.html, the demo's `<!-- modulepreload -->` comment
// becomes one `<link rel="modulepreload">` per module of the package and of
// TinyBase: the browser then fetches them all at once instead of one level
// of imports after the other (four round trips on a cold load).
//
// which is what the demo's import map names. Plain Node >= 18, no npm
// dependencies; TinyBase comes from clients/js/node_modules (`npm ci`).
//
// OUTDIR is emptied first only when this script made it: it leaves a
// `.roomsync-web` marker there (a hidden file, which the gateway does not
// serve). An existing directory without the marker is used only when it is
// empty; otherwise the script stops, so that a mistyped OUTDIR never wipes
// someone's files.
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const MARKER = '.roomsync-web';

const jsDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const demoDir = resolve(jsDir, '..', 'demo');
const srcDir = join(jsDir, 'src');
const tinybaseDir = join(jsDir, 'node_modules', 'tinybase', 'min');
const vendored = [
  [join(tinybaseDir, 'store', 'index.js'), join('vendor', 'tinybase', 'store.js')],
  [join(tinybaseDir, 'persisters', 'index.js'), join('vendor', 'tinybase', 'persisters.js')],
];

function fail(message) {
  console.error(`build-web: ${message}`);
  process.exit(1);
}

function isDirectory(path) {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

// Copies the tree at `from` into `to` (created if needed); symlinks are
// followed, so the web root holds plain files. Returns the number of files.
function copyTree(from, to) {
  mkdirSync(to, { recursive: true });
  let files = 0;
  for (const entry of readdirSync(from)) {
    const source = join(from, entry);
    const target = join(to, entry);
    const info = statSync(source);
    if (info.isDirectory()) {
      files += copyTree(source, target);
    } else if (info.isFile()) {
      copyFileSync(source, target);
      files += 1;
    }
  }
  return files;
}

// Makes `out` an empty directory marked as ours, or stops.
function prepareOutput(out) {
  if (existsSync(out)) {
    if (!isDirectory(out)) fail(`${out} exists and is not a directory`);
    const entries = readdirSync(out);
    if (entries.length > 0 && !entries.includes(MARKER)) {
      fail(`${out} is not empty and was not made by this script (no ${MARKER} in it); ` +
        'name a new or empty directory, or remove it yourself');
    }
    // Empty it, but keep the directory: a running gateway keeps its root.
    for (const entry of entries) rmSync(join(out, entry), { recursive: true, force: true });
  } else {
    mkdirSync(out, { recursive: true });
  }
  // First, so that a build that stops half-way is still recognised as ours.
  writeFileSync(join(out, MARKER),
    'Made by clients/js/scripts/build-web.mjs, which empties this directory on each run.\n');
}

function main(args) {
  if (args.length !== 1 || args[0].startsWith('-')) {
    console.error('usage: node clients/js/scripts/build-web.mjs OUTDIR');
    process.exit(2);
  }
  const out = resolve(args[0]);
  if (!isDirectory(demoDir)) fail(`the demo is missing: ${demoDir} is not a directory`);
  if (!isDirectory(srcDir)) fail(`the client is missing: ${srcDir} is not a directory`);
  const missing = vendored.filter(([from]) => !existsSync(from)).map(([from]) => from);
  if (missing.length > 0) {
    fail(`TinyBase is not installed (${missing.join(', ')} missing): run ` +
      `\`(cd ${relative(process.cwd(), jsDir) || '.'} && npm ci)\` first`);
  }
  for (const source of [demoDir, srcDir, jsDir]) {
    const path = relative(source, out);
    const outside = path === '..' || path.startsWith(`..${sep}`) || isAbsolute(path);
    if (!outside) {
      fail(`${out} is inside the sources (${source}); pick a directory outside them`);
    }
  }

  prepareOutput(out);
  let files = copyTree(demoDir, out);
  files += copyTree(srcDir, join(out, 'lib', 'roomsync'));
  for (const [from, to] of vendored) {
    mkdirSync(dirname(join(out, to)), { recursive: true });
    copyFileSync(from, join(out, to));
    files += 1;
  }
  const preloaded = addModulePreloads(out);
  console.log(`build-web: ${files} files in ${out} (${preloaded} modules preloaded)`);
}

const PRELOAD_PLACEHOLDER = '<!-- modulepreload -->';

// Lists every .js under lib/ and vendor/ of `out` as a modulepreload link
// where index.html has the placeholder; returns how many.
function addModulePreloads(out) {
  const index = join(out, 'index.html');
  const html = readFileSync(index, 'utf8');
  if (!html.includes(PRELOAD_PLACEHOLDER)) return 0;
  const modules = [];
  const walk = (dir) => {
    for (const entry of readdirSync(dir).sort()) {
      const path = join(dir, entry);
      if (isDirectory(path)) walk(path);
      else if (entry.endsWith('.js')) modules.push(`/${relative(out, path).split(sep).join('/')}`);
    }
  };
  for (const top of ['lib', 'vendor']) if (isDirectory(join(out, top))) walk(join(out, top));
  const links = modules.map((m) => `<link rel="modulepreload" href="${m}">`).join('\n  ');
  writeFileSync(index, html.replace(PRELOAD_PLACEHOLDER, links));
  return modules.length;
}

main(process.argv.slice(2));
