import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { applyDecorators } from '@nestjs/common';
import { ApiResponse, DocumentBuilder, type OpenAPIObject, SwaggerModule } from '@nestjs/swagger';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyReply } from 'fastify';
import { createZodDto, cleanupOpenApiDoc } from 'nestjs-zod';
import { z } from 'zod';
import { PUBLIC_OPERATION_EXTENSION } from '../auth/auth.decorators';
import { QUERY_DTOS } from '../query/query.dto';
import { STATS_DTOS } from '../stats/stats.dto';
import { STATE_DTOS } from '../state/state.dto';
import { TURN_DTOS } from '../turns/turns.dto';
import { PROBLEM_CONTENT_TYPE, ProblemDetails } from './problem-details';

export class ProblemDetailsDto extends createZodDto(ProblemDetails) {}

const PROBLEM_DESCRIPTIONS: Record<number, string> = {
  400: 'Invalid body, parameter or header (RFC 9457 problem naming each bad field)',
  401: 'No credential, or an invalid, expired or revoked one (WWW-Authenticate: Bearer)',
  403: 'The caller\u2019s role may not use this route',
  404: 'Unknown or deleted',
  409: 'Conflict with the current state',
  412: 'If-Match does not match the current version',
  413: 'Body larger than BODY_LIMIT_BYTES',
  429: 'Rate limit of the key or user reached (Retry-After: seconds)',
  502: 'The agent backend failed',
  503: 'A service did not answer in time',
};

/** Documents the problem responses a route can give (`application/problem+json`). */
export const ApiProblems = (...statuses: number[]) =>
  applyDecorators(...statuses.map((status) => ApiResponse({ status, ...problemResponse(status) })));

/** Name of the bearer security scheme (`@nestjs/swagger`'s default, also used by `ApiBearerAuth()`). */
export const BEARER_SCHEME = 'bearer';

const problemResponse = (status: number) => ({
  description: PROBLEM_DESCRIPTIONS[status] ?? 'Problem',
  content: { [PROBLEM_CONTENT_TYPE]: { schema: { $ref: '#/components/schemas/ProblemDetailsDto' } } },
});

/** A nestjs-zod DTO class as the OpenAPI document names it (`…_Output` for output DTOs). */
export interface DocumentedDto {
  readonly name: string;
  readonly schema: unknown;
}

/**
 * The OpenAPI document, built from the controllers' nestjs-zod DTOs (the contracts' zod schemas).
 * `dtos` are the body and response DTOs whose nullable fields {@link repairNullables} repairs.
 */
export function buildOpenApiDocument(
  app: NestFastifyApplication,
  dtos: readonly DocumentedDto[],
): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle('Threadline API')
    .setDescription(
      'Sessions and conversations of multi-user AI agent apps. JSON in snake_case; errors are RFC 9457 ' +
        'problem bodies (application/problem+json) with a stable `code`.',
    )
    .setVersion('0.1.0')
    .addBearerAuth(
      {
        type: 'http',
        scheme: 'bearer',
        description:
          'An API key of the tenant (tlk_…; role admin or service) or a user token minted by ' +
          'POST /auth/user-tokens (a JWT scoped to one user).',
      },
      BEARER_SCHEME,
    )
    .build();
  const document = cleanupOpenApiDoc(
    SwaggerModule.createDocument(app, config, { extraModels: [ProblemDetailsDto] }),
  );
  repairNullables(document, dtos);
  requireBearer(document);
  return document;
}

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

/**
 * Mirrors the global `AuthGuard` in the document: every operation requires the bearer scheme
 * (`security: [{bearer: []}]`) and documents its 401 and 429 problems, except the operations marked
 * `@Public()` (their `x-threadline-public` extension, removed here), which get no requirement. The
 * Swagger UI docs routes (`/docs`, `/docs/json`) are plain Fastify routes, not in the document.
 */
export function requireBearer(document: OpenAPIObject): void {
  for (const item of Object.values(document.paths)) {
    for (const method of HTTP_METHODS) {
      const operation = item[method];
      if (!operation) continue;
      const extensible = operation as unknown as JsonObject;
      if (extensible[PUBLIC_OPERATION_EXTENSION] === true) {
        delete extensible[PUBLIC_OPERATION_EXTENSION];
        delete operation.security;
        continue;
      }
      operation.security = [{ [BEARER_SCHEME]: [] }];
      for (const status of [401, 429]) operation.responses[String(status)] ??= problemResponse(status);
    }
  }
}

