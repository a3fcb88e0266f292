/** The ConfigError a call throws (the test fails when it throws nothing or something else). */
import { expect } from 'vitest';
import { ConfigError } from '../../src/index.js';

export function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError');
}
