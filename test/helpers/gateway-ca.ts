/**
 * A gateway CA made with openssl, for tests that need what `cli/gateway-pki.ts` does not keep:
 * the CA's key, to issue more certificates (other names, no clientAuth) and sign CRLs with
 * `openssl ca -gencrl`, as an operator's PKI would. Files live in a temporary directory removed
 * by `remove()` (and when the process exits).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

/** A certificate the CA issued, with its key. */
export interface IssuedCert {
  certFile: string;
  keyFile: string;
  cert: string;
  key: string;
}

/** What to put in an issued certificate. */
export interface IssueOptions {
  /** Subject CN (default: the file name). */
  cn?: string;
  dns?: string[];
  uri?: string[];
  /** Extended key usage; null: no EKU extension at all (OpenSSL's TLS accepts those). */
  eku?: 'clientAuth' | 'serverAuth' | null;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

export class TestGatewayCa {
  readonly caFile: string;
  private readonly keyFile: string;

  private constructor(
    readonly dir: string,
    readonly cn: string,
  ) {
    this.caFile = path.join(dir, 'ca.crt');
    this.keyFile = path.join(dir, 'ca.key');
    openssl(
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-sha256',
        '-days',
        '30',
        '-subj',
        `/CN=${cn}`,
        '-keyout',
        this.keyFile,
        '-out',
        this.caFile,
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-addext',
        'keyUsage=critical,keyCertSign,cRLSign',
      ],
      dir,
    );
  }

  /** A new CA (its CN defaults to the one make-secrets.sh uses) in a fresh temporary directory. */
  static create(cn = 'leaderway gateway CA'): TestGatewayCa {
    const dir = mkdtempSync(path.join(tmpdir(), 'lw-gateway-ca-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    return new TestGatewayCa(dir, cn);
  }

  /** The CA certificate (PEM). */
  get caPem(): string {
    return readFileSync(this.caFile, 'utf8');
  }

  /** Issues a client certificate `file`.crt / `file`.key. */
  issue(file: string, o: IssueOptions = {}): IssuedCert {
    const certFile = path.join(this.dir, `${file}.crt`);
    const keyFile = path.join(this.dir, `${file}.key`);
    const csr = path.join(this.dir, `${file}.csr`);
    const ext = path.join(this.dir, `${file}.ext`);
    openssl(
      [
        'req',
        '-new',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-sha256',
        '-subj',
        `/CN=${o.cn ?? file}`,
        '-keyout',
        keyFile,
        '-out',
        csr,
      ],
      this.dir,
    );
    const sans = [...(o.dns ?? []).map((d) => `DNS:${d}`), ...(o.uri ?? []).map((u) => `URI:${u}`)];
    const eku = o.eku === undefined ? 'clientAuth' : o.eku;
    writeFileSync(
      ext,
      [
        'basicConstraints=critical,CA:FALSE',
        'keyUsage=critical,digitalSignature',
        ...(eku ? [`extendedKeyUsage=${eku}`] : []),
        ...(sans.length ? [`subjectAltName=${sans.join(',')}`] : []),
        '',
      ].join('\n'),
    );
    openssl(
      [
        'x509',
        '-req',
        '-in',
        csr,
        '-CA',
        this.caFile,
        '-CAkey',
        this.keyFile,
        '-set_serial',
        `0x${randomBytes(16).toString('hex')}`,
        '-sha256',
        '-days',
        '30',
        '-extfile',
        ext,
        '-out',
        certFile,
      ],
      this.dir,
    );
    return { certFile, keyFile, cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') };
  }

  /**
   * A CRL (PEM) signed by this CA revoking exactly `revoked`. `criticalIdp`: with a critical
   * issuing distribution point limited to some reasons (a partitioned CRL, which is not complete).
   */
  crl(revoked: IssuedCert[], o: { criticalIdp?: boolean } = {}): string {
    const db = path.join(this.dir, 'index.txt');
    const cnf = path.join(this.dir, 'ca.cnf');
    const out = path.join(this.dir, 'crl.pem');
    writeFileSync(db, '');
    const idp = [
      'crl_extensions = crlext',
      '[ crlext ]',
      'issuingDistributionPoint = critical, @idp',
      '[ idp ]',
      'fullname = URI:http://example.org/gateways.crl',
      'onlysomereasons = keyCompromise',
    ];
    writeFileSync(
      cnf,
      [
        '[ ca ]',
        'default_ca = lw',
        '[ lw ]',
        `database = ${db}`,
        'default_md = sha256',
        'default_crl_days = 30',
        ...(o.criticalIdp ? idp : []),
        '',
      ].join('\n'),
    );
    const ca = ['-config', cnf, '-keyfile', this.keyFile, '-cert', this.caFile, '-batch'];
    for (const c of revoked) openssl(['ca', ...ca, '-revoke', c.certFile], this.dir);
    openssl(['ca', ...ca, '-gencrl', '-out', out], this.dir);
    return readFileSync(out, 'utf8');
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
