import { startTracing } from '@threadline/platform';

// Imported first by main.ts: tracing (when OTEL_* asks for it) must start before `pg` is loaded.
startTracing('session-service');
