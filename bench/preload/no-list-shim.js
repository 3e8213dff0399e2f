/**
 * Bench-only preload (`node --require`): turns the raw-LIST shim off in a compiled gateway, so the
 * list-shim section can measure the gateway with and without it in one run. It replaces the two
 * exports `shared/http/server.ts` reads when it creates a server: the hook that resumes a refused
 * LIST becomes a no-op and request objects are Node's own — exactly the gateway before the shim
 * existed.
 */
const http = require('node:http');
const path = require('node:path');
const shim = require(path.join(__dirname, '..', '..', 'dist', 'shared', 'http', 'list-method.js'));
shim.acceptListMethod = () => undefined;
shim.ListAwareIncomingMessage = http.IncomingMessage;
