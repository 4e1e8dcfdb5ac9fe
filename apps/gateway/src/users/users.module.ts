import { Module } from '@nestjs/common';
import { UsersController } from './users.controller';

/** `DELETE /users/{user_id}` (issue 4, verifiable erasure): a command to the session-service. */
@Module({ controllers: [UsersController] })
export class UsersModule {}
