export * from './servers';
export * from './decider-spec';
export * from './tail';
export * from './expect-domain-error';
export * from './private-servers';
