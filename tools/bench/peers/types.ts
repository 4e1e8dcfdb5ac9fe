/** One message of a conversation as the bench writes and checks it. */
export interface PeerMessage {
  role: 'user' | 'assistant';
  content: string;
}

/** One turn of scenario 5: the user's message and the assistant's answer (the two agent responses joined). */
export interface PeerTurn {
  user: string;
  assistant: string;
}

/** Turns read back after each append (the "read back the last 20"). */
export const LAST_TURNS = 20;

/**
 * One conversation of one worker, on one library. `write` does the measured work (append one turn
 * of two messages, then read back the messages of the last {@link LAST_TURNS} turns) and resolves to
 * what the library read back, untouched; `messagesOf` turns that into messages, oldest first, outside
 * the measured time (the bench checks them against what was written).
 */
export interface PeerConversation {
  write(turn: PeerTurn): Promise<unknown>;
  messagesOf(readBack: unknown): PeerMessage[];
}

/** A library opened on its own fresh database, its schema set up through its own API. */
export interface PeerSession {
  /** Starts conversation `id` (Mastra creates its thread here); not part of the measured work. */
  conversation(id: string): Promise<PeerConversation>;
  close(): Promise<void>;
}

/** One library of scenario 5: how to open it, and what it is. */
export interface PeerAdapter {
  /** Short name: `threadline`, `emmett`, `mastra`, `langgraph-saver`, `langgraph-graph`. */
  name: string;
  label: string;
  /** How "append one turn, read back the last 20" maps to this library's API (for the report). */
  mapping: string;
  /** `package@version` of what was measured (read from the installed packages); throws when not installed. */
  versions(): string[];
  /** Opens the library on `url` with a pool of `poolSize` connections and sets up its schema. */
  open(url: string, poolSize: number): Promise<PeerSession>;
}
