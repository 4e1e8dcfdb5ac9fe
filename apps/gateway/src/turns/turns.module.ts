import { Module } from '@nestjs/common';
import { SessionTurnsController, TurnsController, UserTurnsController } from './turns.controller';

/** The turn routes (issue 3): sent as commands and queries to the chat-log-service. */
@Module({ controllers: [SessionTurnsController, TurnsController, UserTurnsController] })
export class TurnsModule {}
