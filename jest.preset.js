// Shared Jest settings: SWC transpiles TypeScript (decorator metadata on, for NestJS DI);
// type checking is `npm run typecheck`, not Jest's job.
const path = require('node:path');
const fs = require('node:fs');
const swcrc = JSON.parse(fs.readFileSync(path.join(__dirname, '.swcrc'), 'utf8'));
delete swcrc.$schema;

module.exports = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': ['@swc/jest', { ...swcrc, swcrc: false }] },
  moduleFileExtensions: ['ts', 'js', 'json'],
  testMatch: ['**/?(*.)+(spec|int-spec|e2e-spec).ts'],
  moduleNameMapper: {
    '^@threadline/(contracts|event-store|messaging|platform|testing)$': path.join(__dirname, 'libs/$1/src/index.ts'),
  },
  setupFiles: [path.join(__dirname, 'libs/testing/src/jest-env.setup.js')],
};
