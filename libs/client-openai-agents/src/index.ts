export { ThreadlineSession, type ThreadlineSessionOptions } from './threadline-session';
export {
  itemsOfTurn,
  turnOfItems,
  TRANSCRIPT_FORMAT,
  TRANSCRIPT_TOOL_NAME,
  type MappingOptions,
} from './item-mapping';
