/**
 * The container image, checked without a Docker engine: the Dockerfile's properties are read
 * statically, and the final stage's file tree is assembled from this checkout and run — a node
 * and a gateway against a real Redis, initialised and serving a secret through the gateway — so
 * a file the image forgets (the Redis Lua scripts, bin/, package.json) fails here. What this
 * cannot check: that the base image tag exists and that `npm ci` succeeds inside it.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { call } from '../helpers/http';
import { freePorts } from '../helpers/ports';
import { gatewayPkiFiles, testKeys, waitFor } from '../helpers/procs';
import { type RedisServer, startRedis } from '../helpers/redis';
import { assembleFinalStage, copiesOf, parseDockerfile, type Stage } from './dockerfile';
import { ROOT } from './render';

const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
const stages = parseDockerfile(dockerfile);
const final = stages[stages.length - 1] as Stage;

function runs(stage: Stage, pattern: RegExp): boolean {
  return stage.instructions.some((i) => i.op === 'RUN' && pattern.test(i.args));
}

function stageRunning(pattern: RegExp): Stage | undefined {
  return stages.find((s) => runs(s, pattern));
}

describe('Dockerfile', () => {
  test('multi-stage, every stage on a Node 20 slim image pinned to an exact version', () => {
    assert.ok(stages.length >= 2, 'expected a multi-stage build');
    for (const s of stages) {
      const earlier = stages.slice(0, stages.indexOf(s)).map((x) => x.name);
      assert.ok(
        earlier.includes(s.base) ||
          /^node:20\.\d+\.\d+-(bookworm-|bullseye-)?slim(@sha256:[0-9a-f]{64})?$/.test(s.base),
        `stage ${s.name}: base "${s.base}" is not node:20.x.y-slim`,
      );
    }
  });

  test('builds dist/ in one stage and installs only production dependencies for the runtime', () => {
    const build = stageRunning(/\bnpm run build\b/);
    assert.ok(
      build && runs(build, /\bnpm ci\b(?!.*--omit=dev)/),
      'no stage runs `npm ci` and `npm run build`',
    );
    const deps = stageRunning(/\bnpm ci\b.*--omit=dev/);
    assert.ok(deps, 'no stage runs `npm ci --omit=dev`');
    const copies = copiesOf(final);
    assert.ok(
      copies.some((c) => c.from === build.name && c.sources.some((s) => s.endsWith('/dist'))),
      'the runtime stage does not copy dist/ from the build stage',
    );
    assert.ok(
      copies.some((c) => c.from === deps.name && c.sources.some((s) => s.endsWith('/node_modules'))),
      'the runtime stage does not copy node_modules from the production-dependencies stage',
    );
    assert.ok(!runs(final, /\bnpm (ci|install)\b/), 'the runtime stage must not install dependencies itself');
  });

  test('the runtime stage carries bin/, package.json and the Redis Lua scripts', () => {
    const fromContext = copiesOf(final)
      .filter((c) => c.from === null)
      .flatMap((c) => c.sources);
    for (const needed of ['bin', 'package.json', 'shared/storage/redis/scripts'])
      assert.ok(fromContext.includes(needed), `the runtime stage does not copy ${needed}`);
  });

  test('runs as a numeric non-root user with ENTRYPOINT ["leaderway"] on the PATH', () => {
    const users = final.instructions.filter((i) => i.op === 'USER');
    const user = users[users.length - 1]?.args ?? '';
    const m = /^(\d+)(?::(\d+))?$/.exec(user);
    assert.ok(m, `USER "${user}" must be numeric (uid[:gid]) so Kubernetes can verify runAsNonRoot`);
    assert.notEqual(Number(m[1]), 0, 'USER must not be root');
    const entry = final.instructions.filter((i) => i.op === 'ENTRYPOINT').pop();
    assert.deepEqual(JSON.parse(entry?.args ?? 'null'), ['leaderway']);
    const onPath =
      runs(final, /ln -s\S* \S*\/bin\/leaderway \/usr\/(local\/)?bin\/leaderway\b/) ||
      final.instructions.some((i) => i.op === 'ENV' && /PATH=.*\/bin/.test(i.args));
    assert.ok(onPath, '`leaderway` is neither linked into /usr/local/bin nor on PATH');
  });

  test('bakes in no secret', () => {
    for (const s of stages) {
      for (const i of s.instructions) {
        if (i.op === 'ENV' || i.op === 'ARG')
          assert.ok(
            !/(KEY|SECRET|TOKEN|PASSWORD|CREDENTIAL|REDIS_URL|POSTGRESQL_URL)\w*\s*=/i.test(i.args),
            `line ${i.line}: ${i.op} ${i.args}`,
          );
      }
      for (const c of copiesOf(s)) {
        for (const src of c.sources)
          assert.ok(
            !/(^|\/)(\.env|k8s|\.kube|secrets?)(\/|$)|\.pem$|\.key$/.test(src),
            `stage ${s.name} copies ${src}`,
          );
      }
    }
    assert.ok(
      !/LEADERWAY_(SEAL|ADVERTISEMENT(_SIGNING)?)_KEY/.test(dockerfile),
      'the Dockerfile mentions a key variable',
    );
  });

  test('.dockerignore is an allow-list that lets in exactly what COPY needs', () => {
    const patterns = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    assert.equal(patterns[0], '*', '.dockerignore must start by excluding everything');
    const allowed = patterns.filter((p) => p.startsWith('!')).map((p) => p.slice(1).replace(/\/$/, ''));
    for (const a of allowed)
      assert.ok(!/env|secret|k8s|kube|\.pem|\.key/i.test(a), `.dockerignore lets in ${a}`);
    for (const s of stages) {
      for (const c of copiesOf(s).filter((x) => x.from === null)) {
        for (const src of c.sources) {
          const ok = allowed.some((a) => src === a || src.startsWith(`${a}/`));
          assert.ok(ok, `COPY ${src} (stage ${s.name}) is excluded by .dockerignore`);
        }
      }
    }
  });
});

/** A leaderway process started from the assembled image tree. */
interface Started {
  child: ChildProcess;
  output: string[];
}

