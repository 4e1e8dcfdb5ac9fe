import { Module } from '@nestjs/common';
import { GATEWAY_CONFIG, type GatewayConfig } from '../config';
import { AGENT_BACKEND } from './agent-backend';
import { createAgentBackend } from './agent-backend.factory';
import { QueryController } from './query.controller';
import { QueryService } from './query.service';

/** `POST /query` and its agent backend (chosen by `AGENT_BASE_URL`, see `createAgentBackend`). */
@Module({
  controllers: [QueryController],
  providers: [
    QueryService,
    {
      provide: AGENT_BACKEND,
      useFactory: (config: GatewayConfig) => createAgentBackend(config),
      inject: [GATEWAY_CONFIG],
    },
  ],
})
export class QueryModule {}
