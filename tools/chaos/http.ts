import { Agent, request } from 'node:http';

/** One answer: status and body text. */
export interface Answer {
  status: number;
  body: string;
}

/**
 * A keep-alive HTTP/1.1 client of one gateway over `node:http` (cheaper per request than fetch on a
 * machine shared with the system under test). Sends `Authorization: Bearer <apiKey>` and the given
 * headers; a body is sent as it is (bytes or text), with `content-type: application/json` unless
 * the headers say otherwise. Rejects on network errors and after `timeoutMs`.
 */
export class GatewayClient {
  private readonly agent: Agent;
  private readonly url: URL;

  constructor(
    readonly baseUrl: string,
    private readonly apiKey: string,
    maxSockets: number,
    private readonly timeoutMs: number,
  ) {
    this.url = new URL(baseUrl);
    this.agent = new Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
  }

  send(
    method: string,
    path: string,
    body?: string | Buffer,
    extra: Record<string, string> = {},
  ): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string | number> = { authorization: `Bearer ${this.apiKey}` };
      if (body !== undefined) {
        const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
        headers['content-type'] = 'application/json';
        headers['content-length'] = bytes.length;
        body = bytes;
      }
      Object.assign(headers, extra);
      let req;
      try {
        req = request(
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
            res.on('end', () =>
              resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
            );
            res.on('error', reject);
          },
        );
      } catch (error) {
        // Node refuses some header values and paths itself (ERR_INVALID_CHAR): never sent.
        reject(error instanceof Error ? error : new Error(String(error)));
        return;
      }
      req.on('timeout', () => req.destroy(new Error(`timeout after ${this.timeoutMs} ms`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
