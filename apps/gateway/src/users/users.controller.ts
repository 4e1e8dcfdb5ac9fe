import { Controller, Delete, Param, Req } from '@nestjs/common';
import { ApiHeader, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { createZodDto } from 'nestjs-zod';
import { EraseUser, UserErasureReceipt, UserIdParams } from '@threadline/contracts';
import { RequestClient } from '@threadline/messaging';
import { AllowUserTokens } from '../auth/auth.decorators';
import { WriteContext, type WriteMeta } from '../http/headers';
import { ApiProblems } from '../http/openapi';
import { TenantResolver } from '../tenant/tenant.provider';

class UserIdParamsDto extends createZodDto(UserIdParams) {}
class UserErasureReceiptDto extends createZodDto(UserErasureReceipt) {}

/**
 * `DELETE /users/{user_id}`: erases every session, turn and workflow state of a user, in the read
 * models, the event store and JetStream (the session-service's `EraseUser`; see the README, "Deletion
 * and erasure"). API keys (admin or service) for any user of the tenant; a user token only for its own
 * user (the guard answers 404 for another `user_id`).
 */
@ApiTags('users')
@ApiHeader({
  name: 'X-Correlation-Id',
  required: false,
  description: 'Echoed on the response; generated when absent',
})
@AllowUserTokens()
@Controller('users')
export class UsersController {
  constructor(
    private readonly client: RequestClient,
    private readonly tenants: TenantResolver,
  ) {}

  @Delete(':user_id')
  @ApiOperation({
    summary:
      "Erase a user's sessions, turns and state everywhere (event store and JetStream too); answers a receipt",
  })
  @ApiResponse({ status: 200, type: UserErasureReceiptDto.Output })
  @ApiProblems(400, 503)
  async erase(
    @Param() params: UserIdParamsDto,
    @WriteContext() meta: WriteMeta,
    @Req() request: FastifyRequest,
  ): Promise<UserErasureReceipt> {
    // Erasure is idempotent by nature (a repeat erases nothing more and answers zeros): the key is not stored.
    const { idempotencyKey: _ignored, ...context } = meta;
    return this.client.request(EraseUser, {
      context: { tenantId: this.tenants.tenantOf(request), ...context },
      userId: this.tenants.userFor(request, params.user_id) ?? params.user_id,
    });
  }
}
