/** One fuzz case: a generated request, where it goes, and what answers are acceptable. */
import type { Piece } from './raw-http';

export type TargetName = 'active' | 'standby' | 'gateway';

/** One generated request and what answers are acceptable for it. */
export interface Case {
  n: number;
  target: TargetName;
  label: string;
  pieces: Piece[];
  /** A 2xx is acceptable (deliberately valid requests, public read endpoints). */
  okAllowed: boolean;
  /** A 307 is acceptable (a standby asked not to forward). */
  redirectAllowed: boolean;
  /** Closing without an answer is acceptable (we stop sending half-way, or send no request at all). */
  silenceAllowed: boolean;
  /** The bytes form one request (maybe malformed), so exactly one response may come back. */
  single: boolean;
  head: boolean;
  timeoutMs: number;
}
