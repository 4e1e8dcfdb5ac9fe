// Runs before every test file: a subject prefix of its own, so handlers decorated at import time
// and every stream/consumer the file creates stay isolated from other files and other runs.
const { randomBytes } = require('node:crypto');
process.env.NATS_SUBJECT_PREFIX = `tltest_${randomBytes(5).toString('hex')}`;
process.env.LOG_LEVEL = process.env.LOG_LEVEL || 'warn';
// Services a test starts (child processes inherit this environment) serve no metrics listener unless
// the test asks for one: the documented default ports would collide between test files run at once.
process.env.METRICS_PORT = process.env.TEST_METRICS_PORT || '0';
