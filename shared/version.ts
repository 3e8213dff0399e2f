/** The leaderway version, reported by sys/health, sys/seal-status and the banner. */
export const VERSION = '0.1.0';
