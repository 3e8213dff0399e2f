/**
 * Headers leaderway uses between its own processes. A gateway strips any of these that a client
 * sends, so they can only come from a node over the authenticated cluster channel.
 */

/**
 * On a response: the node did not serve the request and stored nothing (it is not active, is
 * draining, or its write was fenced). The value is the error code. A gateway may retry such a
 * request on the next leader whatever its method.
 */
export const NOT_SERVED_HEADER = 'x-leaderway-not-served';

/**
 * On a forwarded request: the client's address as the forwarding gateway or standby determined
 * it (the right-most address not among its trusted proxies). Used for logs and CIDR bindings.
 */
export const CLIENT_ADDR_HEADER = 'x-leaderway-client-addr';

/** Prefix of every internal header. */
export const INTERNAL_HEADER_PREFIX = 'x-leaderway-';
