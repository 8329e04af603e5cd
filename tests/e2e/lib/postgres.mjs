// A PostgreSQL 15 of the test's own, for tests that restart or stop the
// server (the suite's shared one, scripts/with-postgres.sh, must stay up for
// the other tests). Same settings as with-postgres.sh: 127.0.0.1 only, a
// free port, trust auth, fsync on; initdb as `postgres` when run as root,
// since initdb refuses root.
import { execFileSync } from 'node:child_process';
import { chownSync, mkdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';

import { tempDir } from './roomsync.mjs';

const PG_BIN = '/usr/lib/postgresql/15/bin';

function postgresUid() {
  const line = execFileSync('getent', ['passwd', 'postgres'], { encoding: 'utf8' });
  const [, , uid, gid] = line.trim().split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

async function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

// Resolves with { url (the `postgres` database), port, restart(), stop(),
// start(), log() }. restart() is `pg_ctl restart -m fast`: every
// connection is closed, the server is back when it resolves.
export async function startPostgres() {
  const dir = tempDir('roomsync-e2e-pg-');
  const data = join(dir, 'data');
  const asRoot = process.getuid() === 0;
  const run = (bin, args, options = {}) => {
    const cmd = asRoot ? 'runuser' : join(PG_BIN, bin);
    const argv = asRoot ? ['-u', 'postgres', '--', join(PG_BIN, bin), ...args] : args;
    return execFileSync(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', ...options });
  };
  mkdirSync(data);
  if (asRoot) {
    const { uid, gid } = postgresUid();
    chownSync(dir, uid, gid);
    chownSync(data, uid, gid);
  }
  // -N: initdb's own fsyncs are pointless for a throwaway cluster; the
  // server keeps fsync on.
  run('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '-N']);
  const port = await freePort();
  const options = `-p ${port} -c listen_addresses=127.0.0.1 -c max_connections=100 -c unix_socket_directories=${dir}`;
  const logFile = join(dir, 'server.log');
  const ctl = (action, extra = []) => run('pg_ctl', ['-D', data, '-l', logFile, '-w', '-t', '60', '-o', options, ...extra, action]);
  ctl('start');
  return {
    port,
    url: `postgresql://postgres@127.0.0.1:${port}/postgres`,
    restart: () => ctl('restart', ['-m', 'fast']),
    async stop() {
      try {
        run('pg_ctl', ['-D', data, '-m', 'immediate', 'stop']);
      } catch {
        // already stopped
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
