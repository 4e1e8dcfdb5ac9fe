import 'reflect-metadata';
import { Controller, type INestMicroservice, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  type ClientProxy,
  ClientProxyFactory,
  Ctx,
  NatsContext,
  Payload,
  Transport,
} from '@nestjs/microservices';
import { lastValueFrom } from 'rxjs';
import { z } from 'zod';
import { defineCommand, defineQuery, ErrorReply, pingOf } from '@threadline/contracts';
import { DomainError } from '@threadline/platform';
import { freePort } from '@threadline/stack';
import { startPrivateNats, testNatsUrl } from '@threadline/testing';
import { connect } from 'nats';
import { natsConnectOptions } from './nats-connection';
import {
  RequestClient,
  RequestHandler,
  requestTransportOptions,
  RpcErrorReplyFilter,
  subjectPrefix,
} from './request-reply';

// Commands and queries over the real NATS server (ARCHITECTURE rule 7): a NestJS microservice in a queue
// group, the RequestClient, typed error replies. The subject prefix is this file's own (jest-env.setup.js).

const AddWidget = defineCommand(
  'widget',
  'AddWidget',
  z.object({
    name: z.string().min(1),
    behaviour: z
      .enum(['ok', 'domain-error', 'crash', 'bad-reply', 'slow', 'huge-reply', 'db-down'])
      .default('ok'),
  }),
  z.object({ id: z.string(), name: z.string(), instance: z.string() }),
);
const CountWidgets = defineQuery(
  'widget',
  'CountWidgets',
  z.object({ prefix: z.string().max(3) }),
  z.object({ n: z.number() }),
);
const CountWithContext = defineQuery(
  'widget',
  'CountWithContext',
  z.object({ x: z.number() }),
  z.object({ subject: z.string(), x: z.number() }),
);
const Unanswered = defineQuery('widget', 'NobodyListens', z.object({}), z.object({}));

const handled: { instance: string; name: string }[] = [];

function controllerFor(instance: string) {
  @Controller()
  class WidgetController {
    @RequestHandler(AddWidget)
    async add(@Payload() cmd: z.infer<typeof AddWidget.schema>) {
      handled.push({ instance, name: cmd.name });
      switch (cmd.behaviour) {
        case 'ok':
          return { id: `w-${cmd.name}`, name: cmd.name, instance };
        case 'domain-error':
          throw new DomainError('SESSION.NOT_FOUND', `widget ${cmd.name} not found`, { name: cmd.name });
        case 'crash':
          throw new Error('database on fire');
        case 'bad-reply':
          return { id: 42 };
        case 'huge-reply':
          return { id: 'big', name: 'x'.repeat(2 * 1024 * 1024), instance };
        case 'db-down':
          throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
        case 'slow':
          await new Promise((resolve) => setTimeout(resolve, 400)); // longer than the client's timeout
          return { id: 'late', name: cmd.name, instance };
        default: {
          const never: never = cmd.behaviour;
          return never;
        }
      }
    }

    // No parameter decorator: the payload is still parsed with the contract.
    @RequestHandler(CountWidgets)
    count(query: z.infer<typeof CountWidgets.schema>) {
      return { n: query.prefix.length };
    }

    // With @Ctx(): only the payload is parsed.
    @RequestHandler(CountWithContext)
    withContext(@Payload() query: z.infer<typeof CountWithContext.schema>, @Ctx() ctx: NatsContext) {
      return { subject: ctx.getSubject(), x: query.x };
    }
  }
  @Module({ controllers: [WidgetController] })
  class WidgetModule {}
  return WidgetModule;
}

let services: INestMicroservice[] = [];
let proxy: ClientProxy;
let client: RequestClient;
const prefix = subjectPrefix();

async function startService(instance: string): Promise<INestMicroservice> {
  const app = await NestFactory.createMicroservice(controllerFor(instance), {
    ...requestTransportOptions({ NATS_URL: testNatsUrl() }, 'widget-service', { gracePeriodMs: 50 }),
    logger: false,
  });
  app.useGlobalFilters(new RpcErrorReplyFilter());
  await app.listen();
  return app;
}

beforeAll(async () => {
  services = await Promise.all([startService('one'), startService('two')]);
  proxy = ClientProxyFactory.create({
    transport: Transport.NATS,
    options: natsConnectOptions({ NATS_URL: testNatsUrl() }, 'test-client'),
  });
  await proxy.connect();
  client = new RequestClient(proxy, prefix, 1000);
});
afterAll(async () => {
  await proxy.close();
  await Promise.all(services.map((s) => s.close()));
});

async function domainErrorOf(p: Promise<unknown>): Promise<DomainError> {
  const error = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DomainError);
  return error as DomainError;
}

