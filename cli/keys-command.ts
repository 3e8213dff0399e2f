/**
 * `leaderway keys`: prints a fresh set of keys as environment lines — the seal key and the
 * advertisement signing key for nodes only, the advertisement key and verify key for nodes and
 * gateways. Nothing is stored; put them in your secret store.
 */
import { randomBytes } from 'node:crypto';
import { signingKeyFromSeed } from '../shared/crypto/signing';

export async function keysCommand(): Promise<void> {
  const seed = randomBytes(32);
  const verify = signingKeyFromSeed(seed).publicRaw;
  process.stdout.write(
    [
      '# nodes only',
      `LEADERWAY_SEAL_KEY=${randomBytes(32).toString('base64')}`,
      `LEADERWAY_ADVERTISEMENT_SIGNING_KEY=${seed.toString('base64')}`,
      '# nodes and gateways',
      `LEADERWAY_ADVERTISEMENT_KEY=${randomBytes(32).toString('base64')}`,
      `LEADERWAY_ADVERTISEMENT_VERIFY_KEY=${verify.toString('base64')}`,
      '',
    ].join('\n'),
  );
}
