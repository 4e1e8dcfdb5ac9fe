// Runs before every test file: a subject prefix of its own, so handlers decorated at import time
// and every stream/consumer the file creates stay isolated from other files and other runs.
const { randomBytes } = require('node:crypto');
process.env.NATS_SUBJECT_PREFIX = `tltest_${randomBytes(5).toString('hex')}`;
process.env.LOG_LEVEL = process.env.LOG_LEVEL || 'warn';