type JsonObject = Record<string, unknown>;
const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Works around nestjs-zod 5.5 with zod 4.6, which emits a nullable primitive as JSON Schema
 * `type: ['string', 'null']`: `@nestjs/swagger` reads a top-level property's array `type` as "array
 * of string", and nested ones stay invalid OpenAPI 3.0. Top-level properties of `dtos` whose `type`
 * is such an array are regenerated by zod for OpenAPI 3.0; every remaining `type: [T, 'null']` in
 * the document becomes `type: T, nullable: true`.
 */
export function repairNullables(document: OpenAPIObject, dtos: readonly DocumentedDto[]): void {
  const schemas: JsonObject = document.components?.schemas ?? {};
  for (const dto of dtos) {
    const component = schemas[dto.name];
    if (!(dto.schema instanceof z.ZodType)) continue;
    if (!isObject(component) || !isObject(component['properties'])) continue;
    const io = dto.name.endsWith('_Output') ? 'output' : 'input';
    const draft = z.toJSONSchema(dto.schema, { io, unrepresentable: 'any' });
    const openapi = z.toJSONSchema(dto.schema, { io, target: 'openapi-3.0', unrepresentable: 'any' });
    const properties = component['properties'];
    for (const [key, prop] of Object.entries(isObject(draft.properties) ? draft.properties : {})) {
      const replacement = isObject(openapi.properties) ? openapi.properties[key] : undefined;
      if (
        isObject(prop) &&
        Array.isArray(prop['type']) &&
        isObject(replacement) &&
        !JSON.stringify(replacement).includes('$ref')
      ) {
        properties[key] = replacement;
      }
    }
  }
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(walk);
    if (!isObject(node)) return;
    const type = node['type'];
    if (Array.isArray(type) && type.includes('null')) {
      const rest = type.filter((t) => t !== 'null');
      if (rest.length === 1) node['type'] = rest[0];
      else delete node['type'];
      node['nullable'] = true;
    }
    Object.values(node).forEach(walk);
  };
  walk(document);
}

/** `dtos` and the feature modules' DTOs: every DTO whose nullable fields the served document repairs. */
export const withFeatureDtos = (dtos: readonly DocumentedDto[]): DocumentedDto[] => [
  ...dtos,
  ...TURN_DTOS,
  ...QUERY_DTOS,
  ...STATE_DTOS,
  ...STATS_DTOS,
];

const SWAGGER_UI_ASSETS = [
  'swagger-ui.css',
  'swagger-ui-bundle.js',
  'swagger-ui-standalone-preset.js',
] as const;

/** Directory of `swagger-ui-dist`, the UI assets `@nestjs/swagger` itself depends on. */
function swaggerUiDir(): string {
  const swaggerPkg = require.resolve('@nestjs/swagger/package.json');
  return dirname(require.resolve('swagger-ui-dist/package.json', { paths: [dirname(swaggerPkg)] }));
}

const UI_HTML = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Threadline API</title><link rel="stylesheet" href="/docs/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/swagger-ui-standalone-preset.js"></script>
<script src="/docs/swagger-ui-init.js"></script>
</body>
</html>`;

const UI_INIT = `window.onload = function () {
  window.ui = SwaggerUIBundle({ url: '/docs/json', dom_id: '#swagger-ui', presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset], layout: 'StandaloneLayout' });
};`;

/**
 * Serves the OpenAPI JSON at `/docs/json` and the Swagger UI at `/docs`. The UI's few assets are
 * served from `swagger-ui-dist` by plain routes: `@nestjs/swagger`'s own UI setup needs
 * `@fastify/static` on Fastify, which is not a dependency of this project.
 */
export function setupOpenApi(app: NestFastifyApplication, dtos: readonly DocumentedDto[]): OpenAPIObject {
  const document = buildOpenApiDocument(app, withFeatureDtos(dtos));
  SwaggerModule.setup('docs', app, document, { ui: false, raw: ['json'], jsonDocumentUrl: 'docs/json' });
  const fastify = app.getHttpAdapter().getInstance();
  const dir = swaggerUiDir();
  const assets = new Map(SWAGGER_UI_ASSETS.map((name) => [name, readFileSync(join(dir, name))]));
  const sendHtml = (_req: unknown, reply: FastifyReply) =>
    reply.type('text/html; charset=utf-8').send(UI_HTML);
  fastify.get('/docs', sendHtml);
  fastify.get('/docs/', sendHtml);
  fastify.get('/docs/swagger-ui-init.js', (_req, reply) =>
    reply.type('application/javascript').send(UI_INIT),
  );
  for (const [name, content] of assets) {
    fastify.get(`/docs/${name}`, (_req, reply) =>
      reply.type(name.endsWith('.css') ? 'text/css' : 'application/javascript').send(content),
    );
  }
  return document;
}
