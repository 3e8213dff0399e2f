/**
 * A small Vault API client for tests that act as several tokens: `api` calls a path as root by
 * default, `token` creates a token (asserting 200), `policy` writes an ACL policy (asserting 204).
 * The base URL and root token are read when called, so a test can build it before its cluster.
 */
import assert from 'node:assert/strict';
import { type CallOptions, call, type TestResponse } from './http';

/** The parts of a Vault answer these tests read. */
export type VaultJson = Record<string, unknown> & {
  data?: Record<string, unknown>;
  auth?: { client_token: string; accessor: string; lease_duration: number; policies: string[] };
  errors?: string[];
};

export interface VaultApi {
  api(path: string, o?: CallOptions): Promise<TestResponse & { json: VaultJson }>;
  token(body: Record<string, unknown>, as?: string, path?: string): Promise<NonNullable<VaultJson['auth']>>;
  policy(name: string, text: string): Promise<void>;
}

/** A client for the API at `base()`, acting as `root()` unless told otherwise. */
export function vaultApi(base: () => string, root: () => string): VaultApi {
  const api: VaultApi['api'] = async (path, o = {}) => {
    const r = await call(base(), `/v1/${path}`, { token: root(), ...o });
    return { ...r, json: (typeof r.body === 'object' && r.body !== null ? r.body : {}) as VaultJson };
  };
  return {
    api,
    async token(body, as = root(), path = 'auth/token/create') {
      const r = await api(path, { token: as, body });
      assert.equal(r.status, 200, r.text);
      return r.json.auth as NonNullable<VaultJson['auth']>;
    },
    async policy(name, text) {
      const r = await api(`sys/policy/${name}`, { method: 'PUT', body: { policy: text } });
      assert.equal(r.status, 204, r.text);
    },
  };
}
