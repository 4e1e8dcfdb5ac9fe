module.exports = {
  ...require('../../jest.preset.js'),
  displayName: 'client-openai-agents',
  rootDir: __dirname,
};
