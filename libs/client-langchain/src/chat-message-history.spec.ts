import { Threadline } from '@threadline/client';
import { ThreadlineChatMessageHistory } from './chat-message-history';

// No server: what the history hands LangChain's serialization. The stack specs do the rest.

describe('ThreadlineChatMessageHistory', () => {
  it('keeps the client, and so the API key, out of its LangChain kwargs and serialized form', () => {
    const client = new Threadline({ baseUrl: 'http://127.0.0.1:9', apiKey: 'tlk_secret-key-123' });
    const history = new ThreadlineChatMessageHistory({ client, sessionId: 's-1', userId: 'ada' });
    expect(history.lc_kwargs).toEqual({ sessionId: 's-1' });
    expect(JSON.stringify(history)).not.toContain('tlk_secret-key-123');
  });
});
