import 'reflect-metadata';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Controller, type INestMicroservice, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { type ClientProxy, ClientProxyFactory, Transport } from '@nestjs/microservices';
import { connect } from 'nats';
import { z } from 'zod';
import { defineQuery } from '@threadline/contracts';
import { freePort } from '@threadline/stack';
import { type PrivateNats, startPrivateNats, writeNatsCredentials } from '@threadline/testing';
import { ensureEventStream } from './event-stream';
import { connectNats, natsConnectOptions, type NatsSettings } from './nats-connection';
import { RequestClient, RequestHandler, requestTransportOptions, subjectPrefix } from './request-reply';

// Issue 20: NATS_CREDS_FILE must reach every connection a service makes: the JetStream one, the
// request client's and the queue-group server's (before, only the JetStream one presented it, and the
// others were refused by a server that requires credentials). The server here runs in operator mode
// (JWT auth) and refuses anonymous connections.

const Echo = defineQuery('creds', 'Echo', z.object({ text: z.string() }), z.object({ text: z.string() }));

@Controller()
class EchoController {
  @RequestHandler(Echo)
  echo(query: z.infer<typeof Echo.schema>) {
    return { text: query.text };
  }
}
@Module({ controllers: [EchoController] })
class EchoModule {}

let dir: string;
let server: PrivateNats;
let settings: NatsSettings;
let service: INestMicroservice | undefined;
let proxy: ClientProxy | undefined;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tl-creds-'));
  const files = writeNatsCredentials(dir);
  server = await startPrivateNats(await freePort(), ['-c', files.serverConfig]);
  settings = { NATS_URL: server.url, NATS_CREDS_FILE: files.credsFile };
});

afterAll(async () => {
  await proxy?.close();
  await service?.close();
  await server?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

it('the server refuses a connection without the creds', async () => {
  await expect(connect(natsConnectOptions({ NATS_URL: server.url }, 'anonymous'))).rejects.toThrow(
    /Authorization Violation/i,
  );
});

it('the JetStream connection presents the creds file', async () => {
  const nc = await connectNats(settings, 'creds-jetstream');
  try {
    await ensureEventStream(nc, 'CREDS_EVENTS', 'credstest');
  } finally {
    await nc.close();
  }
});

it('the queue-group server and the request client present it too: a query is answered', async () => {
  service = await NestFactory.createMicroservice(EchoModule, {
    ...requestTransportOptions(settings, 'creds-service', { gracePeriodMs: 50 }),
    logger: false,
  });
  await service.listen();
  proxy = ClientProxyFactory.create({
    transport: Transport.NATS,
    options: natsConnectOptions(settings, 'creds-client'),
  });
  const client = new RequestClient(proxy, subjectPrefix(), 2000);
  expect(await client.request(Echo, { text: 'hello' })).toEqual({ text: 'hello' });
});