describe('the image file tree runs a node and a gateway', () => {
  let root = '';
  let app = '';
  let redis: RedisServer | undefined;
  const procs: Started[] = [];

  before(() => {
    // The build stage's output is this checkout's dist/: `npm test` builds it first (pretest).
    assert.ok(existsSync(path.join(ROOT, 'dist', 'cli', 'main.js')), 'dist/ is missing: run `npm run build`');
    root = mkdtempSync(path.join(tmpdir(), 'lw-image-'));
    app = assembleFinalStage(stages, ROOT, root);
  });

  after(async () => {
    for (const p of procs) {
      if (p.child.exitCode === null && p.child.signalCode === null) {
        p.child.kill('SIGTERM');
        const t = setTimeout(() => p.child.kill('SIGKILL'), 10_000);
        await new Promise((r) => p.child.once('exit', r));
        clearTimeout(t);
      }
    }
    await redis?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  function start(args: string[], env: Record<string, string>): Started {
    // As the ENTRYPOINT does: bin/leaderway from the image's WORKDIR, nothing from the checkout.
    const child = spawn(process.execPath, [path.join(app, 'bin', 'leaderway'), ...args], {
      cwd: app,
      env: { PATH: process.env.PATH ?? '', HOME: root, NODE_ENV: 'production', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const output: string[] = [];
    for (const s of [child.stdout, child.stderr]) s?.on('data', (d: Buffer) => output.push(d.toString()));
    const p = { child, output };
    procs.push(p);
    return p;
  }

  test('version', () => {
    const out = execFileSync(process.execPath, [path.join(app, 'bin', 'leaderway'), 'version'], {
      cwd: app,
      encoding: 'utf8',
    });
    assert.match(out, /^leaderway v\d+\.\d+\.\d+/);
  });

  test('init on a node, then write and read a secret through the gateway', async () => {
    redis = await startRedis();
    const [apiPort, clusterPort, gwPort] = (await freePorts(3)) as [number, number, number];
    const keys = testKeys();
    const pki = await gatewayPkiFiles();
    const gatewayUrl = `http://127.0.0.1:${gwPort}`;
    const common = {
      LEADERWAY_REDIS_URL: redis.url,
      LEADERWAY_ADVERTISEMENT_KEY: keys.adKey,
      LEADERWAY_LOG_LEVEL: 'warn',
      OTEL_SDK_DISABLED: 'true',
    };
    const node = start(['server'], {
      ...common,
      LEADERWAY_LISTEN_ADDR: `127.0.0.1:${apiPort}`,
      LEADERWAY_CLUSTER_LISTEN_ADDR: `127.0.0.1:${clusterPort}`,
      VAULT_API_ADDR: gatewayUrl,
      VAULT_CLUSTER_ADDR: `https://127.0.0.1:${clusterPort}`,
      LEADERWAY_SEAL_KEY: keys.sealKey,
      LEADERWAY_ADVERTISEMENT_SIGNING_KEY: keys.signingKey,
      LEADERWAY_GATEWAY_CA_FILE: pki.caFile,
      LEADERWAY_NODE_ID: 'image-node',
    });
    const gateway = start(['gateway'], {
      ...common,
      LEADERWAY_LISTEN_ADDR: `127.0.0.1:${gwPort}`,
      LEADERWAY_ADVERTISEMENT_VERIFY_KEY: keys.verifyKey,
      LEADERWAY_GATEWAY_CERT_FILE: pki.certFile,
      LEADERWAY_GATEWAY_KEY_FILE: pki.keyFile,
      LEADERWAY_NODE_ID: 'image-gateway',
      LEADERWAY_DRAIN_DELAY: '0s',
    });
    const nodeUrl = `http://127.0.0.1:${apiPort}`;
    const why = () => `\n[node] ${node.output.join('')}\n[gateway] ${gateway.output.join('')}`;
    try {
      await waitFor(
        async () => (await call(nodeUrl, '/v1/sys/health')).status === 501,
        15_000,
        'node uninitialized',
      );
      const init = await call(nodeUrl, '/v1/sys/init', { method: 'PUT', body: {} });
      assert.equal(init.status, 200, init.text);
      const token = (init.body as { root_token: string }).root_token;
      await waitFor(async () => (await call(gatewayUrl, '/-/ready')).status === 200, 15_000, 'gateway ready');
      const write = await call(gatewayUrl, '/v1/secret/data/app', {
        token,
        body: { data: { password: 's3cr3t' } },
      });
      assert.equal(write.status, 200, write.text);
      const read = await call(gatewayUrl, '/v1/secret/data/app', { token });
      assert.equal(read.status, 200, read.text);
      assert.deepEqual((read.body as { data: { data: unknown } }).data.data, { password: 's3cr3t' });
    } catch (err) {
      (err as Error).message += why();
      throw err;
    }
  });
});
