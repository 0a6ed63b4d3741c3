import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigError, UnknownKindError } from './errors.js';
import { Rng } from './random.js';
import { StageRegistry } from './stage.js';

const uniformConfig = z.object({ kind: z.literal('uniform'), numQueries: z.number().int().positive().default(16) }).strict();
const gumbelConfig = z
  .object({ kind: z.literal('gumbel'), tau: z.number().positive().default(0.5), inner: z.object({ k: z.number().int() }).strict() })
  .strict();

function registry() {
  return new StageRegistry<{ made: unknown; cv: number }>('frame-select')
    .register('uniform', { schema: uniformConfig, create: (config, deps) => ({ made: config, cv: deps.dims.Cv }), description: 'uniform' })
    .register('gumbel', { schema: gumbelConfig, create: (config, deps) => ({ made: config, cv: deps.dims.Cv }), description: 'the paper' });
}

const deps = { rng: Rng.fromSeed(0), dims: { Cv: 1408 } };

describe('StageRegistry', () => {
  it('creates a registered kind with defaults filled and its dependencies', () => {
    expect(registry().create({ kind: 'uniform' }, deps)).toEqual({ made: { kind: 'uniform', numQueries: 16 }, cv: 1408 });
    expect(registry().kinds()).toEqual(['uniform', 'gumbel']);
    expect(registry().describe()).toEqual([
      { kind: 'uniform', description: 'uniform' },
      { kind: 'gumbel', description: 'the paper' },
    ]);
  });

  it('an unknown kind throws UnknownKindError listing the valid kinds', () => {
    const attempt = () => registry().parse({ kind: 'topk' });
    expect(attempt).toThrow(UnknownKindError);
    expect(attempt).toThrow('unknown frame-select kind "topk"; valid kinds: uniform, gumbel');
    try {
      attempt();
    } catch (e) {
      expect((e as UnknownKindError).valid).toEqual(['uniform', 'gumbel']);
      expect((e as UnknownKindError).code).toBe('UNKNOWN_KIND');
    }
  });

  it('a missing kind is a ConfigError at path kind', () => {
    expect(() => registry().parse({ numQueries: 3 })).toThrow(ConfigError);
    expect(() => registry().parse(null)).toThrow('frame-select: missing "kind" (valid: uniform, gumbel)');
  });

  it('an invalid config throws ConfigError with the zod path of the bad field', () => {
    const cases: [unknown, (string | number)[], string][] = [
      [{ kind: 'uniform', numQueries: -2 }, ['numQueries'], 'frame-select "uniform": numQueries: '],
      [{ kind: 'gumbel', inner: { k: 1.5 } }, ['inner', 'k'], 'frame-select "gumbel": inner.k: '],
      [{ kind: 'uniform', numQuerys: 3 }, [], 'frame-select "uniform": (root): Unrecognized key'],
    ];
    for (const [config, path, message] of cases) {
      try {
        registry().parse(config);
        expect.unreachable();
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        expect((e as ConfigError).path).toEqual(path);
        expect((e as ConfigError).message.startsWith(message), (e as Error).message).toBe(true);
      }
    }
  });

  it('refuses registering one kind twice', () => {
    expect(() => registry().register('uniform', { schema: uniformConfig, create: () => ({ made: 0, cv: 0 }), description: '' })).toThrow(
      'registered twice',
    );
  });
});
