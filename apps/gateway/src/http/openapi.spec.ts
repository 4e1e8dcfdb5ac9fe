import type { OpenAPIObject } from '@nestjs/swagger';
import { PUBLIC_OPERATION_EXTENSION } from '../auth/auth.decorators';
import { requireBearer } from './openapi';

describe('requireBearer', () => {
  it('requires the bearer scheme (and documents 401/429) on every operation but the @Public() ones', () => {
    const document = {
      openapi: '3.0.0',
      info: { title: 't', version: '1' },
      paths: {
        '/health': {
          get: { responses: { '200': { description: 'up' } }, [PUBLIC_OPERATION_EXTENSION]: true },
        },
        '/sessions': {
          get: { responses: {} },
          post: { responses: { '401': { description: 'kept' } }, security: [{ other: [] }] },
        },
      },
    } as unknown as OpenAPIObject;
    requireBearer(document);
    const health = document.paths['/health']?.get as unknown as Record<string, unknown>;
    expect(health['security']).toBeUndefined();
    expect(health[PUBLIC_OPERATION_EXTENSION]).toBeUndefined();
    expect(Object.keys(health['responses'] as object)).toEqual(['200']);
    const list = document.paths['/sessions']?.get;
    expect(list?.security).toEqual([{ bearer: [] }]);
    expect(Object.keys(list?.responses ?? {}).sort()).toEqual(['401', '429']);
    const create = document.paths['/sessions']?.post;
    expect(create?.security).toEqual([{ bearer: [] }]);
    expect(create?.responses['401']).toEqual({ description: 'kept' });
  });
});
