export { ThreadlineChatMessageHistory, type ThreadlineChatMessageHistoryInput } from './chat-message-history';
export {
  messagesOfTurn,
  turnOfMessages,
  TRANSCRIPT_FORMAT,
  TRANSCRIPT_TOOL_NAME,
  type MappingOptions,
} from './message-mapping';
