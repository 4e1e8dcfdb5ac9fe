import { type Stack, startStack } from './stack';

/**
 * {@link startStack} with extra environment variables for the services (e.g. the gateway's
 * `AGENT_BASE_URL`): `startStack` passes this process's environment to the services it spawns, so
 * `env` is set here while the stack starts and restored afterwards. An empty string passes the
 * variable as empty (the gateway reads an empty `AGENT_*` as unset).
 */
export async function startStackWithEnv(
  env: Record<string, string>,
  opts: Parameters<typeof startStack>[0] = {},
): Promise<Stack> {
  const saved = new Map(Object.keys(env).map((key) => [key, process.env[key]]));
  Object.assign(process.env, env);
  try {
    return await startStack(opts);
  } finally {
    for (const [key, value] of saved) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  }
}
