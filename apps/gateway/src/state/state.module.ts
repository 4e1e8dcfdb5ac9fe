import { Module, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance } from 'fastify';
import { StateController } from './state.controller';

/** RFC 7396's media type of a JSON merge patch. */
export const MERGE_PATCH_CONTENT_TYPE = 'application/merge-patch+json';

/**
 * The workflow-state routes (issue 4): sent as commands and queries to the session-service. At init
 * it teaches Fastify `application/merge-patch+json` (RFC 7396 section 4), parsed by Fastify's own
 * JSON parser (same body limit, same prototype-poisoning protection as `application/json`), so
 * `PATCH /sessions/{id}/state` takes either type.
 */
@Module({ controllers: [StateController] })
export class StateModule implements OnModuleInit {
  constructor(private readonly adapterHost: HttpAdapterHost) {}

  onModuleInit(): void {
    const fastify = this.adapterHost.httpAdapter.getInstance<FastifyInstance>();
    if (fastify.hasContentTypeParser(MERGE_PATCH_CONTENT_TYPE)) return;
    fastify.addContentTypeParser(
      MERGE_PATCH_CONTENT_TYPE,
      { parseAs: 'string' },
      fastify.getDefaultJsonParser('error', 'error'),
    );
  }
}
