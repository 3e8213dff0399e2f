/**
 * Init and unseal with a static seal key. The chain of keys:
 *   seal key (operator-held, LEADERWAY_SEAL_KEY) wraps the root key (`core/seal/root-key`);
 *   the root key encrypts the keyring (`core/keyring`); the keyring encrypts everything else.
 * Init writes all of it, plus the root token's entry, in one atomic batch guarded by the
 * absence of the root key, so two nodes racing to init cannot both succeed.
 */
import { randomBytes } from 'node:crypto';
import { open, seal } from '../../shared/crypto/aead';
import { LwError, MESSAGES } from '../../shared/errors';
import type { Backend } from '../../shared/storage/backend';
import { Barrier, type Keyring } from './barrier';
import { SecureStorage } from './secure-storage';

export const ROOT_KEY_PATH = 'core/seal/root-key';
export const KEYRING_PATH = 'core/keyring';
const WRAP_VERSION = 0x01;

interface StoredKeyring {
  terms: Array<{ term: number; key: string }>;
  active_term: number;
  hmac_key: string;
  created: string;
}

/** Result of trying to unseal from storage. */
export type UnsealResult =
  | { state: 'unsealed'; storage: SecureStorage }
  | { state: 'uninitialized' }
  | { state: 'wrong-key' }
  | { state: 'corrupt' };

function wrap(key: Buffer, plain: Buffer, path: string): Buffer {
  return Buffer.concat([Buffer.from([WRAP_VERSION]), seal(key, plain, path)]);
}

function unwrap(key: Buffer, raw: Buffer, path: string): Buffer | null {
  if (raw[0] !== WRAP_VERSION) return null;
  return open(key, raw.subarray(1), path);
}

function toKeyring(s: StoredKeyring): Keyring {
  return {
    terms: s.terms.map((t) => ({ term: t.term, key: Buffer.from(t.key, 'base64') })),
    activeTerm: s.active_term,
    hmacKey: Buffer.from(s.hmac_key, 'base64'),
  };
}

/** Is the storage initialized (does the wrapped root key exist)? */
export async function isInitialized(backend: Backend): Promise<boolean> {
  return (await backend.get(ROOT_KEY_PATH)) !== null;
}

/**
 * Initializes the storage. `extra` receives the fresh SecureStorage and returns entries to write
 * in the same atomic batch (the root token). Throws LW_ERR_ALREADY_INITIALIZED if another node
 * got there first.
 */
export async function initialize(
  backend: Backend,
  sealKey: Buffer,
  extra: (storage: SecureStorage) => Array<{ path: string; value: unknown }>,
): Promise<SecureStorage> {
  const rootKey = randomBytes(32);
  const stored: StoredKeyring = {
    terms: [{ term: 1, key: randomBytes(32).toString('base64') }],
    active_term: 1,
    hmac_key: randomBytes(32).toString('base64'),
    created: new Date().toISOString(),
  };
  const storage = new SecureStorage(new Barrier(toKeyring(stored)), backend);
  const entries = extra(storage);
  const ok = await backend.batch(
    [
      { op: 'put', path: ROOT_KEY_PATH, value: wrap(sealKey, rootKey, ROOT_KEY_PATH) },
      {
        op: 'put',
        path: KEYRING_PATH,
        value: wrap(rootKey, Buffer.from(JSON.stringify(stored)), KEYRING_PATH),
      },
      ...entries.map((e) => ({
        op: 'put' as const,
        path: e.path,
        value: storage.barrier.seal(e.path, Buffer.from(JSON.stringify(e.value))),
      })),
    ],
    { ifAbsent: ROOT_KEY_PATH },
  );
  if (!ok) throw new LwError('LW_ERR_ALREADY_INITIALIZED', MESSAGES.alreadyInitialized);
  return storage;
}

/** Reads and unwraps the keyring with the seal key. */
export async function unseal(backend: Backend, sealKey: Buffer): Promise<UnsealResult> {
  const wrappedRoot = await backend.get(ROOT_KEY_PATH);
  if (!wrappedRoot) return { state: 'uninitialized' };
  const rootKey = unwrap(sealKey, wrappedRoot, ROOT_KEY_PATH);
  if (!rootKey) return { state: 'wrong-key' };
  const wrappedKeyring = await backend.get(KEYRING_PATH);
  const plain = wrappedKeyring ? unwrap(rootKey, wrappedKeyring, KEYRING_PATH) : null;
  if (!plain) return { state: 'corrupt' };
  try {
    const stored = JSON.parse(plain.toString('utf8')) as StoredKeyring;
    return { state: 'unsealed', storage: new SecureStorage(new Barrier(toKeyring(stored)), backend) };
  } catch {
    return { state: 'corrupt' };
  }
}
