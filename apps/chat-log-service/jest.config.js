module.exports = { ...require('../../jest.preset.js'), displayName: 'chat-log-service', rootDir: __dirname };
