import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

// The SDK's committed types are what openapi-typescript makes of the committed openapi.json today
// (apps/gateway's openapi-document.spec checks that openapi.json itself is current).
describe('libs/client/src/generated/schema.ts', () => {
  it('is generated from the committed openapi.json (run `npm run openapi` when this fails)', () => {
    const generated = execFileSync(process.execPath, [resolve(__dirname, 'generate-types.mjs'), '--stdout'], {
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    });
    const committed = readFileSync(resolve(__dirname, '../src/generated/schema.ts'), 'utf8');
    expect(generated.length).toBeGreaterThan(1000);
    expect(generated).toBe(committed);
  });
});
