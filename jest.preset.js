// Shared Jest settings: SWC transpiles TypeScript (decorator metadata on, for NestJS DI);
// type checking is `npm run typecheck`, not Jest's job.
const path = require('node:path');
const fs = require('node:fs');
const swcrc = JSON.parse(fs.readFileSync(path.join(__dirname, '.swcrc'), 'utf8'));
delete swcrc.$schema;

module.exports = {
  testEnvironment: 'node',
  // A ceiling, not a wait: integration and e2e tests talk to real servers and must not fail because
  // a loaded 2-core machine answers in 6 s instead of 1 s (tests wait on conditions, never on sleeps).
  testTimeout: 30_000,
  transform: { '^.+\\.ts$': ['@swc/jest', { ...swcrc, swcrc: false }] },
  moduleFileExtensions: ['ts', 'js', 'json'],
  testMatch: ['**/?(*.)+(spec|int-spec|e2e-spec).ts'],
  moduleNameMapper: {
    '^@threadline/(client|client-langchain|client-openai-agents|contracts|event-store|messaging|platform|stack|testing)$':
      path.join(__dirname, 'libs/$1/src/index.ts'),
  },
  setupFiles: [path.join(__dirname, 'libs/testing/src/jest-env.setup.js')],
};
