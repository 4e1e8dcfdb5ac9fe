module.exports = { ...require('../../jest.preset.js'), displayName: 'client-langchain', rootDir: __dirname };
