module.exports = { ...require('../../jest.preset.js'), displayName: 'cleanup-worker', rootDir: __dirname };
