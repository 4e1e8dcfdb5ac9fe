// One Jest run over every project (unit specs, integration specs against the real servers, e2e).
module.exports = {
  projects: [
    '<rootDir>/apps/*/jest.config.js',
    '<rootDir>/libs/*/jest.config.js',
    '<rootDir>/tools/jest.config.js',
    '<rootDir>/clients/*/jest.config.js',
  ],
  // The per-test ceiling of jest.preset.js: Jest reads `testTimeout` from the global configuration
  // only, so in a run of several projects the presets' value was ignored and tests got Jest's 5 s
  // (a full-suite run on a loaded machine timed an e2e test out at 5 s).
  testTimeout: 30_000,
};
