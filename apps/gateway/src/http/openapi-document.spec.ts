import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { renderOpenApiDocument } from './openapi-document';

// The committed openapi.json (what the SDKs are generated from) is the document the gateway builds
// today: a route or DTO changed without `npm run openapi` fails here, so CI catches it. The gateway
// e2e spec of libs/client checks that the running gateway serves this same document.
describe('openapi.json', () => {
  it('is the current document of the gateway (run `npm run openapi` when this fails)', async () => {
    const committed = readFileSync(resolve(__dirname, '../../../../openapi.json'), 'utf8');
    expect(await renderOpenApiDocument()).toBe(committed);
  });

  it('renders the same bytes twice', async () => {
    expect(await renderOpenApiDocument()).toBe(await renderOpenApiDocument());
  });
});
