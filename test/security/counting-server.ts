/** A TCP listener that only counts connection attempts (a stand-in for an address nobody should use). */
import { createServer, type Server } from 'node:net';

export class CountingServer {
  connections = 0;
  port = 0;
  private server: Server | undefined;

  /** Listens on `port` (0: any free port). Rejects when the port is taken. */
  async start(port = 0): Promise<void> {
    const server = createServer((s) => {
      this.connections++;
      s.destroy();
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as { port: number }).port;
  }

  async stop(): Promise<void> {
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}
