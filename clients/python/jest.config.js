// The Python SDK's tests, run by `npm test`: a Jest spec starts the real stack and runs pytest against it.
module.exports = {
  ...require('../../jest.preset.js'),
  displayName: 'client-python',
  rootDir: __dirname,
  roots: ['<rootDir>/jest'],
};
