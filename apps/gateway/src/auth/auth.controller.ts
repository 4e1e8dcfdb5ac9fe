import { Body, Controller, HttpCode, Inject, Post, Req } from '@nestjs/common';
import { ApiBody, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { createZodDto } from 'nestjs-zod';
import { z } from 'zod';
import { TenantId, UserId } from '@threadline/contracts';
import { DomainError } from '@threadline/platform';
import { ApiProblems } from '../http/openapi';
import { TenantResolver } from '../tenant/tenant.provider';
import { KeysOnly } from './auth.decorators';
import { MAX_TOKEN_TTL_SECONDS, UserTokens } from './user-tokens';

/** `POST /auth/user-tokens` body: the user, and the token's lifetime in seconds (default 900). */
export const UserTokenBody = z.strictObject({
  user_id: UserId,
  ttl_seconds: z.number().int().min(1).max(MAX_TOKEN_TTL_SECONDS).default(900),
});
/** The minted token; `expires_at` ISO-8601. */
export const UserTokenReply = z.object({
  token: z.string(),
  token_type: z.literal('Bearer'),
  user_id: UserId,
  tenant_id: TenantId,
  expires_at: z.string(),
});
export type UserTokenReply = z.infer<typeof UserTokenReply>;

export class UserTokenBodyDto extends createZodDto(UserTokenBody) {}
export class UserTokenReplyDto extends createZodDto(UserTokenReply) {}
export const UserTokenReplyOutputDto = UserTokenReplyDto.Output;

/** DI token of the {@link UserTokens} signer (null with `AUTH_MODE=none`). */
export const USER_TOKENS = Symbol('USER_TOKENS');

/** `/auth`: user tokens, minted by an application backend for one of its users (issue 7). */
@ApiTags('auth')
@Controller('auth')
export class AuthController {
  constructor(
    private readonly tenants: TenantResolver,
    @Inject(USER_TOKENS) private readonly tokens: UserTokens | null,
  ) {}

  @Post('user-tokens')
  @HttpCode(201)
  @KeysOnly()
  @ApiOperation({
    summary: 'Mint a short-lived token for one user of the tenant',
    description:
      'Called by an application backend with its service (or admin) key. The token lets a browser or ' +
      'mobile client call Threadline directly as that user: it sees and changes only that user\u2019s ' +
      'sessions and turns (another user\u2019s are 404), and dies when it expires or its key is revoked.',
  })
  @ApiBody({ type: UserTokenBodyDto })
  @ApiResponse({ status: 201, type: UserTokenReplyOutputDto })
  @ApiProblems(400, 401, 403, 429)
  async mint(@Body() body: UserTokenBodyDto, @Req() request: FastifyRequest): Promise<UserTokenReply> {
    const caller = this.tenants.callerOf(request);
    if (!this.tokens) {
      throw new DomainError('REQUEST.FORBIDDEN', 'User tokens are disabled with AUTH_MODE=none');
    }
    const { token, expiresAt } = await this.tokens.sign({
      tenantId: caller.tenantId,
      userId: body.user_id,
      keyId: caller.keyId,
      ttlSeconds: body.ttl_seconds,
    });
    return {
      token,
      token_type: 'Bearer',
      user_id: body.user_id,
      tenant_id: caller.tenantId,
      expires_at: expiresAt.toISOString(),
    };
  }
}
