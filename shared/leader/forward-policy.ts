/**
 * The forwarding policy moved to shared/forward/ (outcome, policy, hold loop). These re-exports
 * are kept only for tests that still import them from here (test/unit/admission.test.ts,
 * test/unit/sentinel-watch.test.ts); delete this file once they import shared/forward/.
 */
export { ClientGone } from '../forward/client-gone';
export { RETRY_BACKOFF_MAX_MS } from '../forward/policy';
