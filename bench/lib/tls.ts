/**
 * A self-signed certificate for the nodes' API listeners, so every path pays for TLS to the
 * nodes as in production (HAProxy with `ssl verify none`, clients with verification off). The
 * same helper the tests use.
 */
export { type CertFiles, writeApiCert } from '../../test/helpers/api-cert';
