// Preloaded (node --import) by every e2e test that ctest runs: without the
// npm packages the tests must FAIL loudly, never skip.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const e2eDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(e2eDir, 'package.json'));
const missing = [];
if (!existsSync(join(e2eDir, 'node_modules'))) {
  missing.push('node_modules/');
} else {
  for (const name of ['eventsource', 'rxdb/package.json', 'rxjs']) {
    try {
      require.resolve(name);
    } catch {
      missing.push(name);
    }
  }
}
if (missing.length > 0) {
  process.stderr.write(
    `\nroomsync e2e: the npm packages are not installed in ${e2eDir} ` +
      `(missing: ${missing.join(', ')}).\n` +
      `Install them with:  (cd tests/e2e && npm ci --no-audit --no-fund)\n` +
      `(scripts/test.sh does this before ctest.)\n\n`);
  process.exit(1);
}
