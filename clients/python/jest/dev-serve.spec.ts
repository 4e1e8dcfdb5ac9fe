import { writeFileSync, existsSync } from 'node:fs';
import { startPythonStack } from './stack';
jest.setTimeout(3_600_000);
test('serve', async () => {
  const stack = await startPythonStack();
  const doc = await (await fetch(stack.baseUrl + '/docs/json')).text();
  writeFileSync('/tmp/sdkpy-openapi.json', doc);
  writeFileSync('/tmp/sdkpy-stack.env', `export THREADLINE_BASE_URL=${stack.baseUrl}\nexport THREADLINE_API_KEY=${stack.adminKey}\nexport THREADLINE_LIMITED_API_KEY=${stack.limitedKey}\n`);
  while (existsSync('/tmp/sdkpy-stack.env')) await new Promise((r) => setTimeout(r, 1000));
  await stack.stop();
});
