import { Agent, request } from 'node:http';

/** One answer: status, the `X-Threadline-Position` header when present, the body text. */
export interface HttpAnswer {
  status: number;
  position: number | undefined;
  body: string;
}

/**
 * A minimal keep-alive HTTP/1.1 client over `node:http` (no dependency; cheaper per request than the
 * global fetch, which matters when the load generator shares 2 cores with the system under test).
 * Sends `Authorization: Bearer <apiKey>`. Rejects on network errors and after `timeoutMs`.
 */
export class HttpClient {
  private readonly agent: Agent;
  private readonly url: URL;

  constructor(
    baseUrl: string,
    private readonly apiKey: string,
    /** Sockets kept open (= the concurrency the caller uses). */
    maxSockets: number,
    private readonly timeoutMs = 30_000,
  ) {
    this.url = new URL(baseUrl);
    this.agent = new Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
  }

  /** Sends `method path` with an optional JSON `body` (already serialized). */
  send(method: string, path: string, body?: Buffer): Promise<HttpAnswer> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string | number> = { authorization: `Bearer ${this.apiKey}` };
      if (body) {
        headers['content-type'] = 'application/json';
        headers['content-length'] = body.length;
      }
      const req = request(
        {
          agent: this.agent,
          host: this.url.hostname,
          port: this.url.port,
          method,
          path,
          headers,
          timeout: this.timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const raw = res.headers['x-threadline-position'];
            const position = typeof raw === 'string' && raw !== '' ? Number(raw) : undefined;
            resolve({ status: res.statusCode ?? 0, position, body: Buffer.concat(chunks).toString('utf8') });
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`timeout after ${this.timeoutMs} ms`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
