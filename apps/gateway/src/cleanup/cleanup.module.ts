import { Module } from '@nestjs/common';
import { CleanupController } from './cleanup.controller';

/** `POST /sessions/cleanup` (issue 4): a cleanup pass on demand, run by the cleanup-worker. */
@Module({ controllers: [CleanupController] })
export class CleanupModule {}