describe('request/reply over NATS', () => {
  it('uses the file prefix in the derived subject', () => {
    expect(prefix).toBe(process.env['NATS_SUBJECT_PREFIX']);
    expect(AddWidget.subject(prefix)).toBe(`${prefix}.cmd.widget.AddWidget`);
  });

  it('RequestClient gets the parsed reply', async () => {
    const reply = await client.request(AddWidget, { name: 'a', behaviour: 'ok' });
    expect(reply).toMatchObject({ id: 'w-a', name: 'a' });
    expect(['one', 'two']).toContain(reply.instance);
  });

  it('the queue group gives each request to exactly one instance, and shares them', async () => {
    const before = handled.length;
    const names = Array.from({ length: 40 }, (_, i) => `q${i}`);
    const replies = await Promise.all(
      names.map((name) => client.request(AddWidget, { name, behaviour: 'ok' })),
    );
    expect(replies.map((r) => r.name)).toEqual(names);
    const mine = handled.slice(before);
    expect(mine.map((h) => h.name).sort()).toEqual([...names].sort()); // each once, not once per instance
    expect(new Set(mine.map((h) => h.instance))).toEqual(new Set(['one', 'two']));
  });

  it('a DomainError thrown in the handler arrives as a DomainError with the same code, message and details', async () => {
    const e = await domainErrorOf(client.request(AddWidget, { name: 'gone', behaviour: 'domain-error' }));
    expect(e.code).toBe('SESSION.NOT_FOUND');
    expect(e.message).toBe('widget gone not found');
    expect(e.details).toEqual({ name: 'gone' });
  });

  it('an unexpected error arrives as INTERNAL, without its internals', async () => {
    const e = await domainErrorOf(client.request(AddWidget, { name: 'x', behaviour: 'crash' }));
    expect(e.code).toBe('INTERNAL');
    expect(e.message).not.toContain('fire');
  });

  it('a reply that breaks the contract is INTERNAL at the client', async () => {
    const e = await domainErrorOf(client.request(AddWidget, { name: 'x', behaviour: 'bad-reply' }));
    expect(e.code).toBe('INTERNAL');
  });

  it('an invalid payload sent raw gets a REQUEST.INVALID error reply naming the fields, and is not handled', async () => {
    const before = handled.length;
    const error = await lastValueFrom(
      proxy.send<unknown>(AddWidget.subject(prefix), { name: '', behaviour: 'explode' }),
    ).catch((e: unknown) => e);
    const reply = ErrorReply.parse(error);
    expect(reply.code).toBe('REQUEST.INVALID');
    const issues = (reply.details as { issues: { path: string }[] }).issues.map((i) => i.path).sort();
    expect(issues).toEqual(['behaviour', 'name']);
    expect(handled.length).toBe(before);
  });

  it('an invalid payload from the RequestClient is REQUEST.INVALID naming the fields, and is not handled', async () => {
    const before = handled.length;
    const e = await domainErrorOf(client.request(AddWidget, { name: '', behaviour: 'explode' } as never));
    expect(e.code).toBe('REQUEST.INVALID');
    const issues = (e.details as { issues: { path: string }[] }).issues.map((i) => i.path).sort();
    expect(issues).toEqual(['behaviour', 'name']);
    expect(handled.length).toBe(before);
  });

  it('a handler without parameter decorators still gets a parsed payload', async () => {
    expect(await client.request(CountWidgets, { prefix: 'ab' })).toEqual({ n: 2 });
    const error = await lastValueFrom(
      proxy.send<unknown>(CountWidgets.subject(prefix), { prefix: 'toolong' }),
    ).catch((e: unknown) => e);
    expect(ErrorReply.parse(error).code).toBe('REQUEST.INVALID');
  });

  it('only the payload is parsed when the handler also takes the context', async () => {
    expect(await client.request(CountWithContext, { x: 5 })).toEqual({
      subject: CountWithContext.subject(prefix),
      x: 5,
    });
  });

  it('a database that is down is SERVICE.UNAVAILABLE, not INTERNAL', async () => {
    const error = await domainErrorOf(client.request(AddWidget, { name: 'pg', behaviour: 'db-down' }));
    expect(error.code).toBe('SERVICE.UNAVAILABLE');
    expect(error.message).not.toMatch(/5432/);
  });

  it('a request NATS could not carry with its event and reply is REQUEST.TOO_LARGE, and is not sent', async () => {
    const before = handled.length;
    const error = await domainErrorOf(
      client.request(AddWidget, { name: 'x'.repeat(1024 * 1024 - 1000), behaviour: 'ok' }),
    );
    expect(error.code).toBe('REQUEST.TOO_LARGE');
    expect(error.message).toMatch(/max_payload of 1048576 bytes/);
    expect(handled.length).toBe(before);
  });

  it('a reply NATS cannot carry is REQUEST.TOO_LARGE at once, not a timeout', async () => {
    const slowClient = new RequestClient(proxy, prefix, 10_000);
    const started = Date.now();
    const error = await domainErrorOf(slowClient.request(AddWidget, { name: 'h', behaviour: 'huge-reply' }));
    expect(error.code).toBe('REQUEST.TOO_LARGE');
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('no service listening is SERVICE.UNAVAILABLE at once, without waiting for the timeout', async () => {
    // NATS answers "no responders" itself: a timeout of a minute is never reached.
    const e = await domainErrorOf(new RequestClient(proxy, prefix, 60_000).request(Unanswered, {}));
    expect(e.code).toBe('SERVICE.UNAVAILABLE');
    expect(e.message).toBe('No service answers NobodyListens');
  });

  it('a client whose connection was closed connects again on its next request', async () => {
    const own = ClientProxyFactory.create({
      transport: Transport.NATS,
      options: natsConnectOptions({ NATS_URL: testNatsUrl() }, 'test-client-reconnect'),
    });
    const reconnecting = new RequestClient(own, prefix, 1000);
    try {
      expect(await reconnecting.request(CountWidgets, { prefix: 'a' })).toEqual({ n: 1 });
      await own.close();
      expect(await reconnecting.request(CountWidgets, { prefix: 'abc' })).toEqual({ n: 3 });
    } finally {
      await own.close();
    }
  });

  it('a service that does not answer in time is SERVICE.UNAVAILABLE', async () => {
    const started = Date.now();
    const e = await domainErrorOf(
      new RequestClient(proxy, prefix, 100).request(AddWidget, { name: 's', behaviour: 'slow' }),
    );
    expect(e.code).toBe('SERVICE.UNAVAILABLE');
    expect(e.message).toMatch(/in time/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(100);
  });

  it('an answer that comes after its timeout is dropped: the next request gets its own answer', async () => {
    const impatient = new RequestClient(proxy, prefix, 100);
    const late = await domainErrorOf(impatient.request(AddWidget, { name: 'late', behaviour: 'slow' }));
    expect(late.code).toBe('SERVICE.UNAVAILABLE');
    // The slow handler answers 400 ms after the request, to an id nobody waits for any more.
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(await impatient.request(AddWidget, { name: 'after', behaviour: 'ok' })).toMatchObject({
      id: 'w-after',
      name: 'after',
    });
  });

  it('a request waiting when NATS restarts is SERVICE.UNAVAILABLE at once, not at its timeout', async () => {
    const server = await startPrivateNats(await freePort());
    const settings = { NATS_URL: server.url };
    // A responder that never answers (a service that died with the request).
    const silent = await connect(natsConnectOptions(settings, 'test-silent'));
    silent.subscribe(AddWidget.subject(prefix), { callback: () => undefined });
    const own = ClientProxyFactory.create({
      transport: Transport.NATS,
      options: natsConnectOptions(settings, 'test-client-restart'),
    });
    const patient = new RequestClient(own, prefix, 60_000);
    try {
      expect((await domainErrorOf(patient.request(Unanswered, {}))).code).toBe('SERVICE.UNAVAILABLE');
      const waiting = patient.request(AddWidget, { name: 'cut', behaviour: 'ok' });
      await new Promise((resolve) => setTimeout(resolve, 50));
      const started = Date.now();
      await server.restart();
      const e = await domainErrorOf(waiting);
      expect(e.code).toBe('SERVICE.UNAVAILABLE');
      expect(Date.now() - started).toBeLessThan(2000);
    } finally {
      await own.close();
      await silent.close().catch(() => undefined);
      await server.destroy();
    }
  });

  it('a request waiting when the connection closes is SERVICE.UNAVAILABLE at once, not at its timeout', async () => {
    const own = ClientProxyFactory.create({
      transport: Transport.NATS,
      options: natsConnectOptions({ NATS_URL: testNatsUrl() }, 'test-client-closing'),
    });
    const closing = new RequestClient(own, prefix, 60_000);
    try {
      const waiting = closing.request(AddWidget, { name: 'cut', behaviour: 'slow' });
      await new Promise((resolve) => setTimeout(resolve, 50));
      const started = Date.now();
      await own.close();
      const e = await domainErrorOf(waiting);
      expect(e.code).toBe('SERVICE.UNAVAILABLE');
      expect(Date.now() - started).toBeLessThan(1000);
    } finally {
      await own.close();
    }
  });
});

describe('the health ping answered by the request transport', () => {
  it('names the service and carries its own Postgres state when it has a health check', async () => {
    let databaseUp = true;
    const app = await NestFactory.createMicroservice(controllerFor('pinged'), {
      ...requestTransportOptions({ NATS_URL: testNatsUrl() }, 'pinged-service', {
        gracePeriodMs: 50,
        health: () => (databaseUp ? Promise.resolve() : Promise.reject(new Error('ECONNREFUSED'))),
      }),
      logger: false,
    });
    await app.listen();
    try {
      expect(await client.request(pingOf('pinged-service'), {})).toMatchObject({
        service: 'pinged-service',
        postgres: 'up',
      });
      databaseUp = false;
      expect(await client.request(pingOf('pinged-service'), {})).toMatchObject({ postgres: 'down' });
      // Without a health check the ping only proves the transport serves: no `postgres` field.
      const plain = await client.request(pingOf('widget-service'), {});
      expect(plain.service).toBe('widget-service');
      expect(plain).not.toHaveProperty('postgres');
    } finally {
      await app.close();
    }
  });
});
