// One Jest run over every project (unit specs, integration specs against the real servers, e2e).
module.exports = {
  projects: ['<rootDir>/apps/*/jest.config.js', '<rootDir>/libs/*/jest.config.js', '<rootDir>/tools/jest.config.js'],
};
