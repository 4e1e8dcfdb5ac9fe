import { Module } from '@nestjs/common';
import { StatsController } from './stats.controller';

/** The stats routes (issue 5): queries to the analytics-projector. */
@Module({ controllers: [StatsController] })
export class StatsModule {}
