import { Inject, Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { GATEWAY_CONFIG, type GatewayConfig } from '../config';

/**
 * Who a request acts for. For now every request is the configured `DEFAULT_TENANT_ID`; API keys
 * (a later issue) replace this one class: resolve the key's tenant here, and nothing else changes.
 */
@Injectable()
export class TenantResolver {
  constructor(@Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig) {}

  /** The tenant of `request`. */
  tenantOf(_request: FastifyRequest): string {
    return this.config.DEFAULT_TENANT_ID;
  }
}
